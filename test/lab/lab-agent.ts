/**
 * The lab agent: runs inside L1 (started by the lab initramfs after the chroot)
 * and serves commands from the host over the virtio-serial port "vmctr.lab".
 * Exits when the host disconnects or asks to shut down; L1 then powers off.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync } from 'node:fs';
import { open, readdir, readFile, type FileHandle } from 'node:fs/promises';
import { release } from 'node:os';
import type { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { encodeFrame, FrameDecoder, PORT_NAME, type Frame, type FrameHeader } from './frames.js';

async function findPort(): Promise<string> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    for (const dev of await readdir('/sys/class/virtio-ports').catch(() => [])) {
      const name = await readFile(`/sys/class/virtio-ports/${dev}/name`, 'utf8').catch(() => '');
      if (name.trim() === PORT_NAME) return `/dev/${dev}`;
    }
    if (Date.now() > deadline) throw new Error(`no virtio-serial port named ${PORT_NAME}`);
    await sleep(50);
  }
}

class Agent {
  private readonly children = new Map<number, ChildProcessWithoutNullStreams>();
  private writes = Promise.resolve();

  constructor(private readonly port: FileHandle) {}

  /** Queues a frame; frames go out whole and in order. Resolves once written. */
  send(header: FrameHeader, payload?: Buffer): Promise<void> {
    const frame = encodeFrame(header, payload);
    this.writes = this.writes.then(async () => {
      for (let offset = 0; offset < frame.length;) {
        offset += (await this.port.write(frame, offset, frame.length - offset, null)).bytesWritten;
      }
    });
    this.writes.catch((err: Error) => fatal(`writing to the host: ${err.message}`));
    return this.writes;
  }

  async serve(): Promise<void> {
    // A write blocks until the host end is connected, so after the hello a
    // zero-byte read means the host went away rather than "not yet there".
    await this.send({ t: 'hello', kernel: release(), node: process.version });
    // After the hello, so the host need not wait for them to start its commands.
    void kernelSymbols().then((symbols) => this.send({ t: 'symbols' }, symbols));
    const decoder = new FrameDecoder();
    const buffer = Buffer.alloc(256 * 1024);
    for (;;) {
      const { bytesRead } = await this.port.read(buffer, 0, buffer.length, null);
      if (bytesRead === 0) return;
      for (const frame of decoder.push(Buffer.from(buffer.subarray(0, bytesRead)))) {
        if (!this.handle(frame)) return;
      }
    }
  }

  /** Returns false when the host asked to shut down. */
  private handle({ header, payload }: Frame): boolean {
    switch (header.t) {
      case 'spawn': this.spawn(header.id, header.argv, header.cwd, header.env); break;
      case 'stdin': this.children.get(header.id)?.stdin.write(payload); break;
      case 'stdin-end': this.children.get(header.id)?.stdin.end(); break;
      case 'kill': this.kill(header.id, header.signal); break;
      case 'ping': void this.send({ t: 'pong', seq: header.seq }); break;
      case 'shutdown': return false;
      default: fatal(`unexpected frame from the host: ${header.t}`);
    }
    return true;
  }

  private spawn(id: number, argv: string[], cwd: string, env: Record<string, string>): void {
    const [file, ...args] = argv;
    if (file === undefined) {
      void this.send({ t: 'exit', id, code: null, signal: null, error: 'empty argv' });
      return;
    }
    const child = spawn(file, args, { cwd, env, stdio: 'pipe' });
    this.children.set(id, child);
    let reported = false;
    const report = (header: FrameHeader): void => {
      if (reported) return;
      reported = true;
      this.children.delete(id);
      void this.send(header);
    };
    // A failed spawn (ENOENT, bad cwd) reports 'error' and no pid.
    child.on('error', (err) => {
      if (child.pid !== undefined) return;
      // Node blames the command for a missing cwd: say which it was.
      const error = existsSync(cwd) ? err.message : `${err.message}: the cwd ${cwd} does not exist in the lab (its /tmp, /run and /dev/shm are its own)`;
      report({ t: 'exit', id, code: null, signal: null, error });
    });
    // 'close' comes after both pipes ended, so the exit frame follows all output.
    child.on('close', (code, signal) => report({ t: 'exit', id, code, signal }));
    child.stdin.on('error', () => {}); // the command may exit without reading its input
    this.forward(child.stdout, { t: 'stdout', id });
    this.forward(child.stderr, { t: 'stderr', id });
  }

  private kill(id: number, signal: NodeJS.Signals): void {
    try {
      this.children.get(id)?.kill(signal);
    } catch (err) {
      console.error(`lab-agent: kill ${signal}: ${(err as Error).message}`); // an unknown signal name
    }
  }

  /** Streams output with backpressure: read more only once the last chunk is written. */
  private forward(stream: Readable, header: FrameHeader): void {
    stream.on('data', (chunk: Buffer) => {
      stream.pause();
      void this.send(header, chunk).then(() => stream.resume());
    });
  }

  async stop(): Promise<void> {
    for (const child of this.children.values()) child.kill('SIGKILL');
    await this.writes.catch(() => {});
  }
}

/**
 * What the host needs to name a hung L1's RIPs, read while L1 is healthy:
 * the text symbols of the running kernel and its modules (kvm, kvm_amd), as
 * kallsyms lines (Debian's System.map is a placeholder), plus _etext.
 */
async function kernelSymbols(): Promise<Buffer> {
  const kallsyms = await readFile('/proc/kallsyms', 'utf8').catch(() => '');
  const kept = kallsyms.split('\n').filter((line) => /^\S+ [tT] /.test(line) || / _etext$/.test(line));
  return Buffer.from(kept.join('\n'));
}

function fatal(message: string): never {
  console.error(`lab-agent: ${message}`);
  process.exit(1);
}

const agent = new Agent(await open(await findPort(), 'r+'));
try {
  await agent.serve();
} catch (err) {
  fatal((err as Error).message);
}
await agent.stop();
process.exit(0);
