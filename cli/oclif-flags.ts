import { Flags, type Interfaces } from '@oclif/core';
import type { FlagSpecs, FlagValues } from './flag-spec.js';

/** oclif flags for a command's flag definitions (flag-spec.ts); parsing them gives FlagValues. */
export function toOclifFlags<S extends FlagSpecs>(specs: S): { [K in keyof S]: Interfaces.OptionFlag<FlagValues<S>[K]> } {
  return Object.fromEntries(Object.entries(specs).map(([name, s]) => {
    const common = { description: s.description };
    if (s.type === 'integer') {
      return [name, Flags.integer({ ...common, ...(s.default !== undefined && { default: s.default }), ...(s.min !== undefined && { min: s.min }), ...(s.max !== undefined && { max: s.max }) })];
    }
    return [name, Flags.string({ ...common, ...(s.default !== undefined && { default: s.default }), ...(s.options && { options: [...s.options] }) })];
  })) as { [K in keyof S]: Interfaces.OptionFlag<FlagValues<S>[K]> };
}
