import { Args, Flags } from '@oclif/core';
import { constants } from 'node:os';
import { request } from '../../monitor/client.js';
import { UserError, VmctrCommand } from '../command.js';
import { findPod, requireRunning, rootFlag } from '../pod-control.js';

export default class Kill extends VmctrCommand {
  static override summary = 'Send a signal to a pod\'s apps; SIGKILL (the default) ends its VM at once.';
  static override args = { pod: Args.string({ description: 'pod name or id', required: true }) };
  static override flags = {
    signal: Flags.string({ char: 's', description: 'signal name (TERM, SIGHUP...) or number', default: 'KILL' }),
    ...rootFlag,
  };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(Kill);
    const signal = signalNumber(flags.signal);
    const socket = requireRunning(await findPod(flags.root, args.pod)).dir.controlSocket;
    await request(socket, signal === constants.signals.SIGKILL ? { op: 'kill' } : { op: 'signal', signal });
  }
}

function signalNumber(text: string): number {
  if (/^\d+$/.test(text) && Number(text) >= 1 && Number(text) <= 64) return Number(text);
  const name = (text.toUpperCase().startsWith('SIG') ? text.toUpperCase() : `SIG${text.toUpperCase()}`) as keyof typeof constants.signals;
  const number = constants.signals[name];
  if (number === undefined) throw new UserError(`unknown signal "${text}": use a name such as TERM or a number from 1 to 64`);
  return number;
}
