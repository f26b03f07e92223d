// `vmctr run`'s single-app command line read with run's own syntax, as the
// first part of parseRunApps reads it: the tests' baseline for what one app
// means (flags, then ROOTFS, then the command).
import { parseCommandLine } from '../../cli/flag-spec.js';
import { runSyntax, type RunFlags } from '../../cli/run-command.js';

export function parseRunArgv(argv: readonly string[]): { flags: RunFlags; rootfs: string; command: string[] } | 'help' {
  const line = parseCommandLine(runSyntax, argv);
  return line === 'help' ? line : { flags: line.flags, rootfs: line.operand, command: line.rest };
}
