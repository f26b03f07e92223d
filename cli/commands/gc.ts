import { storeRoot } from '../../image/store-root.js';
import { VmctrCommand } from '../command.js';
import { collectGarbage, rootFlag } from '../pod-control.js';

export default class Gc extends VmctrCommand {
  static override summary = 'Remove pods whose monitor died, and what they held.';
  static override description = 'A pod whose monitor was killed (or crashed) keeps a record that says it runs; gc removes it with its disks, logs and socket, and the leftovers of a vmctr that died while creating a pod. Pods that ended normally stay until vmctr rm.';
  static override flags = { ...rootFlag };

  async run(): Promise<void> {
    const { flags } = await this.parse(Gc);
    for (const removed of await collectGarbage(storeRoot(flags.root))) this.log(removed);
  }
}
