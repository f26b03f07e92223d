/**
 * The host side of the agent channel, over any Duplex (the VMM's
 * virtio-console port, or a socket in tests):
 *
 *   const agent = await AgentClient.connect(port);
 *   const proc = agent.startContainer({ rootfs: { device: '/dev/vdb', fstype: 'ext4' }, args: ['sh'] });
 *   proc.stdout.pipe(process.stdout); proc.stderr.pipe(process.stderr);
 *   const exec = agent.startContainer({ rootfs: { container: proc.id }, args: ['ps'] });  // joins proc's container
 *   const status = await proc.exit;       // { code } or { signal }
 *   await agent.shutdown();
 *
 * Everything from the guest is checked: a guest that breaks the protocol
 * (or sends beyond its credit) fails the channel rather than the host.
 * Read stdout and stderr: unread output stops the container, by design.
 */
import { Readable, Writable, type Duplex } from 'node:stream';
import type { Channel } from './channel.js';
import { CreditedSender, CreditReceiver, StreamClosedError } from './flow-control.js';
import { ProtocolError } from './frames.js';
import { duplexChannel } from './node-channel.js';
import {
  INITIAL_CREDIT,
  MAX_DATA,
  MessageType,
  PROTOCOL_VERSION,
  streamOfType,
  type ContainerSpec,
  type Hello,
  type DataMessage,
  type Message,
} from './protocol.js';

export type ContainerExit = { code: number; error?: string } | { signal: number };

export interface ContainerProcess {
  /** Its id on the channel: a later start with `rootfs: { container: id }` runs another process in its container. */
  readonly id: number;
  /** Null unless the spec asked for stdin. Ending it closes the container's stdin. */
  stdin: Writable | null;
  stdout: Readable;
  /** Empty with a tty: the terminal carries both. */
  stderr: Readable;
  /** The process id in the guest once it runs; undefined if it never started. */
  pid: Promise<number | undefined>;
  resize(rows: number, cols: number): void;
  signal(signal: number): void;
  /**
   * How it ended; a process that could not start ends with 125, 126 or 127 and
   * `error`. If the channel fails first, this rejects and stdout and stderr
   * emit 'error'.
   */
  exit: Promise<ContainerExit>;
}

/** The shell's view of an exit: the code, or 128 + the signal number. */
export function exitCode(exit: ContainerExit): number {
  return 'signal' in exit ? 128 + exit.signal : exit.code;
}

export interface ConnectOptions {
  /** How long to wait for the agent's hello. Default 30 s. */
  timeoutMs?: number;
}

const isInteger = (v: unknown, min: number, max: number): v is number => Number.isInteger(v) && (v as number) >= min && (v as number) <= max;

/** Guest text shown to users: one line, bounded, no control characters. */
function guestText(v: unknown): string {
  return String(v).split('\n')[0]!.replace(/[\x00-\x1f\x7f]/g, '?').slice(0, 500);
}

/** Output from the guest; credit goes back as the consumer takes bytes out of the buffer. */
class InboundStream extends Readable {
  private received = 0;
  private reported = 0;

  constructor(private readonly credit: CreditReceiver) {
    super({ highWaterMark: INITIAL_CREDIT });
  }

  deliver(payload: Uint8Array): void {
    this.credit.received(payload.length);
    this.received += payload.length;
    if (!this.readableEnded && !this.destroyed) this.push(payload);
    this.account();
  }

  // Bytes leave the buffer only through read(), in paused and flowing mode alike (pipe and 'data' use it).
  override read(size?: number): Buffer | null {
    const chunk = super.read(size) as Buffer | null;
    this.account();
    return chunk;
  }

  // Nothing to fetch on demand: frames are pushed as they arrive.
  override _read(): void {}

  private account(): void {
    const consumed = this.received - this.readableLength;
    this.credit.consumed(consumed - this.reported);
    this.reported = consumed;
  }
}

class Process implements ContainerProcess {
  readonly stdin: Writable | null;
  readonly stdout: InboundStream;
  readonly stderr: InboundStream;
  readonly pid: Promise<number | undefined>;
  readonly exit: Promise<ContainerExit>;
  private readonly stdinSender: CreditedSender;
  private resolvePid!: (pid: number | undefined) => void;
  private resolveExit!: (exit: ContainerExit) => void;
  private rejectExit!: (err: Error) => void;
  private ended = false;

  constructor(
    readonly id: number,
    private readonly channel: Channel,
    wantsStdin: boolean,
  ) {
    const grant = (stream: 'stdout' | 'stderr') => (bytes: number) =>
      channel.send({ type: MessageType.credit, body: { id, stream, bytes } });
    this.stdout = new InboundStream(new CreditReceiver(`container ${id} stdout`, grant('stdout')));
    this.stderr = new InboundStream(new CreditReceiver(`container ${id} stderr`, grant('stderr')));
    this.stdinSender = new CreditedSender((payload) => channel.sendData(MessageType.stdin, id, payload));
    this.stdin = wantsStdin ? this.stdinWritable() : null;
    this.pid = new Promise((resolve) => (this.resolvePid = resolve));
    this.exit = new Promise((resolve, reject) => {
      this.resolveExit = resolve;
      this.rejectExit = reject;
    });
  }

  resize(rows: number, cols: number): void {
    if (!isInteger(rows, 1, 0xffff) || !isInteger(cols, 1, 0xffff)) throw new RangeError(`bad window size ${rows}x${cols}`);
    if (!this.ended) this.channel.send({ type: MessageType.resize, body: { id: this.id, rows, cols } });
  }

  signal(signal: number): void {
    if (!isInteger(signal, 1, 64)) throw new RangeError(`bad signal number ${signal}`);
    if (!this.ended) this.channel.send({ type: MessageType.signal, body: { id: this.id, signal } });
  }

  started(pid: number): void {
    this.resolvePid(pid);
  }

  data(type: DataMessage['type'], payload: Uint8Array): void {
    if (type === MessageType.stdout) this.stdout.deliver(payload);
    else if (type === MessageType.stderr) this.stderr.deliver(payload);
    else throw new ProtocolError(`guest sent ${streamOfType(type)} data`);
  }

  stdinCredit(bytes: number): void {
    this.stdinSender.grant(bytes);
  }

  /** The last message about this process: all of its output came before it. */
  finish(exit: ContainerExit): void {
    this.ended = true;
    this.resolvePid(undefined);
    this.stdinSender.close(new StreamClosedError('the container has exited'));
    this.stdout.push(null);
    this.stderr.push(null);
    this.resolveExit(exit);
  }

  fail(err: Error): void {
    this.ended = true;
    this.resolvePid(undefined);
    this.stdinSender.close(err);
    this.stdout.destroy(err);
    this.stderr.destroy(err);
    this.rejectExit(err);
  }

  private stdinWritable(): Writable {
    return new Writable({
      highWaterMark: MAX_DATA,
      write: (chunk: Buffer, _encoding, callback) => {
        // Input for a container that has exited goes nowhere, as on a closed pipe, but quietly.
        this.stdinSender.send(chunk).then(
          () => callback(),
          (err: Error) => callback(err instanceof StreamClosedError ? null : err),
        );
      },
      final: (callback) => {
        if (!this.ended) this.channel.send({ type: MessageType.stdinClose, body: { id: this.id } });
        callback();
      },
    });
  }
}

export class AgentClient {
  private readonly processes = new Map<number, Process>();
  private nextId = 1;
  private closedBecause: Error | undefined;
  private byeWaiters: Array<() => void> = [];

  private constructor(
    private readonly channel: Channel,
    readonly hello: Hello,
  ) {}

  /** Waits for the agent's hello on `stream` and checks its protocol version. */
  static connect(stream: Duplex, options: ConnectOptions = {}): Promise<AgentClient> {
    return new Promise((resolve, reject) => {
      let client: AgentClient | undefined;
      const timer = setTimeout(() => {
        channel.end();
        stream.destroy();
        reject(new Error(`guest agent did not say hello within ${options.timeoutMs ?? 30_000} ms`));
      }, options.timeoutMs ?? 30_000);
      const channel = duplexChannel(stream, {
        message: (message) => {
          if (client) return client.handle(message);
          clearTimeout(timer);
          const hello = message.type === MessageType.hello ? (message.body as unknown as Record<string, unknown>) : undefined;
          const problem = !hello
            ? `guest agent sent message type ${message.type} before its hello`
            : hello.protocol !== PROTOCOL_VERSION
              ? `guest agent speaks protocol ${guestText(hello.protocol)}, this vmctr speaks ${PROTOCOL_VERSION}: rebuild the agent image (guest-agent/build-agent-image.sh)`
              : undefined;
          if (problem) {
            stream.destroy();
            reject(new Error(problem));
            return;
          }
          client = new AgentClient(channel, {
            protocol: PROTOCOL_VERSION,
            agent: guestText(hello!.agent),
            kernel: guestText(hello!.kernel),
            node: guestText(hello!.node),
            uptime: Number(hello!.uptime),
            agentStartMs: Number(hello!.agentStartMs),
          });
          resolve(client);
        },
        closed: (error) => {
          clearTimeout(timer);
          if (client) client.closed(error);
          else reject(new Error(`guest agent channel closed before the hello${error ? `: ${error.message}` : ''}`));
        },
      });
    });
  }

  startContainer(spec: ContainerSpec): ContainerProcess {
    const id = this.nextId++;
    const proc = new Process(id, this.channel, spec.stdin === true);
    if (this.closedBecause) {
      proc.fail(this.closedBecause);
      return proc;
    }
    this.processes.set(id, proc);
    this.channel.send({ type: MessageType.start, body: { id, ...spec } });
    return proc;
  }

  /** Asks the agent to end every container, unmount and power the guest off; resolves on its bye or when the channel ends. */
  shutdown(): Promise<void> {
    if (this.channel.closed) return Promise.resolve();
    return new Promise((resolve) => {
      this.byeWaiters.push(resolve);
      this.channel.send({ type: MessageType.shutdown, body: {} });
    });
  }

  private handle(message: Message): void {
    if ('payload' in message) {
      const proc = this.processes.get(message.id);
      if (!proc) throw new ProtocolError(`guest sent data for unknown container ${message.id}`);
      proc.data(message.type, message.payload);
      return;
    }
    const body = message.body as Record<string, unknown>;
    const proc = typeof body.id === 'number' ? this.processes.get(body.id) : undefined;
    switch (message.type) {
      case MessageType.started:
        if (!isInteger(body.pid, 1, 0x7fffffff)) throw new ProtocolError('started without a pid');
        proc?.started(body.pid);
        return;
      case MessageType.credit:
        if (!isInteger(body.bytes, 1, Number.MAX_SAFE_INTEGER)) throw new ProtocolError('credit without a byte count');
        if (body.stream === 'stdin') proc?.stdinCredit(body.bytes);
        return;
      case MessageType.exit:
        if (!proc) return;
        if (isInteger(body.code, 0, 255)) proc.finish({ code: body.code });
        else if (isInteger(body.signal, 1, 64)) proc.finish({ signal: body.signal });
        else throw new ProtocolError('exit without a code or signal');
        this.processes.delete(proc.id);
        return;
      case MessageType.error: {
        const error = guestText(body.message);
        if (!proc) throw new ProtocolError(`guest agent error: ${error}`);
        proc.finish({ code: isInteger(body.code, 1, 255) ? body.code : 125, error });
        this.processes.delete(proc.id);
        return;
      }
      case MessageType.bye:
        for (const resolve of this.byeWaiters.splice(0)) resolve();
        return;
      default:
        throw new ProtocolError(`unexpected message type ${message.type} from the guest agent`);
    }
  }

  private closed(error?: Error): void {
    this.closedBecause = new Error(`guest agent channel closed${error ? `: ${error.message}` : ''}`);
    for (const proc of this.processes.values()) proc.fail(this.closedBecause);
    this.processes.clear();
    for (const resolve of this.byeWaiters.splice(0)) resolve();
  }
}
