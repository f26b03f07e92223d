import { Args } from '@oclif/core';
import { VmctrCommand } from '../command.js';
import { findPod, rootFlag } from '../pod-control.js';
import { podJson } from './ps.js';

export default class Status extends VmctrCommand {
  static override summary = 'Print a pod\'s record and its status now, as JSON.';
  static override args = { pod: Args.string({ description: 'pod name or id', required: true }) };
  static override flags = { ...rootFlag };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(Status);
    this.log(JSON.stringify(podJson(await findPod(flags.root, args.pod)), null, 2));
  }
}
