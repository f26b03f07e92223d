/**
 * The nested KVM lab: an L1 Linux under QEMU TCG with emulated AMD SVM, so
 * commands get a real /dev/kvm on hosts whose own KVM is PVM. The host root
 * is shared read-only (under a tmpfs overlay), so paths, tools and this
 * checkout are the same inside; commands go through the lab agent over a
 * virtio-serial port.
 */
import { spawn as spawnProcess, execFile, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { collect, commandEnv, repoNode, repoRoot, type ExecOptions, type ExecResult, type Exit, type GuestProcess, type SpawnOptions } from './exec.js';
import { describeCpus, parseRegisters, SymbolTable, type Kernels } from './cpu-report.js';
import { encodeFrame, FrameDecoder, PORT_NAME, type Frame, type FrameHeader } from './frames.js';
import { ConsoleLog, type ConsoleFault } from './l1-console.js';
import { LabFault, type LabFaultKind } from './lab-fault.js';
import { describeLabSettings, initParameters, parseLabSettings, type LabSettings } from './lab-settings.js';
import { hmpCommands } from './qmp.js';

export interface LabOptions {
  /** How long L1 may take to boot and say hello (default 120 s: TCG on a busy host is slow). */
  bootTimeoutMs?: number;
  /** The lab's knobs; by default DEFAULT_LAB_SETTINGS, or VMCTR_LAB_SETTINGS ("key=value,...") over them. */
  settings?: LabSettings;
  /** Keep L1's serial console in this file (by default it is kept only when the lab fails). */
  consoleLog?: string;
}

interface Running {
  stdout: PassThrough;
  stderr: PassThrough;
  resolve(exit: Exit): void;
  reject(err: Error): void;
}

interface Built {
  kernel: string;
  initrd: string;
  modules: string;
}

const BUILD_SCRIPT = join(repoRoot, 'test/lab/build-lab.sh');
const AGENT = join(repoRoot, 'dist/test/lab/lab-agent.js');
/** L1's console logs live here; a clean stop removes its own, a fault keeps it. */
const LOG_DIR = process.env.VMCTR_LAB_LOGS ?? join(tmpdir(), 'vmctr-lab-logs');
const HEARTBEAT_INTERVAL_MS = 5_000;
/** After a console fault, how long L1 gets to print its backtraces and panic before QEMU is killed. */
const PANIC_GRACE_MS = 15_000;
// Make L1's own watchdogs end it at once, and print everything they know:
// with `quiet` a lockup's registers and backtrace are dropped (issue 8).
const L1_DIAGNOSTICS = [
  'loglevel=7', 'panic=-1', 'softlockup_panic=1', 'softlockup_all_cpu_backtrace=1',
  'sysctl.kernel.hung_task_all_cpu_backtrace=1', 'sysctl.kernel.hung_task_panic=1', 'sysctl.kernel.panic_on_rcu_stall=1',
];

// Labs of this process, killed outright if it exits without stopping them.
const live = new Set<ChildProcess>();
process.on('exit', () => {
  for (const qemu of live) qemu.kill('SIGKILL');
});

let labsStarted = 0;

export class Lab {
  /** Milliseconds from starting QEMU to the agent's hello. */
  readonly bootMs: number;
  /** L1's kernel release. */
  readonly kernel: string;
  /** QEMU's process ID (the tests of the lab kill it to play a dying L1). */
  readonly pid: number;

  private readonly running = new Map<number, Running>();
  private nextId = 1;
  private failure: Error | undefined;
  private faultSeen: LabFault | undefined;
  private stopping = false;
  private readonly heartbeat: NodeJS.Timeout;
  private unansweredSince: number | undefined;
  private lastTick = Date.now();
  private pingSeq = 0;
  /** L1's kallsyms as its agent sent them after the hello (empty until then). */
  private kallsyms = '';

  private constructor(
    private readonly qemu: ChildProcess,
    private readonly socket: Socket,
    private readonly dir: string,
    private readonly consoleLog: ConsoleLog,
    private readonly keepLog: boolean,
    private readonly settings: LabSettings,
    hello: { kernel: string; bootMs: number },
    decoder: FrameDecoder,
    exited: Promise<string>,
  ) {
    this.bootMs = hello.bootMs;
    this.kernel = hello.kernel;
    this.pid = qemu.pid ?? 0;
    socket.on('data', (chunk: Buffer) => {
      this.unansweredSince = undefined;
      try {
        for (const frame of decoder.push(chunk)) this.receive(frame);
      } catch (err) {
        this.die('channel', (err as Error).message);
      }
    });
    socket.on('error', (err) => this.die('channel', `the lab's control channel failed: ${err.message}`));
    // When QEMU dies the channel closes first; let its exit name the cause.
    socket.on('close', () => setTimeout(() => this.die('channel', 'the lab closed its control channel'), 500).unref());
    void exited.then((why) => this.die('qemu-exit', why));
    this.heartbeat = setInterval(() => this.beat(), HEARTBEAT_INTERVAL_MS);
    this.heartbeat.unref();
  }

  static async start(opts: LabOptions = {}): Promise<Lab> {
    if (!existsSync(AGENT)) throw new Error(`${AGENT} is missing: run npx tsc -p tsconfig.json`);
    if (!existsSync(repoNode)) throw new Error(`${repoNode} is missing: run npm install`);
    const settings = opts.settings ?? parseLabSettings(process.env.VMCTR_LAB_SETTINGS ?? '');
    const built = await buildLab();
    for (const path of [built.modules, repoNode, AGENT]) {
      if (/\s/.test(path)) throw new Error(`the lab cannot pass a path with whitespace on the kernel command line: ${path}`);
    }
    const dir = await mkdtemp(join(tmpdir(), 'vmctr-lab-'));
    const socketPath = join(dir, 'control.sock');
    const qmpPath = join(dir, 'qmp.sock');
    mkdirSync(LOG_DIR, { recursive: true });
    const logPath = opts.consoleLog ?? join(LOG_DIR, `l1-${new Date().toISOString().replace(/[:.]/g, '-')}-${process.pid}-${labsStarted++}.log`);
    const append = ['console=ttyS0', ...L1_DIAGNOSTICS, `vmctr.node=${repoNode}`, `vmctr.agent=${AGENT}`, `vmctr.modules=${built.modules}`, ...initParameters(settings)];
    const args = [
      '-accel', `tcg,thread=${settings.tcgThreads}`, '-smp', String(settings.cpus), '-cpu', 'EPYC,+svm,+npt', '-m', String(settings.memoryMiB),
      '-nographic', '-no-reboot', '-nic', 'none',
      '-kernel', built.kernel, '-initrd', built.initrd, '-append', append.join(' '),
      // remap: the host's /proc, /sys and /dev would otherwise alias each other through 9p.
      '-virtfs', 'local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap',
      '-device', 'virtio-serial', '-chardev', `socket,path=${socketPath},server=on,wait=off,id=lab`,
      '-device', `virtserialport,chardev=lab,name=${PORT_NAME}`,
      '-qmp', `unix:${qmpPath},server=on,wait=off`,
    ];
    const started = Date.now();
    // stdin must be /dev/null (CI has none); the console goes through ConsoleLog into the log.
    const qemu = spawnProcess('qemu-system-x86_64', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const consoleLog = new ConsoleLog(logPath);
    consoleLog.attach(qemu.stdout!);
    consoleLog.attach(qemu.stderr!);
    live.add(qemu);
    let spawnError: string | undefined;
    const exited = new Promise<string>((resolve) => {
      qemu.on('error', (err) => resolve((spawnError = `qemu-system-x86_64 could not start (${err.message}): apt-get install qemu-system-x86`)));
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
      await exited;
      await consoleLog.close();
      rmSync(dir, { recursive: true, force: true });
      if (spawnError) throw new Error(spawnError); // set-up, not a lab fault
      const fault = consoleLog.firstFault;
      throw new LabFault(fault?.kind ?? 'boot-failed', `the lab did not come up: ${fault ? fault.line : why}`, logPath, consoleLog.tail());
    }
    const lab = new Lab(qemu, outcome.socket, dir, consoleLog, opts.consoleLog !== undefined, settings,
      { kernel: outcome.hello.kernel, bootMs: Date.now() - started }, decoder, exited);
    consoleLog.onFault = (fault) => lab.consoleFault(fault);
    const early = consoleLog.firstFault; // printed before the handler was set
    if (early) lab.consoleFault(early);
    return lab;
  }

  /** Set once L1 itself failed (never by a command's failure, nor by stop()). */
  get fault(): LabFault | undefined {
    return this.faultSeen;
  }

  /** One line: the settings this L1 runs with. */
  get settingsDescription(): string {
    return describeLabSettings(this.settings);
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
    if (this.failure) this.failRunning();
    else this.send({ t: 'spawn', id, argv, cwd: opts.cwd ?? process.cwd(), env: commandEnv(opts.env) });
    return { stdin, stdout, stderr, exited, kill: (signal = 'SIGTERM') => this.send({ t: 'kill', id, signal }) };
  }

  /** Runs `argv` inside L1 to completion. */
  exec(argv: string[], opts: ExecOptions = {}): Promise<ExecResult> {
    return collect(this.spawn(argv, opts), argv, opts);
  }

  /** Powers L1 off; QEMU is killed if it does not exit within 10 s. The console log is removed unless L1 failed. */
  async stop(): Promise<void> {
    this.stopping = true;
    clearInterval(this.heartbeat);
    if (this.qemu.exitCode === null && this.qemu.signalCode === null) {
      const gone = new Promise((resolve) => this.qemu.once('exit', resolve));
      const deadline = setTimeout(() => this.qemu.kill('SIGKILL'), 10_000);
      this.send({ t: 'shutdown' });
      await gone;
      clearTimeout(deadline);
    }
    this.failure ??= new Error('the lab was stopped');
    this.failRunning();
    this.socket.destroy();
    await this.consoleLog.close();
    if (!this.faultSeen && !this.keepLog) rmSync(this.consoleLog.path, { force: true });
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
      case 'pong':
        break;
      case 'symbols':
        this.kallsyms = payload.toString(); // parsed only if L1 hangs
        break;
      default:
        this.die('channel', `unexpected frame from the lab agent: ${header.t}`);
    }
  }

  /**
   * Sends a heartbeat and checks the last one was answered. A ping left
   * unanswered for heartbeatTimeoutMs is a hang, even when no watchdog in L1
   * fires; a host whose own event loop stalled starts the count again.
   */
  private beat(): void {
    const now = Date.now();
    const stalled = now - this.lastTick > 2 * HEARTBEAT_INTERVAL_MS;
    this.lastTick = now;
    if (this.failure) return;
    if (stalled) this.unansweredSince = undefined;
    if (this.unansweredSince !== undefined && now - this.unansweredSince > this.settings.heartbeatTimeoutMs) {
      void this.reportHang(now - this.unansweredSince);
      return;
    }
    this.unansweredSince ??= now;
    this.send({ t: 'ping', seq: this.pingSeq++ });
  }

  /** A silent hang: ask QEMU where the CPUs are, keep that with the console, then end L1. */
  private async reportHang(silentMs: number): Promise<void> {
    this.failure = new Error('the lab hung'); // nothing more goes to the agent
    const cpuBefore = qemuCpuSeconds(this.pid);
    const measuredFrom = Date.now();
    let report: string;
    try {
      const [registers = ''] = await hmpCommands(join(this.dir, 'qmp.sock'), ['info registers -a']);
      report = describeCpus(parseRegisters(registers), await kernelSymbols(this.kallsyms)).join('\n');
      this.consoleLog.note(`info registers -a:\n${registers}`);
    } catch (err) {
      report = `no CPU report: ${(err as Error).message}`;
    }
    await sleep(1000);
    const cpuAfter = qemuCpuSeconds(this.pid);
    const rate = cpuBefore !== undefined && cpuAfter !== undefined ? (cpuAfter - cpuBefore) / ((Date.now() - measuredFrom) / 1000) : undefined;
    const burning = rate === undefined ? '' : `, QEMU meanwhile busy on ${rate.toFixed(1)} host CPUs`;
    this.consoleLog.note(`silent hang: no heartbeat answered for ${Math.round(silentMs / 1000)} s${burning}\n${report}`);
    this.die('silent-hang', `L1 answered no heartbeat for ${Math.round(silentMs / 1000)} s${burning}\n${report}`);
  }

  private consoleFault(fault: ConsoleFault): void {
    if (this.stopping) return;
    this.die(fault.kind, fault.line);
    // L1 panics by itself (softlockup_panic, hung_task_panic, panic_on_rcu_stall); make sure it ends.
    setTimeout(() => this.qemu.kill('SIGKILL'), PANIC_GRACE_MS).unref();
  }

  /** L1 is gone or going: record why (the first cause wins), fail every command, end QEMU. */
  private die(kind: LabFaultKind, detail: string): void {
    if (this.stopping && !this.faultSeen) return;
    if (!this.faultSeen) {
      this.faultSeen = new LabFault(kind, detail, this.consoleLog.path, this.consoleLog.tail());
      this.failure = this.faultSeen;
      clearInterval(this.heartbeat);
      if (kind === 'silent-hang' || kind === 'channel') this.qemu.kill('SIGKILL');
    }
    this.failRunning();
  }

  private failRunning(): void {
    const failure = this.failure ?? new Error('the lab failed');
    for (const running of this.running.values()) {
      running.stdout.end();
      running.stderr.end();
      running.reject(failure);
    }
    this.running.clear();
  }
}

/** Runs build-lab.sh (quick once cached) and returns what it built. */
async function buildLab(): Promise<Built> {
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

/**
 * The symbols that name a hung L1's RIPs: L1's core kernel and modules from
 * its kallsyms, and the L2 guest kernel's (nm of its vmlinux, when built).
 * Read only on a hang: no lab start pays for them.
 */
async function kernelSymbols(kallsyms: string): Promise<Kernels> {
  const l2 = await new Promise<string | undefined>((resolve) => {
    execFile(join(repoRoot, 'kernel-config/build-kernel.sh'), ['--path'], { encoding: 'utf8' }, (err, out) => {
      if (err) return resolve(undefined);
      execFile('nm', ['-n', out.trim()], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 }, (nmErr, symbols) => resolve(nmErr ? undefined : symbols));
    });
  });
  const lines = kallsyms.split('\n');
  return {
    ...(kallsyms ? {
      l1: SymbolTable.parse(lines.filter((line) => !line.includes('[')).join('\n')),
      l1Modules: SymbolTable.parse(lines.filter((line) => line.includes('[')).join('\n')),
    } : {}),
    ...(l2 ? { l2: SymbolTable.parse(l2) } : {}),
  };
}

/** utime + stime of a process, in seconds, from /proc; undefined once it is gone. */
function qemuCpuSeconds(pid: number): number | undefined {
  try {
    // Fields after the command name's closing parenthesis: utime and stime are the 12th and 13th.
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return undefined;
  }
}
