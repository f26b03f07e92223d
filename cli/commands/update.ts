import { Args, Flags } from '@oclif/core';
import { readLaunch } from '../../monitor/launch.js';
import { PodCgroup, VMM_OVERHEAD_MIB } from '../../pod/pod-cgroup.js';
import { UserError, VmctrCommand } from '../command.js';
import { findPod, requireRunning, rootFlag } from '../pod-control.js';

export default class Update extends VmctrCommand {
  static override summary = 'Change a running pod\'s host limits: its cgroup\'s memory and CPU quota.';
  static override description = `--memory is the host memory of the whole pod, VMM included, in MiB; it cannot go below the guest's RAM plus ${VMM_OVERHEAD_MIB} MiB for the VMM (the guest's own RAM is fixed while it runs: no memory hotplug or balloon). --cpus is a CPU quota (0.01 to the pod's vCPUs).`;
  static override args = { pod: Args.string({ description: 'pod name or id', required: true }) };
  static override flags = {
    memory: Flags.integer({ description: 'host memory limit of the pod in MiB', min: 1 }),
    cpus: Flags.string({ description: 'CPU quota, in CPUs (e.g. 0.5)' }),
    ...rootFlag,
  };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(Update);
    const pod = requireRunning(await findPod(flags.root, args.pod));
    const record = pod.record!;
    if (!record.cgroup) throw new UserError(`pod "${pod.dir.name}" has no cgroup (this host has no cgroup v2 with cpu, memory and pids)`);
    const launch = await readLaunch(pod.dir.launchPath);
    const floor = launch.memoryMiB + VMM_OVERHEAD_MIB;
    if (flags.memory !== undefined && flags.memory < floor) {
      throw new UserError(`--memory ${flags.memory} is below the pod's guest RAM (${launch.memoryMiB} MiB) plus ${VMM_OVERHEAD_MIB} MiB for its VMM: at least ${floor}`);
    }
    const cpus = flags.cpus === undefined ? undefined : Number(flags.cpus);
    if (cpus !== undefined && !(cpus >= 0.01 && cpus <= launch.cpus)) throw new UserError(`--cpus ${flags.cpus}: expected a number from 0.01 to the pod's ${launch.cpus} vCPU(s)`);
    if (flags.memory === undefined && cpus === undefined) throw new UserError('vmctr update needs --memory or --cpus');
    const group = PodCgroup.of(record.id);
    group.update({ ...(flags.memory === undefined ? {} : { memoryMiB: flags.memory }), ...(cpus === undefined ? {} : { cpus }) });
    this.log(JSON.stringify(group.limits()));
  }
}
