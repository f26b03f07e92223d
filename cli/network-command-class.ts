// The oclif side of a network command (network-commands.ts).
import type { VmctrCommand } from './command.js';
import { fastCommandClass, type CommandHelp } from './fast-command-class.js';
import { networkCommands, parseNetworkVerb, type NetworkVerb } from './network-commands.js';

export function networkCommandClass(verb: NetworkVerb, help: CommandHelp): typeof VmctrCommand {
  return fastCommandClass(networkCommands[verb].syntax, (argv) => parseNetworkVerb(verb, argv), help);
}
