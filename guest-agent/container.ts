/**
 * One container process inside the guest: mounts its root, resolves its
 * user, starts it through vmctr-exec, relays stdio under flow control and
 * reports how it ended, after the last byte of its output.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Duplex, Readable, Writable } from 'node:stream';
import type { Channel } from './channel.js';
import { controlLine, helperArgs, parseStatusLine, STATUS_FD, CONTROL_FD, type HelperStatus } from './exec-helper.js';
import { CreditedSender, CreditReceiver } from './flow-control.js';
import { MessageType, SETUP_FAILURE, type ControlMessage, type DataStream, type StartMessage } from './protocol.js';
import { MountedRootfs } from './rootfs.js';
import { resolveUser, type ResolvedUser } from './users.js';

export interface ContainerOptions {
  /** Path of the vmctr-exec binary. */
  helper: string;
  /** Where per-container mount points live (a tmpfs in the guest). */
  stateDir: string;
}

/** The PATH docker gives a container whose image sets none. */
const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

function oneLine(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).split('\n')[0]!.slice(0, 500);
}

async function readIfPresent(path: string): Promise<string> {
  return readFile(path, 'utf8').catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return '';
    throw err;
  });
}

export function containerEnv(spec: StartMessage, user: ResolvedUser): Record<string, string> {
  const env: Record<string, string> = {};
  for (const entry of spec.env ?? []) {
    const eq = entry.indexOf('=');
    if (eq > 0) env[entry.slice(0, eq)] = entry.slice(eq + 1);
  }
  env.PATH ??= DEFAULT_PATH;
  env.HOME ??= user.home;
  if (spec.hostname) env.HOSTNAME ??= spec.hostname;
  if (spec.tty) env.TERM ??= 'xterm';
  return env;
}

export class Container {
  private child: ChildProcess | undefined;
  private rootfs: MountedRootfs | undefined;
  private readonly pendingControl: string[] = [];
  private stopping = false;
  private ended = false;
  /** Stdin from the host before the process runs; null marks its end. */
  private readonly pendingStdin: Array<Buffer | null> = [];
  private stdinState: 'pending' | 'open' | 'discard' = 'pending';
  private readonly stdinCredit: CreditReceiver;
  private readonly senders: Record<'stdout' | 'stderr', CreditedSender>;
  /** Settles once the container's last message is sent. */
  readonly finished: Promise<void>;

  constructor(
    private readonly spec: StartMessage,
    private readonly channel: Channel,
    private readonly options: ContainerOptions,
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

  stdin(payload: Buffer): void {
    this.stdinCredit.received(payload.length);
    if (this.stdinState === 'pending') this.pendingStdin.push(payload);
    else this.writeStdin(payload);
  }

  closeStdin(): void {
    if (this.stdinState === 'pending') this.pendingStdin.push(null);
    else if (this.stdinState === 'open') this.child!.stdin!.end();
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

  /** Kills the container (vmctr-exec does, when its control fd closes) and stops sending. */
  stop(reason: Error): void {
    this.stopping = true;
    (this.child?.stdio[CONTROL_FD] as Writable | undefined)?.end();
    this.senders.stdout.close(reason);
    this.senders.stderr.close(reason);
  }

  async unmount(): Promise<void> {
    await this.rootfs?.unmount();
  }

  private send(message: ControlMessage): void {
    this.channel.send(message);
  }

  private control(line: string): void {
    if (this.ended) return;
    if (this.child) (this.child.stdio[CONTROL_FD] as Writable).write(line);
    else this.pendingControl.push(line);
  }

  private async run(): Promise<void> {
    const id = this.spec.id;
    let child: ChildProcess;
    try {
      child = await this.spawnHelper();
    } catch (err) {
      this.discardStdin();
      this.ended = true;
      // Everything before the exec is set-up: exec failures come later, from vmctr-exec's status.
      this.send({ type: MessageType.error, body: { id, code: SETUP_FAILURE, message: oneLine(err) } });
      return;
    }
    const result: { final?: HelperStatus } = {};
    const statusRead = this.readStatus(child.stdio[STATUS_FD] as Readable, (s) => {
      if (s.kind === 'started') this.send({ type: MessageType.started, body: { id, pid: s.pid } });
      else result.final = s;
    });
    const exited = new Promise<string>((resolve) =>
      child.once('close', (code, signal) => resolve(signal ? `killed by ${signal}` : `exit status ${code}`)),
    );
    const [helperEnd] = await Promise.all([
      exited,
      statusRead,
      this.pump(child.stdout!, this.senders.stdout),
      this.pump(child.stderr!, this.senders.stderr),
    ]);
    this.ended = true;
    this.discardStdin();
    const final = result.final;
    if (final?.kind === 'exit') this.send({ type: MessageType.exit, body: { id, ...final.status } });
    else if (final?.kind === 'error') this.send({ type: MessageType.error, body: { id, code: final.code, message: final.message } });
    else this.send({ type: MessageType.error, body: { id, code: SETUP_FAILURE, message: `vmctr-exec ended without a status (${helperEnd})` } });
  }

  private async spawnHelper(): Promise<ChildProcess> {
    const dir = join(this.options.stateDir, String(this.spec.id));
    try {
      this.rootfs = await MountedRootfs.mount(this.spec.rootfs, dir);
    } catch (err) {
      throw new Error(`rootfs: ${oneLine(err)}`);
    }
    const root = this.rootfs.root;
    // The container's own account files: a name means what the image says it means.
    const [passwd, group] = await Promise.all([readIfPresent(join(root, 'etc/passwd')), readIfPresent(join(root, 'etc/group'))]);
    const user = resolveUser(this.spec.user, this.spec.additionalGroups ?? [], passwd, group);
    if (this.spec.hostname) {
      await mkdir(join(root, 'etc'), { recursive: true });
      await writeFile(join(root, 'etc/hostname'), `${this.spec.hostname}\n`);
    }
    const child = spawn(this.options.helper, helperArgs(this.spec, user, root), {
      env: containerEnv(this.spec, user),
      stdio: [this.spec.stdin ? 'pipe' : 'ignore', 'pipe', 'pipe', 'pipe', 'pipe'],
    });
    await new Promise<void>((resolve, reject) => {
      child.once('spawn', resolve);
      child.once('error', (err) => reject(new Error(`vmctr-exec: ${err.message}`)));
    });
    this.child = child;
    const control = child.stdio[CONTROL_FD] as Duplex;
    // The helper ends before the agent stops writing: late lines meet a closed pipe, which is fine.
    control.on('error', () => {});
    // Nothing comes back on this fd, but its end must be read for the child's 'close' to fire.
    control.resume();
    for (const line of this.pendingControl.splice(0)) control.write(line);
    if (this.stopping) control.end();
    if (child.stdin) {
      // EPIPE when the process exits without reading all of its input, as with any pipe.
      child.stdin.on('error', () => {});
      this.stdinState = 'open';
      for (const item of this.pendingStdin.splice(0)) {
        if (item) this.writeStdin(item);
        else child.stdin.end();
      }
    } else {
      this.discardStdin();
    }
    return child;
  }

  private writeStdin(payload: Buffer): void {
    const stdin = this.child?.stdin;
    if (this.stdinState !== 'open' || !stdin || stdin.writableEnded || stdin.destroyed) {
      this.stdinCredit.consumed(payload.length);
      return;
    }
    stdin.write(payload, () => this.stdinCredit.consumed(payload.length));
  }

  /** Stdin nobody will read still returns its credit, so the host never waits on it. */
  private discardStdin(): void {
    this.stdinState = 'discard';
    for (const item of this.pendingStdin.splice(0)) {
      if (item) this.stdinCredit.consumed(item.length);
    }
  }

  private async pump(source: Readable, sender: CreditedSender): Promise<void> {
    try {
      for await (const chunk of source) await sender.send(chunk as Buffer);
    } catch {
      // The host is gone: nothing can deliver this output any more.
      source.destroy();
    }
  }

  private async readStatus(source: Readable, onStatus: (status: HelperStatus) => void): Promise<void> {
    let text = '';
    for await (const chunk of source) {
      text += (chunk as Buffer).toString('utf8');
      let newline;
      while ((newline = text.indexOf('\n')) >= 0) {
        const status = parseStatusLine(text.slice(0, newline));
        text = text.slice(newline + 1);
        if (status) onStatus(status);
      }
    }
  }
}
