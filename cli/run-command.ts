// `vmctr run` without oclif: its command line (one definition and one
// parser, for the oclif command in commands/run.ts and for the CLI's fast
// path in main.ts) and what it does. Nothing here loads oclif, and nothing
// loads the registry or tar code unless the root filesystem needs it
// (pod/rootfs-source.ts): the default image and a directory do not.
// Before the guest runs only what it needs is done: the kernel is opened
// (read later, its loadable segments only, straight into guest memory), the
// host checked, the pod's directory claimed and its disks found; the pod's
// record is written meanwhile, waited for by nothing before the guest runs.
import { createWriteStream, readFileSync } from 'node:fs';
import { constants } from 'node:os';
import { finished } from 'node:stream/promises';
import { exitCode as containerExitCode } from '../guest-agent/client.js';
import type { FileImage } from '../vmm/boot/boot-image.js';
import { BootError } from '../vmm/boot/linux-loader.js';
import { checkHostSupport } from '../vmm/kvm/host-support.js';
import { MAX_CPUS, MAX_MEMORY_MIB, MIN_MEMORY_MIB } from '../vmm/vm.js';
import { Pod, type PodExit } from '../pod/pod.js';
import { PodDir, PodNameError, type PodRecord } from '../pod/pod-dir.js';
import { prepareRootfs, RootfsError } from '../pod/rootfs-source.js';
import { ABSOLUTE_PATH, ENV_ENTRY } from '../pod/pod-spec.js';
import { storeRoot } from '../image/store-root.js';
import { ImageError } from '../image/image-error.js';
import { parseCommandLine, type CommandSyntax, type FlagValues } from './flag-spec.js';
import { agentImagePath, defaultImagePath, defaultKernelPath, openInputFile } from './guest-kernel.js';
import { LineBufferedOutput } from './line-buffered-output.js';
import { UserError } from './user-error.js';

/** Exit codes of `vmctr run` that are not the container's own. */
export const RunExitCode = {
  /** vmctr could not start the pod: bad usage or input, missing set-up, a host without KVM (as docker's 125). */
  error: 125,
  /** The guest kernel panicked. */
  panic: 250,
  /** The VM or the agent failed: a guest crash, a VMM error, the agent channel lost. */
  failure: 251,
} as const;

export const runFlags = {
  rm: { type: 'boolean', description: 'remove the pod when it ends' },
  name: { type: 'string', description: 'name the pod (unique; default: generated)' },
  env: { type: 'string', char: 'e', multiple: true, format: { pattern: ENV_ENTRY, expected: 'KEY=VALUE' }, description: 'set an environment variable (KEY=VALUE); repeatable' },
  workdir: { type: 'string', char: 'w', format: { pattern: ABSOLUTE_PATH, expected: 'an absolute path' }, description: 'working directory inside the container (absolute)' },
  user: { type: 'string', char: 'u', description: 'USER[:GROUP], by name (from the container\'s /etc/passwd and /etc/group) or id' },
  hostname: { type: 'string', description: 'the container\'s host name (default: the pod name)' },
  interactive: { type: 'boolean', char: 'i', description: 'keep stdin open and pass it to the container' },
  tty: { type: 'boolean', char: 't', description: 'give the container a terminal' },
  cpus: { type: 'integer', description: 'number of vCPUs', default: 1, min: 1, max: MAX_CPUS },
  memory: { type: 'integer', description: 'guest memory in MiB', default: 256, min: MIN_MEMORY_MIB, max: MAX_MEMORY_MIB },
  root: { type: 'string', description: 'vmctr state directory [env: VMCTR_ROOT] (default /var/lib/vmctr)', helpGroup: 'GLOBAL' },
} as const;

export const runSyntax = {
  command: 'run',
  flags: runFlags,
  usageExitCode: RunExitCode.error,
  operand: { name: 'ROOTFS', description: 'default, a root filesystem directory or tar, or an image name' },
} as const satisfies CommandSyntax;

export type RunFlags = FlagValues<typeof runFlags>;

/** A pod to run, as the command line says it. */
export interface RunRequest {
  flags: RunFlags;
  rootfs: string;
  /** The container's command; empty means the image's. */
  command: string[];
}

/** `vmctr run [FLAGS] ROOTFS [--] [COMMAND...]` from its arguments, or 'help'; a usage error is a one-line UserError with exit status 125. */
export function parseRunArgv(argv: readonly string[]): RunRequest | 'help' {
  const line = parseCommandLine(runSyntax, argv);
  return line === 'help' ? line : { flags: line.flags, rootfs: line.operand, command: line.rest };
}

/**
 * Every failure to start as `vmctr run` reports it: a UserError with one of
 * RunExitCode's statuses (low codes are the container's).
 */
export function runError(err: unknown): UserError {
  if (err instanceof UserError && Object.values(RunExitCode).includes(err.exitCode as 125)) return err;
  return new UserError((err as Error).message, RunExitCode.error);
}

/** Runs the pod `request` describes and exits with its container's status; a failure to start is thrown as runError's. */
export async function run(request: RunRequest): Promise<void> {
  let kernel: FileImage | undefined;
  try {
    const { flags, rootfs, command } = request;
    const root = storeRoot(flags.root);
    kernel = openInputFile(defaultKernelPath(), 'kernel');
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
    const record: PodRecord = { name: dir.name, rootfs, command, pid: process.pid, created: new Date().toISOString(), state: 'running' };
    // pod.json is rewritten as the pod goes on, one write at a time (they share a temporary file). The first is
    // only issued here: the thread pool does it while the root filesystem and the VM are set up, and nothing waits for it.
    let written: Promise<void> = Promise.resolve();
    const save = () => (written = written.catch(() => {}).then(() => dir.write(record)));
    void save().catch(() => {});
    const settle = async () => {
      if (flags.rm) {
        await written.catch(() => {});
        await dir.remove();
      } else {
        await save();
      }
    };
    let status: number;
    try {
      status = await runPod(dir, record, save, { ...flags, rootfs, command, kernel, agentImage, root });
    } catch (err) {
      const failure = runError(err);
      record.state = 'exited';
      record.exitCode = failure.exitCode;
      record.error = failure.message.split('\n')[0];
      await settle();
      throw failure;
    }
    await settle();
    // stdin may still hold the event loop open: the pod is over.
    process.exit(status);
  } catch (err) {
    throw runError(err);
  } finally {
    kernel?.close();
  }
}

interface PodOptions extends RunFlags {
  rootfs: string;
  command: string[];
  kernel: FileImage;
  agentImage: string;
  root: string;
}

async function runPod(dir: PodDir, record: PodRecord, save: () => Promise<void>, opts: PodOptions): Promise<number> {
  let rootfs;
  try {
    rootfs = await prepareRootfs(opts.rootfs, {
      root: opts.root,
      defaultImage: defaultImagePath,
      podDisk: dir.disk('rootfs.ext4'),
      command: opts.command,
      overrides: { env: opts.env.length ? opts.env : undefined, workdir: opts.workdir, user: opts.user },
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
  void proc.pid.then(() => save()).catch(() => {});

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
