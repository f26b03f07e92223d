/**
 * The vmctr guest agent. In a VM it is PID 1 (the agent image's /init) and
 * serves the host over the virtio-console port "vmctr.agent"; in tests it
 * runs as a plain process on a socket fd:
 *
 *   vmctr-agent [--channel-fd N] [--exec-helper PATH] [--state-dir DIR]
 *
 * It says hello, starts containers (and processes joining them) on request,
 * relays their stdio, reports their exit, and on shutdown (or when the host
 * goes away) kills what still runs, syncs, unmounts and reboots the guest,
 * which ends the VM. When not PID 1 it exits instead of rebooting.
 */
import { Channel } from '../channel.js';
import { parseStart, SpecError } from '../container-spec.js';
import { concatBytes, ProtocolError } from '../frames.js';
import {
  AGENT_VERSION,
  MessageType,
  PROTOCOL_VERSION,
  SETUP_FAILURE,
  streamOfType,
  type ControlMessage,
  type Message,
} from '../protocol.js';
import { Container, type ContainerOptions } from './container.js';
import { APP_CGROUPS, initGuest } from './guest-init.js';
import type { ByteStream, Platform } from './platform.js';
import { openPort } from './port.js';

/** Processes (containers and those joining them) running at once: each holds five fds, and QuickJS's select watches fds below 1024 only. */
const MAX_RUNNING = 128;

const isSignal = (n: unknown): n is number => Number.isInteger(n) && (n as number) >= 1 && (n as number) <= 64;
const isDimension = (n: unknown): n is number => Number.isInteger(n) && (n as number) >= 1 && (n as number) <= 0xffff;

class Agent {
  private readonly containers = new Map<number, Container>();
  private readonly channel: Channel;
  private shuttingDown = false;

  constructor(
    private readonly stream: ByteStream,
    private readonly options: ContainerOptions,
    private readonly platform: Platform,
  ) {
    this.channel = new Channel(
      {
        // One write per frame: on the virtio port each write is one buffer for the host.
        write: (buffers, written) =>
          stream.writer.write([buffers.length === 1 ? buffers[0]! : concatBytes(buffers)]).then(
            () => written?.(),
            (err: Error) => {
              written?.(err);
              this.channel.finish(err);
            },
          ),
        end: () => stream.writer.end(),
      },
      {
        message: (message) => {
          try {
            this.handle(message);
          } catch (err) {
            // Tell the host why before the channel closes.
            if (err instanceof ProtocolError) this.send({ type: MessageType.error, body: { code: SETUP_FAILURE, message: `protocol: ${err.message}` } });
            throw err;
          }
        },
        closed: (error) => {
          if (error) platform.log(`channel: ${error.message}`);
          this.shutdown(false).catch((err: Error) => fatal(platform, err));
        },
      },
    );
  }

  /** Says hello, then reads the channel to its end. */
  async serve(): Promise<void> {
    const p = this.platform;
    await new Promise<void>((resolve) =>
      this.channel.send(
        {
          type: MessageType.hello,
          body: { protocol: PROTOCOL_VERSION, agent: AGENT_VERSION, kernel: p.kernelRelease(), node: p.engine, uptime: p.uptimeSeconds(), agentStartMs: p.elapsedMs() },
        },
        () => resolve(),
      ),
    );
    // Only now: until the host has opened its end of the virtio port, a read returns end-of-file at once.
    try {
      for (let chunk; (chunk = await this.stream.reader.read()) && !this.channel.closed; ) this.channel.receive(chunk);
      this.channel.finish();
    } catch (err) {
      this.channel.finish(err as Error);
    }
  }

  private handle(message: Message): void {
    if ('payload' in message) {
      if (message.type !== MessageType.stdin) throw new ProtocolError(`host sent ${streamOfType(message.type)} data`);
      this.container(message.id)?.stdin(message.payload);
      return;
    }
    const body = message.body as Record<string, unknown>;
    switch (message.type) {
      case MessageType.start: return this.start(body);
      case MessageType.stdinClose: return this.container(body.id)?.closeStdin();
      case MessageType.credit:
        if (!Number.isSafeInteger(body.bytes) || (body.bytes as number) <= 0) throw new ProtocolError('credit without a byte count');
        if (body.stream === 'stdout' || body.stream === 'stderr') this.container(body.id)?.credit(body.stream, body.bytes as number);
        return;
      case MessageType.resize:
        if (!isDimension(body.rows) || !isDimension(body.cols)) throw new ProtocolError('resize needs rows and cols from 1 to 65535');
        return this.container(body.id)?.resize(body.rows, body.cols);
      case MessageType.signal:
        if (!isSignal(body.signal)) throw new ProtocolError('signal needs a number from 1 to 64');
        return this.container(body.id)?.signal(body.signal);
      case MessageType.shutdown:
        this.shutdown(true).catch((err: Error) => fatal(this.platform, err));
        return;
      default: throw new ProtocolError(`unexpected message type ${message.type} from the host`);
    }
  }

  /** Messages for a container that has ended or never existed are late, not wrong. */
  private container(id: unknown): Container | undefined {
    return typeof id === 'number' ? this.containers.get(id) : undefined;
  }

  private start(body: Record<string, unknown>): void {
    let spec;
    try {
      spec = parseStart(body);
      if (this.containers.has(spec.id)) throw new SpecError(`container id ${spec.id} is already in use`);
      if (this.shuttingDown) throw new SpecError('the agent is shutting down');
      const running = [...this.containers.values()].filter((c) => c.running).length;
      if (running >= MAX_RUNNING) throw new SpecError(`${running} processes are running, at most ${MAX_RUNNING} at once`);
    } catch (err) {
      if (!(err instanceof SpecError)) throw err;
      const id = typeof body.id === 'number' && !this.containers.has(body.id) ? body.id : undefined;
      this.send({ type: MessageType.error, body: { ...(id === undefined ? {} : { id }), code: SETUP_FAILURE, message: err.message } });
      return;
    }
    // The container a joining process names, if any: Container decides whether it can be joined.
    const owner = 'container' in spec.rootfs ? this.containers.get(spec.rootfs.container) : undefined;
    const container = new Container(spec, this.channel, this.options, this.platform, owner);
    this.containers.set(spec.id, container);
    // An exec is forgotten once it has ended (it holds no mount), so a long-lived pod's execs do not pile up.
    const joins = 'container' in spec.rootfs;
    container.finished.then(
      () => {
        if (joins) this.containers.delete(spec.id);
      },
      (err: Error) => fatal(this.platform, err),
    );
  }

  private send(message: ControlMessage): void {
    this.channel.send(message);
  }

  /** Ends every container, unmounts, says bye if the host asked, then reboots (PID 1) or exits. */
  private async shutdown(requested: boolean): Promise<void> {
    if (this.shuttingDown) return;
    this.shuttingDown = true;
    const reason = new Error('the agent is shutting down');
    for (const container of this.containers.values()) container.stop(reason);
    await Promise.all([...this.containers.values()].map((c) => c.finished));
    this.platform.sync();
    for (const container of this.containers.values()) await container.unmount();
    if (requested) {
      await new Promise<void>((resolve) => this.channel.send({ type: MessageType.bye, body: {} }, () => resolve()));
    }
    this.channel.end();
    powerOff(this.platform, 0);
  }
}

/** As PID 1 the agent's end is the VM's: a reboot (the VMM treats a guest reboot as the VM's end). */
function powerOff(platform: Platform, exitCode: number): never {
  if (platform.pid === 1) {
    platform.sync();
    try {
      platform.reboot();
    } catch (err) {
      platform.log((err as Error).message);
    }
  }
  return platform.exit(exitCode);
}

export function fatal(platform: Platform, err: Error): never {
  platform.log(`fatal: ${err.stack ?? err.message}`);
  return powerOff(platform, 1);
}

interface Arguments {
  channelFd?: number;
  options: ContainerOptions;
}

function parseArguments(args: string[]): Arguments {
  const values = new Map<string, string>();
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    const eq = arg.indexOf('=');
    const name = eq > 0 ? arg.slice(0, eq) : arg;
    if (!['--channel-fd', '--exec-helper', '--state-dir'].includes(name)) throw new Error(`unknown argument ${arg}`);
    const value = eq > 0 ? arg.slice(eq + 1) : args[++i];
    if (value === undefined) throw new Error(`${name} needs a value`);
    values.set(name, value);
  }
  const options: ContainerOptions = { helper: values.get('--exec-helper') ?? '/vmctr/vmctr-exec', stateDir: values.get('--state-dir') ?? '/run/vmctr' };
  const fd = values.get('--channel-fd');
  if (fd === undefined) return { options };
  const channelFd = Number(fd);
  if (!/^\d+$/.test(fd) || channelFd < 3) throw new Error(`--channel-fd needs a file descriptor number from 3: ${fd}`);
  return { channelFd, options };
}

export async function runAgent(platform: Platform, args: string[]): Promise<void> {
  const { channelFd, options } = parseArguments(args);
  if (platform.pid === 1) {
    initGuest(platform);
    options.cgroupRoot = APP_CGROUPS;
  }
  platform.makeDirectory(options.stateDir);
  const stream = channelFd === undefined ? await openPort(platform) : platform.inheritedStream(channelFd);
  await new Agent(stream, options, platform).serve();
}
