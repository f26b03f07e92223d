import { Args, Flags } from '@oclif/core';
import { storeRoot } from '../../image/store.js';
import { isRunning, PodDir } from '../../pod/pod-dir.js';
import { UserError, VmctrCommand } from '../command.js';

export default class Rm extends VmctrCommand {
  static override summary = 'Remove pods that have ended (or their leftovers after a killed vmctr).';
  static override strict = false;
  static override args = { name: Args.string({ description: 'pod name', required: true }) };
  static override flags = {
    force: Flags.boolean({ char: 'f', description: 'stop a running pod first (SIGKILL to its vmctr)' }),
    root: Flags.string({ description: 'vmctr state directory [env: VMCTR_ROOT] (default /var/lib/vmctr)', helpGroup: 'GLOBAL' }),
  };

  async run(): Promise<void> {
    const { flags, argv } = await this.parse(Rm);
    const root = storeRoot(flags.root);
    const failures: string[] = [];
    for (const name of argv as string[]) {
      const dir = PodDir.open(root, name);
      const record = await dir.read();
      if (!record && !(await dir.exists())) {
        failures.push(`no pod named "${name}"`);
        continue;
      }
      if (record && isRunning(record)) {
        if (!flags.force) {
          failures.push(`pod "${name}" is running: stop it first or use --force`);
          continue;
        }
        process.kill(record.pid, 'SIGKILL');
      }
      await dir.remove();
      this.log(name);
    }
    if (failures.length) throw new UserError(failures.join('; '));
  }
}
