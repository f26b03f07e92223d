import { Flags, type Interfaces } from '@oclif/core';
import type { FlagSpecs } from './flag-spec.js';

/**
 * oclif flags for a command's flag definitions (flag-spec.ts), for its help
 * and oclif's command manifest: the values are read by flag-spec.ts.
 */
export function toOclifFlags(specs: FlagSpecs): Interfaces.FlagInput {
  return Object.fromEntries(Object.entries(specs).map(([name, s]) => {
    const common = { description: s.description, ...(s.char && { char: s.char as Interfaces.AlphabetLowercase }), ...(s.helpGroup && { helpGroup: s.helpGroup }) };
    switch (s.type) {
      case 'boolean':
        return [name, Flags.boolean(common)];
      case 'integer':
        return [name, Flags.integer({ ...common, ...(s.default !== undefined && { default: s.default }), ...(s.min !== undefined && { min: s.min }), ...(s.max !== undefined && { max: s.max }) })];
      case 'string':
        if (s.multiple) return [name, Flags.string({ ...common, multiple: true })];
        return [name, Flags.string({ ...common, ...(s.default !== undefined && { default: s.default }), ...(s.options && { options: [...s.options] }) })];
    }
  }));
}
