import { Command, Help } from '@oclif/core';
import { exitWithError } from './user-error.js';

export { EXIT_USAGE, UserError } from './user-error.js';

/** Base of every vmctr command: any error leaves as `vmctr: <one line>` on stderr and a non-zero exit. */
export abstract class VmctrCommand extends Command {
  protected override async catch(err: Error & { exitCode?: number; oclif?: { exit?: number } }): Promise<never> {
    exitWithError(err);
  }

  /**
   * The command's help, for a command that reads its own arguments
   * (flag-spec.ts) and finds `--help` among them: oclif's CLI shows help
   * before the command runs, but a command run by other means may get here.
   */
  protected async showOwnHelp(): Promise<void> {
    await new Help(this.config).showHelp([this.id ?? this.constructor.name.toLowerCase()]);
  }
}
