import { Command } from '@oclif/core';
import { exitWithError } from './user-error.js';

export { EXIT_USAGE, UserError } from './user-error.js';

/** Base of every vmctr command: any error leaves as `vmctr: <one line>` on stderr and a non-zero exit. */
export abstract class VmctrCommand extends Command {
  protected override async catch(err: Error & { exitCode?: number; oclif?: { exit?: number } }): Promise<never> {
    exitWithError(err);
  }
}
