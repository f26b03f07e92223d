// The oclif side of a pod command (pod-commands.ts): fast-command-class.ts
// with the pod command's definition and parser.
import type { VmctrCommand } from './command.js';
import { fastCommandClass, type CommandHelp } from './fast-command-class.js';
import { parsePodCommand, podCommands, type PodCommandName } from './pod-commands.js';

export function podCommandClass(name: PodCommandName, help: CommandHelp): typeof VmctrCommand {
  return fastCommandClass(podCommands[name].syntax, (argv) => parsePodCommand(name, argv), help);
}
