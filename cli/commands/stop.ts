import { Args, Flags } from '@oclif/core';
import { request } from '../../monitor/client.js';
import { VmctrCommand } from '../command.js';
import { findPod, requireRunning, rootFlag } from '../pod-control.js';

export default class Stop extends VmctrCommand {
  static override summary = 'Stop a pod: SIGTERM to its apps, its VM ended after the grace period.';
  static override args = { pod: Args.string({ description: 'pod name or id', required: true }) };
  static override flags = {
    time: Flags.integer({ char: 't', description: 'seconds the apps get to exit after SIGTERM', default: 10, min: 0, max: 86400 }),
    ...rootFlag,
  };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(Stop);
    const pod = await findPod(flags.root, args.pod);
    // A pod that has already ended is stopped: as docker stop, not an error.
    if (pod.monitorAlive) await request(requireRunning(pod).dir.controlSocket, { op: 'stop', timeoutSeconds: flags.time });
    this.log(pod.dir.name);
  }
}
