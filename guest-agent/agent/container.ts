/**
 * One process on the channel inside the guest: a container's main process,
 * which mounts its root, or a process joining a running container (an exec),
 * which runs in that container's root and UTS namespace and is killed when
 * the container's main process ends. Either way it resolves its user, starts
 * it through vmctr-exec, relays stdio under flow control and reports how it
 * ended, after the last byte of its output.
 */
import type { Channel } from '../channel.js';
import { controlLine, helperArgs, parseStatusLine, type HelperStatus } from '../exec-helper.js';
import { containerEnv } from '../container-env.js';
import { CreditedSender, CreditReceiver } from '../flow-control.js';
import { joinPath } from '../path.js';
import { MessageType, SETUP_FAILURE, type ControlMessage, type DataStream, type RootfsSpec, type StartMessage } from '../protocol.js';
import { resolveUser } from '../users.js';
import { decodeUtf8, encodeUtf8 } from '../utf8.js';
import { MountedRootfs } from './mounted-rootfs.js';
import type { ByteReader, Child, Platform } from './platform.js';

/** Where a process runs: its container's root and hostname. */
interface Placement {
  root: string;
  hostname: string | undefined;
  /** The app's cgroup: its own, or the joined container's. */
  cgroup?: string;
  /** Joining a container: its UTS namespace, open until the process is spawned. */
  uts?: number;
}

export interface ContainerOptions {
  /** Path of the vmctr-exec binary. */
  helper: string;
  /** Where per-container mount points live (a tmpfs in the guest). */
  stateDir: string;
  /** Where each container gets its own cgroup (in the guest: cgroup v2 under /sys/fs/cgroup); none outside a VM. */
  cgroupRoot?: string;
}

/** The most of the container's /etc/passwd or /etc/group the agent reads. */
const MAX_ACCOUNT_FILE = 4 * 1024 * 1024;
/** Control bytes queued for vmctr-exec at most: a host flooding signals or resizes loses the excess, the agent no memory. */
const MAX_CONTROL_QUEUE = 64 * 1024;
/** vmctr-exec's status lines are short; a longer one is cut here. */
const MAX_STATUS_LINE = 4096;

function oneLine(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).split('\n')[0]!.slice(0, 500);
}

export class Container {
  /** This container's own cgroup in the guest, which processes joining it share. */
  cgroup: string | undefined;
  private child: Child | undefined;
  private rootfs: MountedRootfs | undefined;
  /** The processes that joined this container and have not ended yet. */
  private readonly joined = new Set<Container>();
  private started = false;
  /** vmctr-exec has ended: so has every process of the container, and its namespace with it. */
  private helperExited = false;
  private controlQueued = 0;
  private stopping = false;
  private ended = false;
  /** The helper starts within the constructor (mounts and spawn are synchronous), so nothing from the host comes before. */
  private stdinState: 'open' | 'closed' | 'discard' = 'discard';
  private readonly stdinCredit: CreditReceiver;
  private readonly senders: Record<'stdout' | 'stderr', CreditedSender>;
  /** Settles once the container's last message is sent. */
  readonly finished: Promise<void>;

  constructor(
    private readonly spec: StartMessage,
    private readonly channel: Channel,
    private readonly options: ContainerOptions,
    private readonly platform: Platform,
    /** For a spec that joins a container: that container, if the agent has one with its id. */
    private readonly owner?: Container,
  ) {
    const id = spec.id;
    this.stdinCredit = new CreditReceiver(`container ${id} stdin`, (bytes) =>
      this.send({ type: MessageType.credit, body: { id, stream: 'stdin', bytes } }),
    );
    this.senders = {
      stdout: new CreditedSender((payload) => channel.sendData(MessageType.stdout, id, payload)),
      stderr: new CreditedSender((payload) => channel.sendData(MessageType.stderr, id, payload)),
    };
    this.finished = this.run();
  }

  /** True until the process has ended and its last message is sent. */
  get running(): boolean {
    return !this.ended;
  }

  /** A process may join: this is a container's own process, it runs, and the agent is not ending it. */
  private get joinable(): boolean {
    return !this.owner && this.started && !this.helperExited && !this.stopping;
  }

  stdin(payload: Uint8Array): void {
    this.stdinCredit.received(payload.length);
    this.writeStdin(payload);
  }

  closeStdin(): void {
    if (this.stdinState !== 'open') return;
    this.stdinState = 'closed';
    this.child?.stdin?.end();
  }

  credit(stream: DataStream, bytes: number): void {
    if (stream !== 'stdin') this.senders[stream].grant(bytes);
  }

  signal(signal: number): void {
    this.control(controlLine.signal(signal));
  }

  resize(rows: number, cols: number): void {
    if (this.spec.tty) this.control(controlLine.resize(rows, cols));
  }

  /** Kills the process and all it started (vmctr-exec does, when its control fd closes); its output and exit are still reported. */
  kill(): void {
    this.stopping = true;
    this.child?.control.end();
  }

  /** Kills the process and stops sending. */
  stop(reason: Error): void {
    this.kill();
    this.senders.stdout.close(reason);
    this.senders.stderr.close(reason);
  }

  /** Unmounts once no process runs in the mounts: neither the container's own nor one that joined it (killed as it ended, but maybe still reporting). */
  async unmount(): Promise<void> {
    await this.finished;
    // No process can join any more: the helper has exited.
    await Promise.all([...this.joined].map((exec) => exec.finished));
    this.rootfs?.unmount();
  }

  private send(message: ControlMessage): void {
    this.channel.send(message);
  }

  private control(line: string): void {
    // The helper ends before the agent stops writing: late lines meet a closed pipe, which is fine.
    if (this.ended || this.stopping || !this.child) return;
    if (this.controlQueued + line.length > MAX_CONTROL_QUEUE) return;
    this.controlQueued += line.length;
    const written = () => (this.controlQueued -= line.length);
    this.child.control.write([encodeUtf8(line)]).then(written, written);
  }

  private async run(): Promise<void> {
    const id = this.spec.id;
    let child: Child;
    try {
      child = this.spawnHelper();
    } catch (err) {
      this.ended = true;
      // Everything before the exec is set-up: exec failures come later, from vmctr-exec's status.
      this.send({ type: MessageType.error, body: { id, code: SETUP_FAILURE, message: oneLine(err) } });
      return;
    }
    const result: { final?: HelperStatus } = {};
    const exited = child.exited.then((status) => {
      this.helperExited = true;
      // The container ended with its main process: so do the processes that joined it, as docker's execs do.
      for (const exec of this.joined) exec.kill();
      return status;
    });
    const [status] = await Promise.all([
      exited,
      this.readStatus(child.status, (s) => {
        if (s.kind === 'started') {
          this.started = true;
          this.send({ type: MessageType.started, body: { id, pid: s.pid } });
        } else result.final = s;
      }),
      this.pump(child.stdout, this.senders.stdout),
      this.pump(child.stderr, this.senders.stderr),
    ]);
    this.ended = true;
    child.control.end();
    this.discardStdin();
    const final = result.final;
    if (final?.kind === 'exit') this.send({ type: MessageType.exit, body: { id, ...final.status } });
    else if (final?.kind === 'error') this.send({ type: MessageType.error, body: { id, code: final.code, message: final.message } });
    else {
      const helperEnd = 'signal' in status ? `killed by signal ${status.signal}` : `exit status ${status.code}`;
      this.send({ type: MessageType.error, body: { id, code: SETUP_FAILURE, message: `vmctr-exec ended without a status (${helperEnd})` } });
    }
    this.owner?.joined.delete(this);
  }

  private spawnHelper(): Child {
    const rootfs = this.spec.rootfs;
    const place = 'container' in rootfs ? this.joinTarget(rootfs.container) : this.mount(rootfs);
    try {
      // The container's own account files, as they are now: a name means what the container says it means.
      const accounts = (file: string) => decodeUtf8(this.platform.readFile(joinPath(place.root, file), MAX_ACCOUNT_FILE) ?? new Uint8Array());
      const user = resolveUser(this.spec.user, this.spec.additionalGroups ?? [], accounts('etc/passwd'), accounts('etc/group'));
      let child: Child;
      try {
        const helper = this.options.helper;
        const environment = Object.entries(containerEnv({ ...this.spec, hostname: place.hostname }, user)).map(([key, value]) => `${key}=${value}`);
        const args = [helper, ...helperArgs(this.spec, user, place.root, place.cgroup)];
        child = this.platform.spawn(helper, args, environment, this.spec.stdin === true, place.uts === undefined ? [] : [place.uts]);
      } catch (err) {
        throw new Error(`vmctr-exec: ${oneLine(err)}`);
      }
      this.child = child;
      if (child.stdin) this.stdinState = 'open';
      this.owner?.joined.add(this);
      return child;
    } finally {
      if (place.uts !== undefined) this.platform.close(place.uts);
    }
  }

  /** Mounts the container's root and writes its /etc/hostname and, networked, /etc/resolv.conf and /etc/hosts. */
  private mount(spec: RootfsSpec): Placement {
    try {
      this.rootfs = MountedRootfs.mount(this.platform, spec, joinPath(this.options.stateDir, String(this.spec.id)), this.spec.volumes);
    } catch (err) {
      throw new Error(`rootfs: ${oneLine(err)}`);
    }
    const { root } = this.rootfs;
    const { hostname } = this.spec;
    if (hostname) {
      this.platform.makeDirectory(joinPath(root, 'etc'));
      this.platform.writeFile(joinPath(root, 'etc/hostname'), encodeUtf8(`${hostname}\n`));
    }
    const { network } = this.spec;
    if (network) {
      this.platform.makeDirectory(joinPath(root, 'etc'));
      this.platform.writeFile(joinPath(root, 'etc/resolv.conf'), encodeUtf8(network.resolvConf));
      this.platform.writeFile(joinPath(root, 'etc/hosts'), encodeUtf8(network.hosts));
    }
    const { cgroupRoot } = this.options;
    if (cgroupRoot === undefined) return { root, hostname };
    // Each app its own cgroup: its processes counted (and limitable) apart from the other apps'.
    this.cgroup = joinPath(cgroupRoot, String(this.spec.id));
    this.platform.makeDirectory(this.cgroup);
    return { root, hostname, cgroup: this.cgroup };
  }

  /** The running container `id` (this.owner), for this process to join. */
  private joinTarget(id: number): Placement {
    const owner = this.owner;
    const gone = () => new Error(`no running container ${id} to join`);
    if (!owner?.joinable || !owner.child || !owner.rootfs) throw gone();
    // Its helper holds the namespace its processes share. Joinable, it is not reaped (QuickJS runs the jobs a reap queues
    // before the next handler), so the pid is still the helper's.
    const uts = this.platform.openNamespace(owner.child.pid, 'uts');
    // A helper that exited but is not reaped yet (a zombie) has no namespace: the container has just ended.
    if (uts === undefined) throw gone();
    return { root: owner.rootfs.root, hostname: owner.spec.hostname, uts, ...(owner.cgroup ? { cgroup: owner.cgroup } : {}) };
  }

  private writeStdin(payload: Uint8Array): void {
    const stdin = this.child?.stdin;
    if (this.stdinState !== 'open' || !stdin) {
      this.stdinCredit.consumed(payload.length);
      return;
    }
    // EPIPE when the process exits without reading all of its input, as with any pipe: the credit comes back either way.
    const consumed = () => this.stdinCredit.consumed(payload.length);
    stdin.write([payload]).then(consumed, consumed);
  }

  /** From now on stdin goes nowhere, but still returns its credit, so the host never waits on it. */
  private discardStdin(): void {
    if (this.stdinState === 'open') this.child?.stdin?.end();
    this.stdinState = 'discard';
  }

  private async pump(source: ByteReader, sender: CreditedSender): Promise<void> {
    try {
      for (let chunk; (chunk = await source.read()); ) await sender.send(chunk);
    } catch {
      // The host is gone (or the pipe failed): nothing can deliver this output any more.
    } finally {
      source.close();
    }
  }

  private async readStatus(source: ByteReader, onStatus: (status: HelperStatus) => void): Promise<void> {
    // Bytes until a newline, then one line decoded: a character split across two reads stays whole.
    const line = new Uint8Array(MAX_STATUS_LINE);
    let length = 0;
    try {
      for (let chunk; (chunk = await source.read()); ) {
        for (const byte of chunk) {
          if (byte !== 0x0a) {
            // A longer line is cut, not grown without bound.
            if (length < line.length) line[length++] = byte;
            continue;
          }
          const status = parseStatusLine(decodeUtf8(line.subarray(0, length)));
          length = 0;
          if (status) onStatus(status);
        }
      }
    } catch {
      // A failed read ends the status like its end of file: the missing status is reported.
    } finally {
      source.close();
    }
  }
}
