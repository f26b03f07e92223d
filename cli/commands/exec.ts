import { Args, Flags } from '@oclif/core';
import { constants } from 'node:os';
import { attach } from '../../monitor/client.js';
import { UserError, VmctrCommand } from '../command.js';
import { findPod, requireRunning, rootFlag } from '../pod-control.js';
import { reportExit } from '../run-command.js';

const EXIT_SIGPIPE = 128 + constants.signals.SIGPIPE;

export default class Exec extends VmctrCommand {
  static override summary = 'Run a new process in a running pod\'s app: its root filesystem, user, environment and working directory unless flags say otherwise.';
  static override description = 'Exit status: the process\'s; 125 it could not be started; 126/127 as vmctr run.';
  static override examples = ['<%= config.bin %> exec web -- cat /etc/hostname', '<%= config.bin %> exec -it --app db web -- sh'];
  static override strict = false;
  static override args = { pod: Args.string({ description: 'pod name or id', required: true }) };
  static override flags = {
    interactive: Flags.boolean({ char: 'i', description: 'pass stdin to the process' }),
    tty: Flags.boolean({ char: 't', description: 'give the process a terminal' }),
    env: Flags.string({ char: 'e', multiple: true, description: 'set an environment variable (KEY=VALUE); repeatable' }),
    user: Flags.string({ char: 'u', description: 'USER[:GROUP] (default: the app\'s)' }),
    workdir: Flags.string({ char: 'w', description: 'working directory (default: the app\'s)' }),
    app: Flags.string({ description: 'the app to enter (default: the first)' }),
    ...rootFlag,
  };

  async run(): Promise<void> {
    const { args, flags, argv } = await this.parse(Exec);
    const command = (argv as string[]).slice(1);
    if (command.length === 0) throw new UserError('vmctr exec needs a command: vmctr exec POD -- CMD...', 125);
    const env = flags.env ?? [];
    const bad = env.find((e) => !/^[^=]+=/.test(e));
    if (bad) throw new UserError(`-e "${bad}": expected KEY=VALUE`, 125);
    if (flags.workdir && !flags.workdir.startsWith('/')) throw new UserError(`-w "${flags.workdir}": expected an absolute path`, 125);
    const socket = requireRunning(await findPod(flags.root, args.pod)).dir.controlSocket;
    const tty = flags.tty ? { rows: process.stdout.rows || 24, cols: process.stdout.columns || 80 } : undefined;
    const attachment = await attach(socket, {
      op: 'exec',
      args: command,
      env,
      stdin: flags.interactive,
      ...(flags.app ? { app: flags.app } : {}),
      ...(flags.user ? { user: flags.user } : {}),
      ...(flags.workdir ? { cwd: flags.workdir } : {}),
      ...(tty ? { tty } : {}),
    }, {
      stdin: flags.interactive,
      tty: flags.tty,
      signal: (name, forward) => forward(constants.signals[name]),
      outputClosed: () => process.exit(EXIT_SIGPIPE),
    }).catch((err: Error & { exitCode?: number }) => {
      throw new UserError(err.message, err.exitCode ?? 125);
    });
    process.exit(reportExit(await attachment.exit));
  }
}
