import { Args } from '@oclif/core';
import { constants } from 'node:os';
import { attach, request } from '../../monitor/client.js';
import { VmctrCommand } from '../command.js';
import { findPod, requireRunning, rootFlag } from '../pod-control.js';
import { reportExit } from '../run-command.js';

/** A detaching filter: a closed stdout ends this command, not the pod. */
const EXIT_SIGPIPE = 128 + constants.signals.SIGPIPE;

export default class Attach extends VmctrCommand {
  static override summary = 'Attach to a running pod: its apps\' output, and its first app\'s input if it was started with -i; exits with the pod\'s status.';
  static override description = 'Signals (Ctrl-C without a terminal, SIGTERM...) go to the apps. Leaving (a closed stdout, a killed vmctr attach) does not stop a detached pod.';
  static override args = { pod: Args.string({ description: 'pod name or id', required: true }) };
  static override flags = { ...rootFlag };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(Attach);
    const socket = requireRunning(await findPod(flags.root, args.pod)).dir.controlSocket;
    const status = await request(socket, { op: 'status' });
    const stdin = status.stdin === true;
    const tty = status.tty === true;
    const attachment = await attach(socket, { op: 'attach', stdin, owner: false }, {
      stdin,
      tty,
      signal: (name, forward) => forward(constants.signals[name]),
      outputClosed: () => process.exit(EXIT_SIGPIPE),
    });
    process.exit(reportExit(await attachment.exit));
  }
}
