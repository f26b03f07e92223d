/**
 * A pod's monitor: the process that is the pod's VMM. `vmctr run` spawns it
 * in a session of its own, holding the pod's lock (inherited), and it lives
 * as long as the pod: it prepares the apps' root filesystems, boots the VM,
 * starts the apps, keeps their output in the pod's logs, serves the control
 * socket (PROTOCOL.md) to any number of CLIs, and when the pod ends writes
 * the record, tells its clients and exits. The kernel drops the lock when it
 * exits, however it exits: that is how other commands know it is gone.
 *
 * Start-up is reported on the pipe the CLI gave it (fd 4) as JSON lines:
 * `{"progress": line}`, `{"listening": true}` once the socket accepts
 * clients, then `{"started": true}` or `{"error": line, "exitCode": n}`.
 */
import { closeSync, writeSync } from 'node:fs';
import { mkdir, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { createServer, type Server, type Socket } from 'node:net';
import type { Readable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { exitCode as containerExitCode, type ContainerExit, type ContainerProcess } from '../guest-agent/client.js';
import { ProtocolError } from '../guest-agent/frames.js';
import type { ContainerSpec } from '../guest-agent/protocol.js';
import { openInputFile } from '../cli/guest-kernel.js';
import { LineBufferedOutput } from '../cli/line-buffered-output.js';
import { RunExitCode } from '../cli/run-exit-code.js';
import { ImageError } from '../image/image-error.js';
import { Pod, type PodEnd } from '../pod/pod.js';
import { PodCgroup } from '../pod/pod-cgroup.js';
import { PodDir } from '../pod/pod-dir.js';
import type { PodRecord, PodState } from '../pod/pod-record.js';
import { self } from '../pod/process-identity.js';
import { prepareRootfs, RootfsError, type PreparedRootfs } from '../pod/rootfs-source.js';
import { rootfsShareName, VolumeBackend, VolumeBackendError, type BackendVolume } from '../pod/volume-backend.js';
import { createLayerDisk, LayerDiskError } from '../pod/layer-disk.js';
import { ImageVolumeError, populateVolume, type ImageVolume } from '../pod/image-volumes.js';
import type { MountSpec, VolumeSpec } from '../pod/volume-spec.js';
import { Stage1Error, verifyStage1 } from '../stage1/verify.js';
import { BootError } from '../vmm/boot/linux-loader.js';
import { AppLogWriter } from './app-log.js';
import { Journal } from './journal.js';
import { PodNetworks, type PodNetworkConfig } from '../net/pod-network.js';
import type { GuestNetwork } from '../pod/guest-network.js';
import { CappedFile } from './capped-file.js';
import { Connection, type DataType, type Frame } from './connection.js';
import { readLaunch, type PodLaunch } from './launch.js';
import { panicReason } from './panic-reason.js';
import { MONITOR_PROTOCOL_VERSION, MonitorMessage, parseRequest, parseSignal, parseTtySize, RequestError, type Request } from './protocol.js';

/** The fd of the start-up pipe (see above). */
const READY_FD = 4;
/** A foreground run's CLI attaches within milliseconds of the socket; one that has not after this is gone. */
const OWNER_ATTACH_TIMEOUT_MS = 30_000;
/** The guest console log is capped at this (and one older file of the same size). */
const CONSOLE_LOG_MAX = 4 * 1024 * 1024;
/** How long an app's output may pause before a partial line is written to its log. */
const LOG_IDLE_FLUSH_MS = 200;
/** How long an exec waits for the agent to report its app started: a guest that never does gets no exec, not a hung client. */
const AGENT_ANSWER_MS = 30_000;
/** How long clients get to read the pod's last messages before the monitor exits. */
const CLIENT_FLUSH_MS = 2_000;
/** `vmctr stop`'s grace period when the monitor itself gets SIGTERM. */
const SIGTERM_GRACE_SECONDS = 10;
const SIGTERM = 15;
const SIGKILL = 9;
/** The exit status of an app ended by killing the VM (as SIGKILL: 128 + 9). */
const KILLED_STATUS = 128 + SIGKILL;

class StartError extends Error {
  constructor(message: string, readonly exitCode: number) {
    super(message);
  }
}

interface App {
  name: string;
  image: string;
  command: string[];
  /** The container as started: what an exec inherits (env, user, cwd, hostname). */
  container: Omit<ContainerSpec, 'rootfs'>;
  process?: ContainerProcess;
  exit?: ContainerExit;
  /** Settles once the app's process has ended and all its output is logged. */
  done?: Promise<void>;
  log: AppLogWriter;
  flushTimer?: NodeJS.Timeout;
}

type Session =
  | { kind: 'attach'; conn: Connection; owner: boolean; detached: boolean }
  | { kind: 'exec'; conn: Connection; process: ContainerProcess }
  /** A stop or kill, answered when the pod has ended. */
  | { kind: 'waiter'; conn: Connection };

interface Outcome {
  state: PodState;
  exitCode: number;
  error?: string;
}

export class Monitor {
  private readonly sessions = new Set<Session>();
  private readonly apps: App[];
  private readonly consoleFile: CappedFile;
  private readonly console: LineBufferedOutput;
  private server: Server | undefined;
  private cgroup: PodCgroup | undefined;
  private pod: Pod | undefined;
  /** virtiofsd, serving the pod's volumes; none for a pod without. */
  private volumes: VolumeBackend | undefined;
  /** The volumes made for what the apps' images declare. */
  private readonly imageVolumes: VolumeSpec[] = [];
  /** Why the pod ended early when its volume backend went away. */
  private backendFailure: string | undefined;
  private readonly rootfs: PreparedRootfs[] = [];
  /** Set by kill, rm -f and a stop's grace running out: the VM ends without waiting for its apps. */
  private killed = false;
  /** The foreground `vmctr run` that owned the pod went away without detaching. */
  private ownerGone = false;
  private stopTimer: NodeJS.Timeout | undefined;
  private ending = false;
  /** journald's socket, when the host runs journald: every app's output is copied there. */
  private readonly journal = Journal.connect();
  private firstFailure: App | undefined;
  /** What attached clients sent before the apps started, in order. */
  private readonly earlyInput: Array<{ session: Session; frame: Frame }> = [];
  private ownerAttached!: () => void;
  private readonly ownerAttach = new Promise<void>((resolve) => (this.ownerAttached = resolve));

  private constructor(
    private readonly dir: PodDir,
    private readonly launch: PodLaunch,
    private record: PodRecord,
  ) {
    this.apps = launch.apps.map((app) => ({
      name: app.name,
      image: app.image,
      command: app.command,
      container: { args: [] },
      log: new AppLogWriter(dir.logsDir, app.name, {
        onRecord: (stream, line) => this.journal?.send(record, app.name, stream, line),
      }),
    }));
    this.consoleFile = new CappedFile(dir.consoleLog, CONSOLE_LOG_MAX);
    this.console = new LineBufferedOutput(this.consoleFile.stream());
  }

  /** The monitor's whole life, for the pod in directory `path`; ends the process. */
  static async main(path: string): Promise<never> {
    const dir = PodDir.at(path);
    const record = await dir.readRecord();
    if (!record) throw new Error(`no pod record in ${path}`);
    const launch = await readLaunch(dir.launchPath);
    const monitor = new Monitor(dir, launch, record);
    // The CLI's terminal signals are the CLI's to forward; SIGTERM (a host shutting down) stops the pod properly.
    process.on('SIGINT', () => {});
    process.on('SIGHUP', () => {});
    process.on('SIGTERM', () => monitor.stop(SIGTERM_GRACE_SECONDS));
    return monitor.run();
  }

  private async run(): Promise<never> {
    let outcome: Outcome;
    try {
      await this.listen();
      ready({ listening: true });
      this.findCgroup();
      await this.save({ monitor: self(), ...(this.cgroup ? { cgroup: this.cgroup.path } : {}) });
      outcome = await this.runPod();
    } catch (err) {
      const failure = err instanceof StartError ? err : new StartError((err as Error).message, RunExitCode.failure);
      const line = failure.message.split('\n')[0]!;
      ready({ error: line, exitCode: failure.exitCode });
      outcome = { state: 'failed', exitCode: failure.exitCode, error: line };
    }
    closeReady();
    return this.finish(outcome);
  }

  private async runPod(): Promise<Outcome> {
    const launch = this.launch;
    for (const [i, app] of launch.apps.entries()) {
      let prepared: PreparedRootfs;
      try {
        prepared = await prepareRootfs(app.image, {
          mode: launch.rootfs,
          root: launch.root,
          defaultImage: () => launch.defaultImage,
          podDisk: this.dir.disk(`rootfs-${app.name}.ext4`),
          command: app.command,
          overrides: { env: app.env.length ? app.env : undefined, workdir: app.workdir, user: app.user },
          progress: (line) => ready({ progress: line }),
        });
      } catch (err) {
        if (err instanceof RootfsError || err instanceof ImageError) throw new StartError(err.message, RunExitCode.error);
        throw err;
      }
      this.rootfs.push(prepared);
      const mounts = [...app.mounts, ...(await this.imageVolumeMounts(i, prepared.imageVolumes ?? [], app.mounts))];
      this.apps[i]!.container = {
        ...prepared.container,
        hostname: launch.hostname,
        ...(i === 0 && launch.stdin ? { stdin: true } : {}),
        ...(i === 0 && launch.tty ? { tty: launch.tty } : {}),
        ...(mounts.length ? { volumes: mounts.map((m) => ({ name: m.volume, target: m.target, readOnly: m.readOnly })) } : {}),
      };
      if (this.killed || this.ownerGone) throw new StartError('the pod was stopped while starting', RunExitCode.failure);
    }
    // An image served over virtio-fs is one more directory of the backend, read-only there.
    const images: BackendVolume[] = this.rootfs.flatMap((r, i) => ('directory' in r.image ? [{ name: rootfsShareName(i), source: r.image.directory, readOnly: true }] : []));
    const volumes = [...launch.volumes, ...this.imageVolumes, ...images];
    if (volumes.length) {
      try {
        this.volumes = await VolumeBackend.start(this.dir, volumes);
      } catch (err) {
        if (err instanceof VolumeBackendError) throw new StartError(err.message, RunExitCode.error);
        throw err;
      }
      // Without its backend the guest's file requests would wait forever: the pod ends, saying why.
      void this.volumes.exited.then((reason) => {
        if (this.ending) return;
        this.backendFailure ??= reason;
        this.pod?.kill();
      });
    }
    try {
      await createLayerDisk(this.dir.layerDisk, launch.layerBytes);
    } catch (err) {
      if (err instanceof LayerDiskError) throw new StartError(err.message, RunExitCode.error);
      throw err;
    }
    try {
      // Checked again right before the boot: `vmctr run` checked them seconds ago, before the pod's disks were made;
      // a check remembered (stage1/verification-cache.ts) costs three stats per file.
      verifyStage1([{ kind: 'kernel', path: launch.kernel }, { kind: 'agent-image', path: launch.agentImage }], launch.insecureImage);
    } catch (err) {
      if (err instanceof Stage1Error) throw new StartError(err.message, RunExitCode.error);
      throw err;
    }
    const kernel = openInputFile(launch.kernel, 'kernel');
    try {
      this.pod = await Pod.boot({
        kernel,
        agentImage: launch.agentImage,
        rootfs: this.rootfs.map((r, i) => ('disk' in r.image ? { disk: r.image.disk } : { share: rootfsShareName(i) })),
        layerDisk: this.dir.layerDisk,
        cpus: launch.cpus,
        memoryMiB: launch.memoryMiB,
        console: this.console,
        ...(launch.network ? { network: { guest: guestNetwork(launch.network), hostname: launch.hostname } } : {}),
        ...(this.volumes ? { volumesSocket: this.volumes.socket } : {}),
      });
    } catch (err) {
      if (err instanceof BootError) throw new StartError(err.message, RunExitCode.error);
      throw new StartError((err as Error).message, RunExitCode.failure);
    } finally {
      kernel.close();
    }
    if (this.backendFailure) {
      // virtiofsd went away while the guest booted: no app could mount its volumes.
      this.pod.kill();
      await this.pod.ended();
      throw new StartError(this.backendFailure, RunExitCode.failure);
    }
    if (launch.foreground && !this.ownerGone) await Promise.race([this.ownerAttach, delay(OWNER_ATTACH_TIMEOUT_MS)]);
    if (launch.foreground && !this.attachedOwner()) this.ownerGone = true;
    if (this.killed || this.ownerGone) {
      this.pod.kill();
      await this.pod.ended();
      if (this.ownerGone) return this.outcome({ kind: 'shutdown' });
      throw new StartError('the pod was stopped while starting', RunExitCode.failure);
    }
    this.apps.forEach((app, i) => this.startApp(app, i));
    for (const { session, frame } of this.earlyInput.splice(0)) {
      try {
        if (!session.conn.closed) this.sessionFrame(session, frame);
      } catch {
        session.conn.socket.destroy(); // out of step, as Connection would have closed it
      }
    }
    for (const s of this.sessions) if (s.kind === 'attach') s.conn.socket.resume();
    await this.save({ state: 'running', started: new Date().toISOString() });
    ready({ started: true });
    closeReady();
    await Promise.all(this.apps.map((a) => a.done));
    const end = this.killed || this.ownerGone ? await this.pod.ended() : await this.pod.shutdown();
    return this.outcome(end);
  }

  /**
   * Docker's semantics for the volumes app `index`'s image declares: each
   * path no mount of the app covers gets a new volume of the pod's, holding
   * what the image has there.
   */
  private async imageVolumeMounts(index: number, declared: readonly ImageVolume[], mounts: readonly MountSpec[]): Promise<MountSpec[]> {
    const added: MountSpec[] = [];
    for (const [k, volume] of declared.entries()) {
      if (mounts.some((m) => m.target === volume.path)) continue;
      let name = `image-${index}-${k}`;
      while (this.launch.volumes.some((v) => v.name === name)) name += '-';
      const dir = join(this.dir.volumesDir, name);
      await mkdir(dir, { recursive: true });
      try {
        await populateVolume(volume, dir);
      } catch (err) {
        if (err instanceof ImageVolumeError) throw new StartError(err.message, RunExitCode.error);
        throw err;
      }
      this.imageVolumes.push({ name, kind: 'empty', readOnly: false });
      added.push({ volume: name, target: volume.path, readOnly: false });
    }
    return added;
  }

  /**
   * The pod's own cgroup, which `vmctr run` started this process in, so the
   * VM and every helper count against the pod's limits; none on a host
   * without cgroup v2 (status says so).
   */
  private findCgroup(): void {
    this.cgroup = PodCgroup.ofProcess('self');
    if (this.cgroup && this.cgroup.path !== PodCgroup.of(this.record.id).path) {
      throw new StartError(`the monitor is in another pod's cgroup (${this.cgroup.path})`, RunExitCode.error);
    }
  }

  private attachedOwner(): boolean {
    return [...this.sessions].some((s) => s.kind === 'attach' && s.owner);
  }

  private startApp(app: App, index: number): void {
    const proc = this.pod!.startApp(index, app.container);
    app.process = proc;
    const exited = proc.exit.then(
      (exit) => {
        app.exit = exit;
      },
      () => {},
    );
    app.done = Promise.all([
      exited,
      this.relay(proc.stdout, (chunk) => this.toAttached(app, index, MonitorMessage.stdout, 'stdout', chunk)),
      this.relay(proc.stderr, (chunk) => this.toAttached(app, index, MonitorMessage.stderr, 'stderr', chunk)),
    ]).then(() => this.appEnded(app));
  }

  private appEnded(app: App): void {
    clearTimeout(app.flushTimer);
    app.log.flush();
    const failed = !app.exit || containerExitCode(app.exit) !== 0;
    if (failed) this.firstFailure ??= app;
    if (failed && this.launch.exitOnFirst && !this.ending) this.stop(SIGTERM_GRACE_SECONDS);
    void this.save({}).catch(() => {});
  }

  /**
   * Output of a process, chunk by chunk, to `deliver`; when it reports
   * receivers that are not keeping up, the stream pauses until they drain
   * (the process's pipe in the guest fills, and it waits). Resolves at the
   * stream's end.
   */
  private relay(stream: Readable, deliver: (chunk: Buffer) => Socket[]): Promise<void> {
    stream.on('data', (chunk: Buffer) => {
      const full = deliver(chunk);
      if (full.length === 0) return;
      stream.pause();
      void Promise.all(full.map(drained)).then(() => stream.resume());
    });
    return finished(stream).catch(() => {});
  }

  private toAttached(app: App, index: number, type: DataType, stream: 'stdout' | 'stderr', chunk: Buffer): Socket[] {
    app.log.write(stream, chunk);
    // A line without its newline yet (a prompt) reaches the log once the app pauses.
    app.flushTimer ??= setTimeout(() => {
      app.flushTimer = undefined;
      app.log.flush();
    }, LOG_IDLE_FLUSH_MS);
    const full: Socket[] = [];
    for (const s of this.sessions) if (s.kind === 'attach' && !s.conn.sendData(type, index + 1, chunk)) full.push(s.conn.socket);
    return full;
  }

  private signalApps(signal: number): void {
    for (const app of this.apps) if (app.process && !app.exit) app.process.signal(signal);
  }

  /** SIGTERM to the apps; the VM ends after `timeoutSeconds` if they have not. */
  stop(timeoutSeconds: number): void {
    if (this.ending || this.stopTimer) return;
    if (!this.apps.some((a) => a.process)) return this.kill();
    void this.save({ state: 'stopping' }).catch(() => {});
    this.signalApps(SIGTERM);
    this.stopTimer = setTimeout(() => this.kill(), timeoutSeconds * 1000);
  }

  kill(): void {
    if (this.ending) return;
    this.killed = true;
    this.pod?.kill();
  }

  /** The foreground `vmctr run` went away without detaching: as before the monitor existed, the pod ends with it. */
  private ownerLeft(): void {
    this.ownerGone = true;
    this.pod?.kill();
  }

  private outcome(end: PodEnd): Outcome {
    if (this.backendFailure) return { state: 'failed', exitCode: RunExitCode.failure, error: this.backendFailure };
    if (end.kind === 'panic') {
      const why = panicReason(this.dir.consoleLog);
      return { state: 'failed', exitCode: RunExitCode.panic, error: `the guest kernel panicked${why ? `: ${why}` : ''}` };
    }
    if (this.ownerGone) return { state: 'dead', exitCode: KILLED_STATUS, error: 'its vmctr was killed' };
    const started = this.apps.filter((a) => a.process);
    if (started.every((a) => a.exit) || this.killed) {
      const failure = this.firstFailure;
      const exitCode = failure ? (failure.exit ? containerExitCode(failure.exit) : KILLED_STATUS) : 0;
      const error = this.apps.map((a) => (a.exit && 'error' in a.exit ? a.exit.error : undefined)).find((e) => e);
      return { state: 'exited', exitCode, ...(error ? { error } : {}) };
    }
    return { state: 'failed', exitCode: RunExitCode.failure, error: end.kind === 'failed' ? end.detail : 'the guest powered off' };
  }

  private async finish(outcome: Outcome): Promise<never> {
    this.ending = true;
    clearTimeout(this.stopTimer);
    this.console.flush();
    for (const app of this.apps) await app.log.close().catch(() => {});
    // The pod's address, tap and rules go with its VM (rm and gc release them when this process was killed).
    if (this.launch.network) await new PodNetworks(this.launch.root).detach(this.record.id).catch((err: Error) => process.stderr.write(`vmctr: releasing the pod's network: ${err.message}\n`));
    if (this.journal?.dropped) process.stderr.write(`vmctr: ${this.journal.dropped} lines of output were not copied to the journal (it was full or went away); the pod's logs have them\n`);
    this.journal?.close();
    await Promise.all(this.rootfs.map((r) => r.release().catch(() => {})));
    await this.volumes?.stop();
    const apps = this.record.apps.map((record, i) => {
      const app = this.apps[i];
      if (!app?.process) return record;
      const exitCode = app.exit ? containerExitCode(app.exit) : KILLED_STATUS;
      const error = app.exit && 'error' in app.exit ? app.exit.error : app.exit ? undefined : 'killed with the VM';
      return { ...record, exitCode, ...(error ? { error } : {}) };
    });
    const update = { state: outcome.state, exitCode: outcome.exitCode, ended: new Date().toISOString(), apps, ...(outcome.error ? { error: outcome.error } : {}) };
    // The record is final before any client hears the end: a `vmctr ps` right after `vmctr run` returns sees it.
    if (this.launch.rm) await this.dir.remove();
    else await this.save(update).catch(() => {});
    const exit = { code: outcome.exitCode, ...(outcome.error ? { error: outcome.error } : {}) };
    for (const s of this.sessions) {
      if (s.kind === 'attach') s.conn.end(MonitorMessage.exit, exit);
      else if (s.kind === 'waiter') s.conn.end(MonitorMessage.reply, exit);
      else s.conn.end(MonitorMessage.exit, { code: KILLED_STATUS, error: 'the pod ended' });
    }
    this.server?.close();
    if (!this.launch.rm) await unlink(this.dir.controlSocket).catch(() => {});
    const closed = [...this.sessions].map((s) => new Promise((resolve) => s.conn.socket.once('close', resolve)));
    await Promise.race([Promise.all(closed), delay(CLIENT_FLUSH_MS)]);
    this.consoleFile.close();
    // The cgroup outlives this process by a moment: KVM's worker thread for the VM is in it until the VM's last
    // reference (this process's fds and mappings) is gone. `vmctr run --rm`, `rm` and `gc` remove it after.
    process.exit(0);
  }

  private async save(update: Partial<PodRecord>): Promise<void> {
    this.record = { ...this.record, ...update };
    if (this.launch.rm && this.ending) return;
    await this.dir.writeRecord(this.record);
  }

  private async listen(): Promise<void> {
    await unlink(this.dir.controlSocket).catch(() => {});
    const server = createServer((socket) => this.accept(socket));
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.dir.controlSocket, () => {
        server.off('error', reject);
        resolve();
      });
    });
  }

  private accept(socket: Socket): void {
    let session: Session | undefined;
    let requested = false;
    const conn = new Connection(socket, {
      frame: (frame) => {
        if (!requested) {
          requested = true;
          if (frame.kind !== 'control' || frame.type !== MonitorMessage.request) throw new ProtocolError('expected a request first');
          const started = this.request(conn, frame.body);
          // An exec's session exists once its process does; its client sends nothing before the reply.
          void Promise.resolve(started).then((s) => {
            session = s;
            if (!s) return;
            if (conn.closed) this.sessionClosed(s);
            else this.sessions.add(s);
          });
          return;
        }
        if (session) this.sessionFrame(session, frame);
      },
      closed: () => {
        if (session) this.sessionClosed(session);
      },
    });
    if (this.ending) return conn.end(MonitorMessage.error, { code: RunExitCode.error, message: 'the pod is ending' });
    conn.send(MonitorMessage.hello, { protocol: MONITOR_PROTOCOL_VERSION, pod: this.record.name, id: this.record.id });
  }

  private sessionClosed(session: Session): void {
    this.sessions.delete(session);
    if (this.ending) return;
    if (session.kind === 'attach' && session.owner && !session.detached) this.ownerLeft();
    // An exec'd process whose client left has no one to talk to.
    if (session.kind === 'exec') session.process.signal(SIGKILL);
  }

  private request(conn: Connection, body: Record<string, unknown>): Session | undefined | Promise<Session | undefined> {
    let request: Request;
    try {
      request = parseRequest(body);
    } catch (err) {
      conn.end(MonitorMessage.error, { code: RunExitCode.error, message: (err as Error).message });
      return undefined;
    }
    switch (request.op) {
      case 'status':
        conn.end(MonitorMessage.reply, { ...this.record, stdin: this.launch.stdin, tty: this.launch.tty !== undefined });
        return undefined;
      case 'signal':
        this.signalApps(request.signal);
        conn.end(MonitorMessage.reply, {});
        return undefined;
      case 'stop':
        this.stop(request.timeoutSeconds);
        return { kind: 'waiter', conn };
      case 'kill':
        this.kill();
        return { kind: 'waiter', conn };
      case 'attach': {
        const owner = request.owner && this.launch.foreground;
        conn.send(MonitorMessage.reply, { apps: this.apps.map((a) => a.name) });
        if (owner) queueMicrotask(() => this.ownerAttached());
        return { kind: 'attach', conn, owner, detached: false };
      }
      case 'exec':
        return this.exec(conn, request);
    }
  }

  private async exec(conn: Connection, request: Extract<Request, { op: 'exec' }>): Promise<Session | undefined> {
    const app = request.app === undefined ? this.apps[0] : this.apps.find((a) => a.name === request.app);
    // The agent joins an app once it runs (its `started`).
    const running = app?.process && (await Promise.race([app.process.pid, delay(AGENT_ANSWER_MS)])) !== undefined;
    const problem = !app
      ? `no app named "${request.app}" in this pod (apps: ${this.apps.map((a) => a.name).join(', ')})`
      : !running || app.exit || !this.pod || this.killed || this.ending
        ? `app "${app.name}" is not running`
        : undefined;
    if (problem) {
      conn.end(MonitorMessage.error, { code: RunExitCode.error, message: problem });
      return undefined;
    }
    const base = app!.container;
    const proc = this.pod!.exec(app!.process!, {
      args: request.args,
      env: mergeEnv(base.env ?? [], request.env),
      ...(request.user ?? base.user ? { user: request.user ?? base.user } : {}),
      ...(request.cwd ?? base.cwd ? { cwd: request.cwd ?? base.cwd } : {}),
      ...(request.stdin ? { stdin: true } : {}),
      ...(request.tty ? { tty: request.tty } : {}),
    });
    conn.send(MonitorMessage.reply, {});
    const send = (type: DataType) => (chunk: Buffer) => (conn.sendData(type, 1, chunk) ? [] : [conn.socket]);
    void Promise.all([
      proc.exit.then(
        (exit) => ({ code: containerExitCode(exit), ...('error' in exit && exit.error ? { error: exit.error } : {}) }),
        (err: Error) => ({ code: RunExitCode.failure, error: err.message }),
      ),
      this.relay(proc.stdout, send(MonitorMessage.stdout)),
      this.relay(proc.stderr, send(MonitorMessage.stderr)),
    ]).then(([exit]) => conn.end(MonitorMessage.exit, exit));
    return { kind: 'exec', conn, process: proc };
  }

  private sessionFrame(session: Session, frame: Frame): void {
    const target = session.kind === 'attach' ? this.apps[0]?.process : session.kind === 'exec' ? session.process : undefined;
    // The owner attaches before the VM has booted: its input waits for the app, and the socket stops being read meanwhile.
    if (session.kind === 'attach' && !target && !this.ending) {
      this.earlyInput.push({ session, frame });
      session.conn.socket.pause();
      return;
    }
    if (frame.kind === 'data') {
      if (frame.type !== MonitorMessage.stdin) throw new ProtocolError('a client sends only stdin data');
      const stdin = target?.stdin;
      if (!stdin || stdin.writableEnded) return;
      if (!stdin.write(frame.payload)) {
        session.conn.socket.pause();
        stdin.once('drain', () => session.conn.socket.resume());
      }
      return;
    }
    try {
      switch (frame.type) {
        case MonitorMessage.stdinClose:
          target?.stdin?.end();
          return;
        case MonitorMessage.resize: {
          const size = parseTtySize(frame.body);
          if (session.kind === 'exec' || this.launch.tty) target?.resize(size.rows, size.cols);
          return;
        }
        case MonitorMessage.signal: {
          const signal = parseSignal(frame.body.signal);
          if (session.kind === 'exec') session.process.signal(signal);
          else this.signalApps(signal);
          return;
        }
        case MonitorMessage.detach:
          if (session.kind === 'attach') session.detached = true;
          return;
        default:
          throw new ProtocolError(`unexpected message type ${frame.type}`);
      }
    } catch (err) {
      if (err instanceof RequestError) throw new ProtocolError(err.message);
      throw err;
    }
  }
}

/** The app's environment with the exec's entries over it: one entry per name, the last one given. */
function mergeEnv(base: string[], extra: string[]): string[] {
  const byName = new Map<string, string>();
  for (const entry of [...base, ...extra]) byName.set(entry.slice(0, entry.indexOf('=')), entry);
  return [...byName.values()];
}

let readyOpen = true;

/** A line on the start-up pipe; a CLI that went away is not an error. */
function ready(event: Record<string, unknown>): void {
  if (!readyOpen) return;
  try {
    writeSync(READY_FD, `${JSON.stringify(event)}\n`);
  } catch {
    closeReady();
  }
}

function closeReady(): void {
  if (!readyOpen) return;
  readyOpen = false;
  try {
    closeSync(READY_FD);
  } catch {
    // never opened: a monitor started by hand
  }
}

function drained(socket: Socket): Promise<void> {
  if (socket.destroyed || socket.writableLength === 0) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      socket.off('drain', done);
      socket.off('close', done);
      resolve();
    };
    socket.on('drain', done);
    socket.on('close', done);
  });
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}

/** The guest's side of the network the host attached. */
function guestNetwork(net: PodNetworkConfig): GuestNetwork {
  return { tap: net.tap, mac: net.mac, address: net.ip, prefixLength: net.prefixLength, gateway: net.gateway, dns: [...net.dns] };
}
