/**
 * The nested KVM lab: an L1 Linux under QEMU TCG with emulated AMD SVM, so
 * commands get a real /dev/kvm on hosts whose own KVM is PVM. The host root
 * is shared read-only (under a tmpfs overlay), so paths, tools and this
 * checkout are the same inside; commands go through the lab agent over a
 * virtio-serial port.
 */
import { spawn as spawnProcess, execFile, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync, rmSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { collect, commandEnv, repoNode, repoRoot, type ExecOptions, type ExecResult, type Exit, type GuestProcess, type SpawnOptions } from './exec.js';
import { encodeFrame, FrameDecoder, PORT_NAME, type Frame, type FrameHeader } from './frames.js';

export interface LabOptions {
  /** How long L1 may take to boot and say hello (default 120 s: TCG on a busy host is slow). */
  bootTimeoutMs?: number;
  /** L1's memory in MiB (default 4096). */
  memoryMiB?: number;
  /** L1's vCPUs (default 2). */
  cpus?: number;
  /** Keep L1's serial console in this file (by default it goes to a temporary one removed by stop()). */
  consoleLog?: string;
}

interface Running {
  stdout: PassThrough;
  stderr: PassThrough;
  resolve(exit: Exit): void;
  reject(err: Error): void;
}

const BUILD_SCRIPT = join(repoRoot, 'test/lab/build-lab.sh');
const AGENT = join(repoRoot, 'dist/test/lab/lab-agent.js');

// Labs of this process, killed outright if it exits without stopping them.
const live = new Set<ChildProcess>();
process.on('exit', () => {
  for (const qemu of live) qemu.kill('SIGKILL');
});

export class Lab {
  /** Milliseconds from starting QEMU to the agent's hello. */
  readonly bootMs: number;
  /** L1's kernel release. */
  readonly kernel: string;

  private readonly running = new Map<number, Running>();
  private nextId = 1;
  private failure: Error | undefined;

  private constructor(
    private readonly qemu: ChildProcess,
    private readonly socket: Socket,
    private readonly dir: string,
    private readonly logPath: string,
    hello: { kernel: string; bootMs: number },
    decoder: FrameDecoder,
  ) {
    this.bootMs = hello.bootMs;
    this.kernel = hello.kernel;
    socket.on('data', (chunk: Buffer) => {
      try {
        for (const frame of decoder.push(chunk)) this.receive(frame);
      } catch (err) {
        this.fail((err as Error).message);
      }
    });
    socket.on('error', (err) => this.fail(`the lab's control channel failed: ${err.message}`));
    socket.on('close', () => this.fail('the lab closed its control channel'));
  }

  static async start(opts: LabOptions = {}): Promise<Lab> {
    if (!existsSync(AGENT)) throw new Error(`${AGENT} is missing: run npx tsc -p tsconfig.json`);
    if (!existsSync(repoNode)) throw new Error(`${repoNode} is missing: run npm install`);
    const built = await buildLab();
    for (const path of [built.modules, repoNode, AGENT]) {
      if (/\s/.test(path)) throw new Error(`the lab cannot pass a path with whitespace on the kernel command line: ${path}`);
    }
    const dir = await mkdtemp(join(tmpdir(), 'vmctr-lab-'));
    const socketPath = join(dir, 'control.sock');
    const logPath = opts.consoleLog ?? join(dir, 'console.log');
    const append = ['console=ttyS0', 'panic=-1', 'quiet', `vmctr.node=${repoNode}`, `vmctr.agent=${AGENT}`, `vmctr.modules=${built.modules}`];
    const args = [
      '-accel', 'tcg,thread=multi', '-smp', String(opts.cpus ?? 2), '-cpu', 'EPYC,+svm,+npt', '-m', String(opts.memoryMiB ?? 4096),
      '-nographic', '-no-reboot', '-nic', 'none',
      '-kernel', built.kernel, '-initrd', built.initrd, '-append', append.join(' '),
      // remap: the host's /proc, /sys and /dev would otherwise alias each other through 9p.
      '-virtfs', 'local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap',
      '-device', 'virtio-serial', '-chardev', `socket,path=${socketPath},server=on,wait=off,id=lab`,
      '-device', `virtserialport,chardev=lab,name=${PORT_NAME}`,
    ];
    const started = Date.now();
    // Console and QEMU's own messages go to the log; stdin must be /dev/null (CI has none).
    const logFd = openSync(logPath, 'w');
    const qemu = spawnProcess('qemu-system-x86_64', args, { stdio: ['ignore', logFd, logFd] });
    closeSync(logFd);
    live.add(qemu);
    const exited = new Promise<string>((resolve) => {
      qemu.on('error', (err) => resolve(`qemu-system-x86_64 could not start (${err.message}): apt-get install qemu-system-x86`));
      qemu.on('exit', (code, signal) => resolve(`qemu exited (${signal ?? `status ${code}`})`));
    });
    exited.then(() => live.delete(qemu), () => {});

    const timeoutMs = opts.bootTimeoutMs ?? 120_000;
    // Ends the connect retries and the boot timer whichever way the boot goes.
    const settled = new AbortController();
    const timeout = sleep(timeoutMs, `no agent hello within ${timeoutMs / 1000} s`, { signal: settled.signal }).catch(() => '');
    const decoder = new FrameDecoder();
    const booted = connectWhenListening(socketPath, settled.signal)
      .then(async (socket) => ({ socket, hello: await waitForHello(socket, decoder) }));
    booted.catch(() => {}); // rejects only when aborted, after another outcome won
    const outcome = await Promise.race([booted, exited, timeout]).finally(() => settled.abort());
    if (typeof outcome === 'string' || typeof outcome.hello === 'string') {
      const why = typeof outcome === 'string' ? outcome : outcome.hello;
      if (typeof outcome !== 'string') outcome.socket.destroy();
      qemu.kill('SIGKILL');
      const consoleTail = tail(logPath);
      rmSync(dir, { recursive: true, force: true });
      throw new Error(`the lab did not come up: ${why}\n--- L1 console ---\n${consoleTail}`);
    }
    return new Lab(qemu, outcome.socket, dir, logPath, { kernel: outcome.hello.kernel, bootMs: Date.now() - started }, decoder);
  }

  /** Starts `argv` inside L1 with live stdio streams. */
  spawn(argv: string[], opts: SpawnOptions = {}): GuestProcess {
    const id = this.nextId++;
    const stdout = new PassThrough();
    const stderr = new PassThrough();
    const exited = new Promise<Exit>((resolve, reject) => {
      this.running.set(id, { stdout, stderr, resolve, reject });
    });
    const stdin = new Writable({
      write: (chunk: Buffer, _encoding, done) => this.send({ t: 'stdin', id }, chunk, done),
      final: (done) => this.send({ t: 'stdin-end', id }, undefined, done),
    });
    exited.catch(() => {}); // a caller that only reads the streams must not crash on a lab failure
    if (this.failure) this.fail(this.failure.message);
    else this.send({ t: 'spawn', id, argv, cwd: opts.cwd ?? process.cwd(), env: commandEnv(opts.env) });
    return { stdin, stdout, stderr, exited, kill: (signal = 'SIGTERM') => this.send({ t: 'kill', id, signal }) };
  }

  /** Runs `argv` inside L1 to completion. */
  exec(argv: string[], opts: ExecOptions = {}): Promise<ExecResult> {
    return collect(this.spawn(argv, opts), argv, opts);
  }

  /** Powers L1 off; QEMU is killed if it does not exit within 10 s. */
  async stop(): Promise<void> {
    if (this.qemu.exitCode === null && this.qemu.signalCode === null) {
      const gone = new Promise((resolve) => this.qemu.once('exit', resolve));
      const deadline = setTimeout(() => this.qemu.kill('SIGKILL'), 10_000);
      this.send({ t: 'shutdown' });
      await gone;
      clearTimeout(deadline);
    }
    this.fail('the lab was stopped');
    this.socket.destroy();
    rmSync(this.dir, { recursive: true, force: true });
  }

  private send(header: FrameHeader, payload?: Buffer, done?: (err?: Error | null) => void): void {
    if (this.failure) {
      done?.(this.failure);
      return;
    }
    this.socket.write(encodeFrame(header, payload), done);
  }

  private receive({ header, payload }: Frame): void {
    switch (header.t) {
      case 'stdout':
      case 'stderr':
        this.running.get(header.id)?.[header.t].write(payload);
        break;
      case 'exit': {
        const running = this.running.get(header.id);
        if (!running) return;
        this.running.delete(header.id);
        running.stdout.end();
        running.stderr.end();
        if (header.error) running.reject(new Error(header.error));
        else running.resolve({ code: header.code, signal: header.signal });
        break;
      }
      default:
        this.fail(`unexpected frame from the lab agent: ${header.t}`);
    }
  }

  /** Fails every running command: the lab is gone. */
  private fail(why: string): void {
    if (!this.failure) {
      this.failure = new Error(`${why}; L1 console: ${this.logPath}`);
    }
    for (const running of this.running.values()) {
      running.stdout.end();
      running.stderr.end();
      running.reject(this.failure);
    }
    this.running.clear();
  }
}

/** Runs build-lab.sh (quick once cached) and returns what it built. */
async function buildLab(): Promise<{ kernel: string; initrd: string; modules: string }> {
  const stdout = await new Promise<string>((resolve, reject) => {
    const child = execFile(BUILD_SCRIPT, { encoding: 'utf8' }, (err, out, errOut) => {
      if (err) reject(new Error(`${BUILD_SCRIPT} failed: ${errOut.trim().split('\n').at(-1) ?? err.message}`));
      else resolve(out);
    });
    child.stderr?.on('data', (chunk: string) => process.stderr.write(chunk));
  });
  const paths = Object.fromEntries(stdout.trim().split('\n').map((line) => line.split('=', 2)));
  const { kernel, initrd, modules } = paths;
  if (!kernel || !initrd || !modules) throw new Error(`${BUILD_SCRIPT} printed no kernel=, initrd= and modules= lines`);
  return { kernel, initrd, modules };
}

/** QEMU creates the socket shortly after it starts; retry until then. */
async function connectWhenListening(path: string, signal: AbortSignal): Promise<Socket> {
  for (;;) {
    const socket = await new Promise<Socket | undefined>((resolve) => {
      const attempt = connect(path);
      attempt.once('connect', () => resolve(attempt));
      attempt.once('error', () => resolve(undefined));
    });
    if (socket) return socket;
    await sleep(20, undefined, { signal });
  }
}

function waitForHello(socket: Socket, decoder: FrameDecoder): Promise<{ kernel: string } | string> {
  return new Promise((resolve) => {
    const onData = (chunk: Buffer): void => {
      socket.off('data', onData);
      let frames: Frame[];
      try {
        frames = decoder.push(chunk);
      } catch (err) {
        resolve((err as Error).message);
        return;
      }
      const [first] = frames;
      if (first?.header.t === 'hello' && frames.length === 1) resolve({ kernel: first.header.kernel });
      else if (first === undefined) socket.on('data', onData);
      else resolve(`expected the agent's hello, got "${first.header.t}"`);
    };
    socket.on('data', onData);
    socket.on('error', (err) => resolve(`the control channel failed: ${err.message}`));
  });
}

function tail(path: string, lines = 40): string {
  try {
    return readFileSync(path, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no console log)';
  }
}
