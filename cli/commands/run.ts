import { Args, Flags } from '@oclif/core';
import { createWriteStream, readFileSync } from 'node:fs';
import { constants } from 'node:os';
import { finished } from 'node:stream/promises';
import { exitCode as containerExitCode } from '../../guest-agent/client.js';
import { BootError } from '../../vmm/boot/linux-loader.js';
import { checkHostSupport } from '../../vmm/kvm/host-support.js';
import { MAX_CPUS } from '../../vmm/vm.js';
import { Pod, type PodExit } from '../../pod/pod.js';
import { PodDir, PodNameError, type PodRecord } from '../../pod/pod-dir.js';
import { prepareRootfs, RootfsError } from '../../pod/rootfs-source.js';
import { storeRoot } from '../../image/store.js';
import { ImageError } from '../../image/image-error.js';
import { UserError, VmctrCommand } from '../command.js';
import { agentImagePath, defaultImagePath, defaultKernelPath, readInputFile } from '../guest-kernel.js';
import { LineBufferedOutput } from '../line-buffered-output.js';

/** Exit codes of `vmctr run` that are not the container's own. */
export const RunExitCode = {
  /** vmctr could not start the pod: bad usage or input, missing set-up, a host without KVM (as docker's 125). */
  error: 125,
  /** The guest kernel panicked. */
  panic: 250,
  /** The VM or the agent failed: a guest crash, a VMM error, the agent channel lost. */
  failure: 251,
} as const;

export default class Run extends VmctrCommand {
  static override summary = 'Run a command in a new pod: its own microVM.';
  static override description = `ROOTFS is "default" (the built-in busybox image), a directory or a tar of a root filesystem, or an image in the store (vmctr pull / vmctr load).
The root filesystem reaches the guest as a read-only disk; the container's writes go to a layer inside the pod, so the source never changes.
Exit status: the container's; 128+N if a signal N ended it; 125 vmctr could not start the pod; 126 the command cannot run; 127 the command was not found; 250 the guest kernel panicked; 251 the VM or its agent failed.`;

  static override examples = [
    '<%= config.bin %> run default -- echo hello',
    '<%= config.bin %> run --rm -e GREETING=hi -w /tmp -u vmctr default -- sh -c \'echo $GREETING from $(pwd) as $(id -un)\'',
    '<%= config.bin %> run -it default -- sh',
    '<%= config.bin %> run ./rootfs.tar -- /bin/true',
  ];

  static override strict = false;
  static override args = {
    rootfs: Args.string({ description: 'default, a root filesystem directory or tar, or an image name', required: true }),
  };

  static override flags = {
    rm: Flags.boolean({ description: 'remove the pod when it ends' }),
    name: Flags.string({ description: 'name the pod (unique; default: generated)' }),
    env: Flags.string({ char: 'e', description: 'set an environment variable (KEY=VALUE); repeatable', multiple: true, multipleNonGreedy: true }),
    workdir: Flags.string({ char: 'w', description: 'working directory inside the container (absolute)' }),
    user: Flags.string({ char: 'u', description: 'USER[:GROUP], by name (from the container\'s /etc/passwd and /etc/group) or id' }),
    hostname: Flags.string({ description: 'the container\'s host name (default: the pod name)' }),
    interactive: Flags.boolean({ char: 'i', description: 'keep stdin open and pass it to the container' }),
    tty: Flags.boolean({ char: 't', description: 'give the container a terminal' }),
    cpus: Flags.integer({ description: 'number of vCPUs', default: 1, min: 1, max: MAX_CPUS }),
    memory: Flags.integer({ description: 'guest memory in MiB', default: 256 }),
    root: Flags.string({ description: 'vmctr state directory [env: VMCTR_ROOT] (default /var/lib/vmctr)', helpGroup: 'GLOBAL' }),
  };

  protected override async catch(err: Error & { exitCode?: number }): Promise<never> {
    // Usage and set-up errors exit 125 here, like every other failure to start: low codes are the container's.
    const code = err instanceof UserError && Object.values(RunExitCode).includes(err.exitCode as 125) ? err.exitCode : RunExitCode.error;
    return super.catch(new UserError(err.message, code));
  }

  async run(): Promise<void> {
    const { flags, args, argv } = await this.parse(Run);
    const command = (argv as string[]).slice(1);
    const root = storeRoot(flags.root);
    for (const e of flags.env ?? []) if (!/^[^=\0]+=/.test(e)) throw new UserError(`-e needs KEY=VALUE, got "${e}"`, RunExitCode.error);
    if (flags.workdir !== undefined && !flags.workdir.startsWith('/')) throw new UserError(`-w needs an absolute path, got "${flags.workdir}"`, RunExitCode.error);

    const kernel = readInputFile(defaultKernelPath(), 'kernel');
    const agentImage = agentImagePath();
    const host = checkHostSupport();
    if (!host.ok) throw new UserError(`cannot run VMs on this host: ${host.reason}`, RunExitCode.error);

    let dir: PodDir;
    try {
      dir = await PodDir.create(root, flags.name);
    } catch (err) {
      if (err instanceof PodNameError) throw new UserError(err.message, RunExitCode.error);
      throw err;
    }
    const record: PodRecord = { name: dir.name, rootfs: args.rootfs, command, pid: process.pid, created: new Date().toISOString(), state: 'running' };
    let status: number;
    try {
      await dir.write(record);
      status = await this.runPod(dir, record, { ...flags, rootfs: args.rootfs, command, kernel, agentImage, root });
    } catch (err) {
      record.state = 'exited';
      record.exitCode = err instanceof UserError ? err.exitCode : RunExitCode.error;
      record.error = (err as Error).message.split('\n')[0];
      await (flags.rm ? dir.remove() : dir.write(record));
      throw err instanceof UserError ? err : new UserError((err as Error).message, RunExitCode.error);
    }
    await (flags.rm ? dir.remove() : dir.write(record));
    // stdin may still hold the event loop open: the pod is over.
    process.exit(status);
  }

  private async runPod(
    dir: PodDir,
    record: PodRecord,
    opts: { rootfs: string; command: string[]; kernel: Uint8Array; agentImage: string; root: string; cpus: number; memory: number; env?: string[]; workdir?: string; user?: string; hostname?: string; interactive: boolean; tty: boolean },
  ): Promise<number> {
    let rootfs;
    try {
      rootfs = await prepareRootfs(opts.rootfs, {
        root: opts.root,
        defaultImage: defaultImagePath,
        podDisk: dir.disk('rootfs.ext4'),
        command: opts.command,
        overrides: { env: opts.env, workdir: opts.workdir, user: opts.user },
        progress: (line) => process.stderr.write(`${line}\n`),
      });
    } catch (err) {
      if (err instanceof RootfsError || err instanceof ImageError) throw new UserError(err.message, RunExitCode.error);
      throw err;
    }
    const consoleFile = createWriteStream(dir.consoleLog);
    const console = new LineBufferedOutput(consoleFile);
    const tty = opts.tty ? { rows: process.stdout.rows || 24, cols: process.stdout.columns || 80 } : undefined;
    let pod: Pod;
    try {
      pod = await Pod.start({
        kernel: opts.kernel,
        agentImage: opts.agentImage,
        rootfsDisk: rootfs.disk,
        cpus: opts.cpus,
        memoryMiB: opts.memory,
        console,
        container: {
          ...rootfs.container,
          hostname: opts.hostname ?? dir.name,
          stdin: opts.interactive,
          ...(tty ? { tty } : {}),
        },
      });
    } catch (err) {
      await rootfs.release();
      if (err instanceof BootError) throw new UserError(err.message, RunExitCode.error);
      throw new UserError((err as Error).message, RunExitCode.failure);
    }

    const proc = pod.process;
    proc.stdout.pipe(process.stdout, { end: false });
    proc.stderr.pipe(process.stderr, { end: false });
    proc.stdout.on('error', () => {});
    proc.stderr.on('error', () => {});
    const raw = opts.tty && opts.interactive && process.stdin.isTTY;
    if (proc.stdin) {
      if (raw) process.stdin.setRawMode(true);
      process.stdin.pipe(proc.stdin);
      proc.stdin.on('error', () => {});
    }
    const onResize = () => proc.resize(process.stdout.rows || 24, process.stdout.columns || 80);
    if (tty) process.stdout.on('resize', onResize);
    // Signals go to the container, as docker run proxies them; a second Ctrl-C ends the pod outright.
    let interrupts = 0;
    const forward = (signal: NodeJS.Signals) => () => {
      if (signal === 'SIGINT' && interrupts++ > 0) pod.kill();
      else proc.signal(constants.signals[signal]);
    };
    const handlers = (['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT'] as const).map((s) => [s, forward(s)] as const);
    for (const [s, h] of handlers) process.on(s, h);
    void proc.pid.then(() => dir.write(record));

    const exit: PodExit = await pod.wait();
    for (const [s, h] of handlers) process.off(s, h);
    if (raw) process.stdin.setRawMode(false);
    // finished() also settles for a stream already destroyed (a channel lost with the VM).
    await Promise.all([proc.stdout, proc.stderr].map((s) => finished(s).catch(() => {})));
    console.flush();
    await new Promise((resolve) => consoleFile.end(resolve));
    await rootfs.release();

    record.state = 'exited';
    switch (exit.kind) {
      case 'exited':
        if ('error' in exit.exit && exit.exit.error) process.stderr.write(`vmctr: ${exit.exit.error}\n`);
        record.exitCode = containerExitCode(exit.exit);
        return record.exitCode;
      case 'panic': {
        const why = panicLine(dir.consoleLog);
        process.stderr.write(`vmctr: the guest kernel panicked${why ? `: ${why}` : ''}\n`);
        record.error = 'guest kernel panic';
        record.exitCode = RunExitCode.panic;
        return RunExitCode.panic;
      }
      case 'failed':
        process.stderr.write(`vmctr: ${exit.detail}\n`);
        record.error = exit.detail;
        record.exitCode = RunExitCode.failure;
        return RunExitCode.failure;
    }
  }
}

/** The kernel's panic message from the console log, for the one-line reason. */
function panicLine(consoleLog: string): string | undefined {
  let text: string;
  try {
    text = readFileSync(consoleLog, 'latin1');
  } catch {
    return undefined;
  }
  const line = text.split('\n').find((l) => l.includes('Kernel panic - not syncing'));
  return line?.replace(/^.*Kernel panic - not syncing: /, '').trim();
}
