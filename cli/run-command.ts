// `vmctr run` without oclif: its command line (one definition and one
// parser, for the oclif command in commands/run.ts and for the CLI's fast
// path in main.ts) and what it does. The pod's VMM is not this process but
// its monitor (monitor/monitor.ts), which this command spawns in a session
// of its own and, without -d, attaches to: stdio, signals and the exit
// status are the pod's, as if this process ran it. Before the monitor starts
// only what gives a one-line error at once is done: flags, the kernel, the
// agent image (found, and checked against their signed stage1 manifests),
// the host's KVM, the pod's name.
import { spawn } from 'node:child_process';
import { accessSync, closeSync, constants as fsConstants, existsSync, openSync, readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { constants } from 'node:os';
import { resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { checkHostSupport } from '../vmm/kvm/host-support.js';
import { MAX_CPUS, MAX_MEMORY_MIB, MIN_MEMORY_MIB } from '../vmm/vm.js';
import { attach, request, type AttachExit } from '../monitor/client.js';
import type { LaunchApp, PodLaunch } from '../monitor/launch.js';
import { cgroupUnavailable, PodCgroup, podLimits } from '../pod/pod-cgroup.js';
import { PodNetworks, type PodNetworkConfig } from '../net/pod-network.js';
import { parsePortForward } from '../net/port-forward.js';
import { newPodId, PodDir, PodNameError } from '../pod/pod-dir.js';
import { OOM_KILLED, RECORD_VERSION, type PodRecord } from '../pod/pod-record.js';
import { self } from '../pod/process-identity.js';
import { DEFAULT_IMAGE, type RootfsMode } from '../pod/rootfs-source.js';
import { ABSOLUTE_PATH, ENV_ENTRY } from '../pod/pod-spec.js';
import { storeRoot } from '../image/store-root.js';
import { Stage1Error, verifyStage1 } from '../stage1/verify.js';
import { DEFAULT_LAYER_BYTES, parseSize, SIZE_EXPECTED, SIZE_FORM } from '../pod/layer-disk.js';
import { insecureOptionsFlag, type CommandSyntax, type FlagValues } from './flag-spec.js';
import { agentImagePath, defaultImagePath, defaultKernelPath } from './guest-kernel.js';
import { RunExitCode } from './run-exit-code.js';
import { MONITOR_COMMAND } from './monitor-command.js';
import type { PodFlags, RunApps } from './run-apps.js';
import { UserError } from './user-error.js';

export { RunExitCode };

/** What a filter ended by a closed pipe exits with: 128 + SIGPIPE (run, attach, exec). */
export const EXIT_SIGPIPE = 128 + constants.signals.SIGPIPE;
/** How long an attached `vmctr run` lets the apps end after SIGTERM before the VM ends. */
const SIGTERM_GRACE_SECONDS = 10;
/** How long an attached run waits for the monitor to exit after the pod's end (its last record, cgroup and files). */
const MONITOR_EXIT_WAIT_MS = 5_000;
/** How long a run that could not attach waits for the monitor's own report of why. */
const STARTUP_REPORT_WAIT_MS = 5_000;

export const runFlags = {
  rm: { type: 'boolean', description: 'remove the pod when it ends' },
  detach: { type: 'boolean', char: 'd', description: 'start the pod in the background and print its ID once its apps run' },
  name: { type: 'string', description: 'name the pod (unique; default: generated)' },
  env: { type: 'string', char: 'e', multiple: true, format: { pattern: ENV_ENTRY, expected: 'KEY=VALUE' }, description: 'set an environment variable (KEY=VALUE); repeatable' },
  workdir: { type: 'string', char: 'w', format: { pattern: ABSOLUTE_PATH, expected: 'an absolute path' }, description: 'working directory inside the container (absolute)' },
  user: { type: 'string', char: 'u', description: 'USER[:GROUP], by name (from the container\'s /etc/passwd and /etc/group) or id' },
  hostname: { type: 'string', description: 'the container\'s host name (default: the pod name)' },
  interactive: { type: 'boolean', char: 'i', description: 'keep stdin open and pass it to the container' },
  tty: { type: 'boolean', char: 't', description: 'give the container a terminal' },
  cpus: { type: 'integer', description: 'number of vCPUs', default: 1, min: 1, max: MAX_CPUS },
  memory: { type: 'integer', description: 'guest memory in MiB', default: 256, min: MIN_MEMORY_MIB, max: MAX_MEMORY_MIB },
  'storage-size': { type: 'string', format: { pattern: SIZE_FORM, expected: SIZE_EXPECTED }, description: 'the size of the pod\'s writable layer, a sparse disk on the host\'s (default 10G); a full layer is ENOSPC in the pod' },
  rootfs: { type: 'string', format: { pattern: /^(block|fs)$/, expected: 'block or fs' }, description: 'how the images reach the guest: block, a read-only disk (default; built once per image, per run for a directory or tar), or fs, the host directory over virtio-fs (nothing to build; slower file access)' },
  net: { type: 'string', description: 'the network the pod joins (vmctr network ls), or none (default: none, loopback only)' },
  port: { type: 'string', char: 'p', multiple: true, description: 'forward a host port to the pod: [HOSTIP:]HOSTPORT:PODPORT[/tcp|udp]; repeatable (needs --net)' },
  ip: { type: 'string', description: 'the pod\'s address on its network (default: the lowest free one)' },
  dns: { type: 'string', multiple: true, description: 'a resolver for the pod (default: the host\'s); repeatable' },
  ...insecureOptionsFlag,
  root: { type: 'string', description: 'vmctr state directory [env: VMCTR_ROOT] (default /var/lib/vmctr)', helpGroup: 'GLOBAL' },
} as const;

export const runSyntax = {
  command: 'run',
  flags: runFlags,
  usageExitCode: RunExitCode.error,
  operand: { name: 'ROOTFS', description: 'default, a root filesystem directory or tar, or an image name' },
} as const satisfies CommandSyntax;

export type RunFlags = FlagValues<typeof runFlags>;

/**
 * Every failure to start as `vmctr run` reports it: a UserError with one of
 * RunExitCode's statuses (low codes are the container's).
 */
export function runError(err: unknown): UserError {
  if (err instanceof UserError && Object.values(RunExitCode).includes(err.exitCode as 125)) return err;
  return new UserError((err as Error).message, RunExitCode.error);
}

/** Runs the pod `request` describes: detached, or attached until it ends and exiting with its status; a failure to start is thrown as runError's. */
export async function run(request: RunApps): Promise<void> {
  const { flags } = request.request;
  const root = storeRoot(flags.root);
  const kernel = requireFile(defaultKernelPath(), 'kernel');
  const agentImage = requireFile(agentImagePath(), 'agent image');
  const insecureImage = flags['insecure-options'] === 'image';
  try {
    verifyStage1([{ kind: 'kernel', path: kernel }, { kind: 'agent-image', path: agentImage }], insecureImage);
  } catch (err) {
    if (err instanceof Stage1Error) throw new UserError(err.message, RunExitCode.error);
    throw err;
  }
  const host = checkHostSupport();
  if (!host.ok) throw new UserError(`cannot run VMs on this host: ${host.reason}`, RunExitCode.error);
  if (flags.detach && flags.rm) throw new UserError('--rm and -d do not go together: a detached pod is removed with vmctr rm', RunExitCode.error);

  let layerBytes = DEFAULT_LAYER_BYTES;
  try {
    if (flags['storage-size'] !== undefined) layerBytes = parseSize(flags['storage-size']);
  } catch (err) {
    throw new UserError(`--storage-size: ${(err as Error).message}`, RunExitCode.error);
  }
  const apps: LaunchApp[] = request.pod.apps.map((app) => ({ ...app, image: imagePath(app.image) }));
  const record: PodRecord = {
    version: RECORD_VERSION,
    id: newPodId(),
    name: flags.name ?? '',
    created: new Date().toISOString(),
    state: 'starting',
    apps: apps.map((a) => ({ name: a.name, image: a.image, command: a.command })),
    ...(flags.detach ? {} : { owner: self() }),
  };
  let created;
  try {
    created = await PodDir.create(root, record);
  } catch (err) {
    if (err instanceof PodNameError) throw new UserError(err.message, RunExitCode.error);
    throw err;
  }
  const { dir, lock } = created;
  let group: PodCgroup | undefined;
  let network: PodNetworkConfig | undefined;
  try {
    group = podCgroup(record.id, flags.memory, flags.cpus);
    // Before any VM starts: an address, the tap, the rules; a taken --ip or a port in use ends here.
    network = await attachNetwork(root, record.id, flags);
  } catch (err) {
    group?.remove();
    await dir.remove();
    lock.release();
    throw new UserError((err as Error).message, RunExitCode.error);
  }
  if (network) await dir.writeRecord({ ...record, network: { name: network.network, ip: network.ip, ports: flags.port } });
  const tty = flags.tty ? { rows: process.stdout.rows || 24, cols: process.stdout.columns || 80 } : undefined;
  const launch: PodLaunch = {
    apps,
    volumes: request.pod.volumes,
    exitOnFirst: request.pod.exitOnFirst,
    cpus: flags.cpus,
    memoryMiB: flags.memory,
    rootfs: (flags.rootfs ?? 'block') as RootfsMode,
    layerBytes,
    hostname: flags.hostname ?? dir.name,
    stdin: flags.interactive,
    ...(tty ? { tty } : {}),
    rm: flags.rm,
    foreground: !flags.detach,
    root,
    kernel,
    agentImage,
    insecureImage,
    defaultImage: apps.some((a) => a.image === DEFAULT_IMAGE) ? defaultImagePath() : '',
    ...(network ? { network } : {}),
  };
  await writeFile(dir.launchPath, JSON.stringify(launch, null, 2) + '\n');

  // The monitor gets the pod's lock as its fd 3 (the same open file, so the same lock, held until it exits)
  // and the start-up pipe as fd 4; its own output goes to monitor.log. In the pod's cgroup from its first
  // instruction: a shell moves itself in, then becomes the monitor (the same pid).
  const log = openSync(dir.monitorLog, 'a', 0o644);
  const monitorArgv = [process.execPath, ...process.execArgv, process.argv[1]!, MONITOR_COMMAND, dir.path];
  const [file, ...args] = group ? ['/bin/sh', '-c', 'echo $$ > "$0" && exec "$@"', group.procsPath, ...monitorArgv] : monitorArgv;
  const monitor = spawn(file!, args, {
    detached: true,
    stdio: ['ignore', log, log, lock.fd, 'pipe'],
  });
  closeSync(log);
  lock.release();
  monitor.unref();
  const monitorExited = new Promise((resolve) => monitor.once('exit', resolve));
  const events = createInterface({ input: monitor.stdio[4] as NodeJS.ReadableStream });
  const startup = startupEvents(events, dir.monitorLog);

  if (flags.detach) {
    await startup.started;
    events.close();
    process.stdout.write(`${record.id}\n`);
    return;
  }
  await startup.listening;
  let status: number;
  try {
    status = await attachOwner(dir.controlSocket, flags.interactive, flags.tty, () => monitorGone(monitorExited, dir, record.id, flags.rm), group);
  } catch (err) {
    // A pod that failed before this process attached (a missing image...) said why on the start-up pipe.
    await Promise.race([startup.started, new Promise((resolve) => setTimeout(resolve, STARTUP_REPORT_WAIT_MS))]).catch(async (failure: unknown) => {
      await monitorGone(monitorExited, dir, record.id, flags.rm);
      throw failure;
    });
    throw err;
  }
  // When `vmctr run` returns the pod is gone, its monitor included (a script may check); stdin may still hold the event loop open.
  await monitorGone(monitorExited, dir, record.id, flags.rm);
  process.exit(status);
}

/** The start-up pipe's events (monitor.ts): progress to stderr; a start failure as run's one-line error. */
function startupEvents(lines: ReturnType<typeof createInterface>, monitorLog: string) {
  let listening!: () => void;
  let started!: () => void;
  let failed!: (err: UserError) => void;
  const listeningP = new Promise<void>((resolve) => (listening = resolve));
  const startedP = new Promise<void>((resolve) => (started = resolve));
  const failure = new Promise<never>((_, reject) => (failed = reject));
  failure.catch(() => {});
  let heard = false;
  lines.on('line', (line) => {
    let event: Record<string, unknown>;
    try {
      event = JSON.parse(line) as Record<string, unknown>;
    } catch {
      return;
    }
    if (typeof event.progress === 'string') process.stderr.write(`${event.progress}\n`);
    if (event.listening) {
      heard = true;
      listening();
    }
    if (event.started) started();
    if (typeof event.error === 'string') failed(new UserError(event.error, Number(event.exitCode) || RunExitCode.failure));
  });
  lines.once('close', () => {
    if (!heard) failed(new UserError(`the pod's monitor died while starting: ${lastLine(monitorLog)}`, RunExitCode.failure));
    else failed(new UserError('the pod did not start', RunExitCode.failure));
  });
  // Either may go unawaited (an attached run hears of a failure from the attach): a rejection is not left unhandled.
  const listeningOrFailed = Promise.race([listeningP, failure]);
  const startedOrFailed = Promise.race([startedP, failure]);
  listeningOrFailed.catch(() => {});
  startedOrFailed.catch(() => {});
  return { listening: listeningOrFailed, started: startedOrFailed };
}

/**
 * Attached as the pod's owner: a first Ctrl-C goes to the apps, a second
 * ends the pod; SIGTERM stops it (SIGTERM to the apps, the VM ended after a
 * grace period); a closed stdout kills it and exits as a filter does.
 */
async function attachOwner(socket: string, stdin: boolean, tty: boolean, ended: () => Promise<void>, group: PodCgroup | undefined): Promise<number> {
  let interrupts = 0;
  const attachment = await attach(socket, { op: 'attach', stdin, owner: true }, {
    stdin,
    tty,
    signal: (name, forward) => {
      if (name === 'SIGINT' && interrupts++ > 0) void request(socket, { op: 'kill' }).catch(() => {});
      else if (name === 'SIGTERM') void request(socket, { op: 'stop', timeoutSeconds: SIGTERM_GRACE_SECONDS }).catch(() => {});
      else forward(constants.signals[name]);
    },
    outputClosed: () => {
      void request(socket, { op: 'kill' }).catch(() => {}).then(ended).finally(() => process.exit(EXIT_SIGPIPE));
    },
  });
  const exit = await attachment.exit;
  // A monitor that vanished without a word may have been the OOM killer's choice: say so rather than "went away".
  return reportExit(exit.code === RunExitCode.failure && group && group.oomKills() > 0 ? { ...exit, error: OOM_KILLED } : exit);
}

/** The pod's network, attached on the host (net/), or none with --net none or without --net. */
async function attachNetwork(root: string, podId: string, flags: PodFlags): Promise<PodNetworkConfig | undefined> {
  const wanted = flags.net !== undefined && flags.net !== 'none';
  if (!wanted) {
    const stray = flags.port.length ? '-p' : flags.ip !== undefined ? '--ip' : flags.dns.length ? '--dns' : undefined;
    if (stray) throw new UserError(`${stray} needs a network: add --net vmctr0 (or another from vmctr network ls)`, RunExitCode.error);
    return undefined;
  }
  return new PodNetworks(root).attach(podId, {
    network: flags.net!,
    ...(flags.ip !== undefined ? { ip: flags.ip } : {}),
    ports: flags.port.map(parsePortForward),
    ...(flags.dns.length ? { dns: flags.dns } : {}),
  });
}

/**
 * The pod's host cgroup, made before its monitor starts; none on a host
 * without cgroup v2 (said on stderr: the pod runs without limits).
 */
function podCgroup(id: string, memoryMiB: number, cpus: number): PodCgroup | undefined {
  const unavailable = cgroupUnavailable();
  if (unavailable) {
    process.stderr.write(`vmctr: no cgroup for the pod: ${unavailable}\n`);
    return undefined;
  }
  return PodCgroup.create(id, podLimits(memoryMiB, cpus));
}

/**
 * Waits (a little) for the monitor to exit once the pod has ended, and for a
 * `--rm` pod removes its cgroup, which only then is empty, and what a monitor
 * that died (SIGKILL, the OOM killer) left of the pod: when `vmctr run`
 * returns, nothing of the pod is left.
 */
async function monitorGone(exited: Promise<unknown>, dir: PodDir, id: string, rm: boolean): Promise<void> {
  await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, MONITOR_EXIT_WAIT_MS))]);
  if (!rm) return;
  if (existsSync(dir.path)) {
    // Loaded only here: a monitor that removed its pod, as it does, needs none of vmctr rm's code.
    const { removeDeadPod } = await import('./pod-control.js');
    await removeDeadPod(dir).catch(() => {}); // vmctr gc removes it
  }
  try {
    PodCgroup.of(id).remove();
  } catch {
    // vmctr gc removes it
  }
}

/** Prints why the pod or process ended, when not by its own exit, and returns its status. */
export function reportExit(exit: AttachExit): number {
  if (exit.error) process.stderr.write(`vmctr: ${exit.error}\n`);
  return exit.code;
}

function requireFile(path: string, what: string): string {
  try {
    accessSync(path, fsConstants.R_OK);
  } catch {
    throw new UserError(`${what} not found at ${path}: run setup/install.sh`, RunExitCode.error);
  }
  return path;
}

/** A directory or tar is given to the monitor as an absolute path: it does not share this process's working directory. */
function imagePath(rootfs: string): string {
  return rootfs !== DEFAULT_IMAGE && existsSync(rootfs) ? resolve(rootfs) : rootfs;
}

/** The last line of the monitor's log: its crash, when it crashed. */
function lastLine(path: string): string {
  let text = '';
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    // no log: nothing to quote
  }
  return text.trim().split('\n').pop()?.slice(0, 300) || `no output (see ${path})`;
}
