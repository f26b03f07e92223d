// The oclif side of a pod command (pod-commands.ts): its help and its place
// in oclif's command list. The arguments are read by pod-commands.ts's
// parser, as on the CLI's fast path: the same values and errors either way.
import { Args, type Interfaces } from '@oclif/core';
import { VmctrCommand } from './command.js';
import type { CommandSyntax } from './flag-spec.js';
import { toOclifFlags } from './oclif-flags.js';
import { parsePodCommand, podCommands, type PodCommandName } from './pod-commands.js';

export interface PodCommandHelp {
  summary: string;
  description?: string;
  examples?: string[];
}

export function podCommandClass(name: PodCommandName, help: PodCommandHelp): typeof VmctrCommand {
  const syntax: CommandSyntax = podCommands[name].syntax;
  return class extends VmctrCommand {
    static override summary = help.summary;
    static override description = help.description;
    static override examples = help.examples ?? [];
    static override strict = false;
    static override flags = toOclifFlags(syntax.flags);
    static override args: Interfaces.ArgInput = syntax.operand ? { pod: Args.string({ description: syntax.operand.description }) } : {};

    async run(): Promise<void> {
      const start = parsePodCommand(name, this.argv);
      if (start === 'help') return this.showOwnHelp();
      await start();
    }
  };
}
