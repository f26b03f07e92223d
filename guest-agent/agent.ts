/**
 * The vmctr guest agent. In a VM it runs as PID 1 (exec'd by the agent
 * image's /init) and serves the host over the virtio-console port
 * "vmctr.agent"; in tests it runs as a plain process on a socket fd.
 *
 *   node agent.js [--channel-fd N] [--exec-helper PATH] [--state-dir DIR]
 *
 * It says hello, starts containers on request, relays their stdio, reports
 * their exit, and on shutdown (or when the host goes away) kills what still
 * runs, syncs, unmounts and reboots the guest, which ends the VM. When not
 * PID 1 it exits instead of rebooting.
 */
import { mkdir, readFile } from 'node:fs/promises';
import { Socket } from 'node:net';
import { release } from 'node:os';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { Duplex } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Channel } from './channel.js';
import { runCommand } from './command.js';
import { Container, type ContainerOptions } from './container.js';
import { parseStart, SpecError } from './container-spec.js';
import { ProtocolError } from './frames.js';
import { findPort, PortStream } from './port.js';
import {
  AGENT_VERSION,
  MessageType,
  PROTOCOL_VERSION,
  SETUP_FAILURE,
  streamOfType,
  type ControlMessage,
  type Message,
} from './protocol.js';

const isSignal = (n: unknown): n is number => Number.isInteger(n) && (n as number) >= 1 && (n as number) <= 64;
const isDimension = (n: unknown): n is number => Number.isInteger(n) && (n as number) >= 1 && (n as number) <= 0xffff;

class Agent {
  private readonly containers = new Map<number, Container>();
  private readonly channel: Channel;
  private shuttingDown = false;

  constructor(
    stream: Duplex,
    private readonly options: ContainerOptions,
  ) {
    this.channel = new Channel(stream, {
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
        if (error) log(`channel: ${error.message}`);
        void this.shutdown(false);
      },
    });
  }

  async hello(): Promise<void> {
    const uptime = Number((await readFile('/proc/uptime', 'utf8')).split(' ')[0]);
    this.channel.send({
      type: MessageType.hello,
      body: { protocol: PROTOCOL_VERSION, agent: AGENT_VERSION, kernel: release(), node: process.version, uptime, agentStartMs: Math.round(performance.now()) },
    });
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
      case MessageType.shutdown: return void this.shutdown(true);
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
    } catch (err) {
      if (!(err instanceof SpecError)) throw err;
      const id = typeof body.id === 'number' && !this.containers.has(body.id) ? body.id : undefined;
      this.send({ type: MessageType.error, body: { ...(id === undefined ? {} : { id }), code: SETUP_FAILURE, message: err.message } });
      return;
    }
    this.containers.set(spec.id, new Container(spec, this.channel, this.options));
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
    await runCommand(['sync']).catch((err: Error) => log(err.message));
    for (const container of this.containers.values()) await container.unmount().catch((err: Error) => log(err.message));
    if (requested) {
      await new Promise<void>((resolve) => this.channel.send({ type: MessageType.bye, body: {} }, () => resolve()));
    }
    this.channel.end();
    await powerOff(0);
  }
}

function log(message: string): void {
  process.stderr.write(`vmctr-agent: ${message}\n`);
}

/** As PID 1 the agent's end is the VM's: `reboot -f` (the VMM treats a guest reboot as the VM's end). */
async function powerOff(exitCode: number): Promise<never> {
  if (process.pid === 1) {
    await runCommand(['reboot', '-f']).catch((err: Error) => log(err.message));
  }
  process.exit(exitCode);
}

async function openChannel(channelFd: string | undefined): Promise<Duplex> {
  if (channelFd === undefined) return PortStream.open(await findPort());
  const fd = Number(channelFd);
  if (!Number.isInteger(fd) || fd < 3) throw new Error(`--channel-fd needs a file descriptor number from 3: ${channelFd}`);
  return new Socket({ fd, readable: true, writable: true });
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      'channel-fd': { type: 'string' },
      'exec-helper': { type: 'string', default: join(dirname(fileURLToPath(import.meta.url)), 'vmctr-exec') },
      'state-dir': { type: 'string', default: '/run/vmctr' },
    },
  });
  const stateDir = values['state-dir'];
  await mkdir(stateDir, { recursive: true });
  const agent = new Agent(await openChannel(values['channel-fd']), { helper: values['exec-helper'], stateDir });
  await agent.hello();
}

process.on('uncaughtException', (err) => {
  log(`fatal: ${err.stack ?? err.message}`);
  void powerOff(1);
});
main().catch((err: Error) => {
  log(`fatal: ${err.message}`);
  void powerOff(1);
});
