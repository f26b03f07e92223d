import { Flags } from '@oclif/core';
import { UserError, VmctrCommand } from '../command.js';
import { findPod, removePod, rootFlag } from '../pod-control.js';

export default class Rm extends VmctrCommand {
  static override summary = 'Remove pods that have ended, and everything they held.';
  static override description = 'A pod that is ending is waited for; a running one is refused unless --force, which ends its VM first.';
  static override strict = false;
  static override flags = {
    force: Flags.boolean({ char: 'f', description: 'end a running pod first' }),
    ...rootFlag,
  };

  async run(): Promise<void> {
    const { flags, argv } = await this.parse(Rm);
    const names = argv as string[];
    if (names.length === 0) throw new UserError('vmctr rm needs at least one pod name or id');
    // Each pod on its own: one that cannot be removed does not keep the others.
    const results = await Promise.allSettled(names.map(async (name) => removePod(await findPod(flags.root, name), flags.force)));
    const failures: string[] = [];
    results.forEach((result, i) => {
      if (result.status === 'fulfilled') this.log(names[i]!);
      else failures.push((result.reason as Error).message);
    });
    if (failures.length) throw new UserError(failures.join('; '));
  }
}
