// The oclif side of a command that starts without oclif (its command line
// defined once with flag-spec.ts): its help and its place in oclif's
// command list. The arguments are read by the command's own parser, as on
// the CLI's fast path (main.ts): the same values and errors either way.
import { Args, type Interfaces } from '@oclif/core';
import { VmctrCommand } from './command.js';
import type { CommandSyntax } from './flag-spec.js';
import { toOclifFlags } from './oclif-flags.js';

export interface CommandHelp {
  summary: string;
  description?: string;
  examples?: string[];
}

/** A command class for `syntax`, running what `parse` makes of its arguments (or showing help). */
export function fastCommandClass(syntax: CommandSyntax, parse: (argv: readonly string[]) => (() => Promise<void>) | 'help', help: CommandHelp): typeof VmctrCommand {
  return class extends VmctrCommand {
    static override summary = help.summary;
    static override description = help.description;
    static override examples = help.examples ?? [];
    static override strict = false;
    static override flags = toOclifFlags(syntax.flags);
    static override args: Interfaces.ArgInput = syntax.operand ? { [syntax.operand.name.toLowerCase()]: Args.string({ description: syntax.operand.description }) } : {};

    async run(): Promise<void> {
      const start = parse(this.argv);
      if (start === 'help') return this.showOwnHelp();
      await start();
    }
  };
}
