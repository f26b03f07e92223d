import { Flags } from '@oclif/core';
import { storeRoot } from '../../image/store.js';
import { PodDir } from '../../pod/pod-dir.js';
import { VmctrCommand } from '../command.js';
import { table } from '../table.js';

export default class Ps extends VmctrCommand {
  static override summary = 'List pods (running ones, or all with -a).';
  static override flags = {
    all: Flags.boolean({ char: 'a', description: 'show pods that have ended too' }),
    root: Flags.string({ description: 'vmctr state directory [env: VMCTR_ROOT] (default /var/lib/vmctr)', helpGroup: 'GLOBAL' }),
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(Ps);
    const pods = (await PodDir.list(storeRoot(flags.root))).filter((p) => flags.all || p.status === 'running');
    const rows = [['NAME', 'ROOTFS', 'COMMAND', 'CREATED', 'STATUS']];
    for (const p of pods) rows.push([p.name, p.rootfs, JSON.stringify(p.command.join(' ')), p.created, p.status]);
    this.log(table(rows));
  }
}
