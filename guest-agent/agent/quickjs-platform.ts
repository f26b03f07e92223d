/**
 * The agent's Platform on QuickJS: fd I/O on its event loop (select), reads
 * and writes non-blocking on the agent's side of every fd, child processes
 * through the vmctr C module's spawn (which keeps fds 3 and 4, unlike
 * os.exec), and exits reaped through a signalfd for SIGCHLD.
 */
import * as os from 'os';
import * as std from 'std';
import * as vmctr from 'vmctr';
import { MAX_DATA, type ExitStatus } from '../protocol.js';
import { decodeUtf8 } from '../utf8.js';
import type { ByteReader, ByteStream, ByteWriter, Child, Mount, Platform } from './platform.js';

const EINTR = 4, ENOENT = 2, EEXIST = 17, EAGAIN = 11;
const SIGPIPE = 13, SIGCHLD = 17;
/** select's fd_set holds fds below this: QuickJS's loop must never see a larger one. */
const FD_SETSIZE = 1024;
/** One signalfd_siginfo. */
const SIGINFO_SIZE = 128;

const startedAt = Date.now();

function fail(what: string, result: number): never {
  throw new Error(`${what}: ${std.strerror(-result)}`);
}

/** A new fd from the system, checked: an error, or an fd QuickJS's select cannot watch, throws. */
function checkedFd(what: string, fd: number): number {
  if (fd < 0) fail(what, fd);
  if (fd >= FD_SETSIZE) {
    os.close(fd);
    throw new Error(`${what}: fd ${fd} is beyond what the event loop can watch (${FD_SETSIZE})`);
  }
  return fd;
}

function check(what: string, result: number): void {
  if (result < 0) fail(what, result);
}

/** Closes an fd once each of its `users` (a reader and a writer of one socket) is done with it. */
function closer(fd: number, users = 1): () => void {
  return () => {
    if (--users === 0) os.close(fd);
  };
}

/** Reads go through one buffer: each read is copied out at its exact length at once. */
const scratch = new ArrayBuffer(MAX_DATA);

class FdReader implements ByteReader {
  private closed = false;

  constructor(
    private readonly fd: number,
    private readonly release = closer(fd),
  ) {}

  read(): Promise<Uint8Array | null> {
    if (this.closed) return Promise.resolve(null);
    return new Promise((resolve, reject) => {
      os.setReadHandler(this.fd, () => {
        const n = os.read(this.fd, scratch, 0, scratch.byteLength);
        if (n === -EAGAIN || n === -EINTR) return;
        os.setReadHandler(this.fd, null);
        if (n < 0) reject(new Error(`read: ${std.strerror(-n)}`));
        else resolve(n === 0 ? null : new Uint8Array(scratch.slice(0, n)));
      });
    });
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    os.setReadHandler(this.fd, null);
    this.release();
  }
}

interface Pending {
  buffer: Uint8Array;
  /** Set on the last buffer of a write() call. */
  settle?: { resolve: () => void; reject: (err: Error) => void };
}

class FdWriter implements ByteWriter {
  private readonly queue: Pending[] = [];
  private failure: Error | undefined;
  private ending = false;
  private closed = false;
  private waiting = false;

  constructor(
    private readonly fd: number,
    private readonly release = closer(fd),
  ) {}

  write(buffers: Uint8Array[]): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.ending) return Promise.reject(new Error('write after end'));
    return new Promise((resolve, reject) => {
      buffers.forEach((buffer, i) => this.queue.push(i === buffers.length - 1 ? { buffer, settle: { resolve, reject } } : { buffer }));
      if (buffers.length === 0) resolve();
      this.flush();
    });
  }

  end(): void {
    this.ending = true;
    this.flush();
  }

  private flush(): void {
    while (this.queue.length && !this.failure) {
      const head = this.queue[0]!;
      const n = head.buffer.length === 0 ? 0 : os.write(this.fd, head.buffer.buffer, head.buffer.byteOffset, head.buffer.length);
      if (n === -EAGAIN || n === -EINTR) {
        if (!this.waiting) {
          this.waiting = true;
          os.setWriteHandler(this.fd, () => this.flush());
        }
        return;
      }
      if (n < 0) {
        this.failure = new Error(`write: ${std.strerror(-n)}`);
        for (const item of this.queue.splice(0)) item.settle?.reject(this.failure);
        break;
      }
      if (n < head.buffer.length) {
        head.buffer = head.buffer.subarray(n);
        continue;
      }
      this.queue.shift();
      head.settle?.resolve();
    }
    if (this.waiting) {
      this.waiting = false;
      os.setWriteHandler(this.fd, null);
    }
    if ((this.ending || this.failure) && !this.closed && this.queue.length === 0) {
      this.closed = true;
      this.release();
    }
  }
}

function nonBlocking(fd: number): number {
  check('fcntl O_NONBLOCK', vmctr.setNonBlocking(fd));
  return fd;
}

/** A close-on-exec pipe whose agent end (`ours`) is non-blocking; the child's end stays blocking, as programs expect. */
function pipe(ours: 0 | 1): [number, number] {
  const fds = vmctr.pipe();
  if (typeof fds === 'number') fail('pipe', fds);
  try {
    checkedFd('pipe', fds[0]);
    checkedFd('pipe', fds[1]);
    nonBlocking(fds[ours]);
  } catch (err) {
    fds.forEach((fd) => os.close(fd));
    throw err;
  }
  return fds;
}

/** Waits for children through a signalfd: a SIGCHLD between two selects is never lost, as with a handler it can be. */
class Reaper {
  private readonly waiters = new Map<number, (status: ExitStatus) => void>();
  private readonly fd: number;
  private readonly siginfo = new ArrayBuffer(SIGINFO_SIZE * 16);

  constructor() {
    this.fd = checkedFd('signalfd', vmctr.signalFd([SIGCHLD]));
    os.setReadHandler(this.fd, () => this.reap());
  }

  wait(pid: number): Promise<ExitStatus> {
    return new Promise((resolve) => this.waiters.set(pid, resolve));
  }

  private reap(): void {
    while (os.read(this.fd, this.siginfo, 0, this.siginfo.byteLength) > 0);
    // Signals coalesce: one SIGCHLD may stand for many children. As PID 1 this also reaps orphans.
    for (;;) {
      const [pid, status] = os.waitpid(-1, os.WNOHANG);
      if (pid <= 0) return;
      const termSignal = status & 0x7f;
      this.waiters.get(pid)?.(termSignal === 0 ? { code: (status >> 8) & 0xff } : { signal: termSignal });
      this.waiters.delete(pid);
    }
  }
}

export class QuickJsPlatform implements Platform {
  readonly pid = vmctr.getpid();
  readonly engine = 'QuickJS 2021-03-27';
  private readonly reaper: Reaper;

  constructor() {
    // A write to a pipe whose reader is gone must fail with EPIPE, not kill the agent.
    os.signal(SIGPIPE, undefined);
    this.reaper = new Reaper();
  }

  kernelRelease(): string {
    const release = vmctr.uname();
    if (typeof release === 'number') fail('uname', release);
    return release;
  }

  uptimeSeconds(): number {
    return Number(decodeUtf8(this.readFile('/proc/uptime', 100) ?? new Uint8Array()).split(' ')[0]);
  }

  elapsedMs(): number {
    return Date.now() - startedAt;
  }

  readFile(path: string, limit: number): Uint8Array | undefined {
    const fd = os.open(path, os.O_RDONLY | vmctr.O_CLOEXEC);
    if (fd === -ENOENT) return undefined;
    if (fd < 0) fail(`open ${path}`, fd);
    try {
      const data = new Uint8Array(limit + 1);
      let length = 0;
      for (;;) {
        const n = os.read(fd, data.buffer, length, data.length - length);
        if (n === -EINTR) continue;
        if (n < 0) fail(`read ${path}`, n);
        if (n === 0) return data.slice(0, length);
        length += n;
        if (length > limit) throw new Error(`${path} is larger than ${limit} bytes`);
      }
    } finally {
      os.close(fd);
    }
  }

  writeFile(path: string, data: Uint8Array): void {
    const fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | vmctr.O_CLOEXEC, 0o644);
    if (fd < 0) fail(`open ${path}`, fd);
    try {
      for (let at = 0; at < data.length; ) {
        const n = os.write(fd, data.buffer, data.byteOffset + at, data.length - at);
        if (n === -EINTR) continue;
        if (n < 0) fail(`write ${path}`, n);
        at += n;
      }
    } finally {
      os.close(fd);
    }
  }

  makeDirectory(path: string): void {
    let prefix = '';
    for (const part of path.split('/').filter(Boolean)) {
      prefix += `/${part}`;
      const result = os.mkdir(prefix, 0o755);
      if (result < 0 && result !== -EEXIST) fail(`mkdir ${prefix}`, result);
    }
  }

  exists(path: string): boolean {
    return os.lstat(path)[1] === 0;
  }

  isDirectory(path: string): boolean {
    const [stat, err] = os.lstat(path);
    return err === 0 && (stat.mode & os.S_IFMT) === os.S_IFDIR;
  }

  listDirectory(path: string): string[] {
    const [names, err] = os.readdir(path);
    if (err !== 0) fail(`readdir ${path}`, -err);
    return names.filter((name) => name !== '.' && name !== '..');
  }

  symlink(target: string, path: string): void {
    check(`symlink ${path}`, os.symlink(target, path));
  }

  mount(m: Mount): void {
    check(`mount ${m.target}`, vmctr.mount(m.source, m.target, m.fstype, m.flags, m.data));
  }

  unmount(target: string, detach: boolean): void {
    check(`umount ${target}`, vmctr.umount(target, detach ? vmctr.MNT_DETACH : 0));
  }

  interfaceUp(name: string): void {
    check(`set ${name} up`, vmctr.interfaceUp(name));
  }

  sync(): void {
    vmctr.sync();
  }

  reboot(): void {
    check('reboot', vmctr.reboot());
  }

  exit(code: number): never {
    return std.exit(code);
  }

  openDevice(path: string): ByteStream {
    const fd = checkedFd(`open ${path}`, os.open(path, os.O_RDWR | vmctr.O_CLOEXEC | vmctr.O_NONBLOCK));
    return this.stream(fd);
  }

  inheritedStream(fd: number): ByteStream {
    // Not for the containers: they get only the fds spawn hands them.
    checkedFd(`fd ${fd}`, fd);
    check(`fd ${fd}`, vmctr.setCloseOnExec(fd));
    nonBlocking(fd);
    return this.stream(fd);
  }

  /** One fd for both directions: closed when both are done, so a pending read never watches a closed fd. */
  private stream(fd: number): ByteStream {
    const release = closer(fd, 2);
    return { reader: new FdReader(fd, release), writer: new FdWriter(fd, release) };
  }

  openNamespace(pid: number, type: 'uts'): number | undefined {
    const path = `/proc/${pid}/ns/${type}`;
    const fd = os.open(path, os.O_RDONLY | vmctr.O_CLOEXEC);
    // A process that has exited (a zombie included) has no namespaces any more.
    return fd === -ENOENT ? undefined : checkedFd(`open ${path}`, fd);
  }

  close(fd: number): void {
    os.close(fd);
  }

  spawn(file: string, argv: string[], env: string[], withStdin: boolean, extraFds: number[] = []): Child {
    const opened: number[] = [];
    const track = (fds: [number, number]): [number, number] => (opened.push(...fds), fds);
    let theirs: number[] = [];
    try {
      const [stdinRead, stdinWrite] = withStdin
        ? track(pipe(1))
        : [checkedFd('open /dev/null', os.open('/dev/null', os.O_RDONLY | vmctr.O_CLOEXEC)), undefined];
      if (!withStdin) opened.push(stdinRead);
      const [stdoutRead, stdoutWrite] = track(pipe(0));
      const [stderrRead, stderrWrite] = track(pipe(0));
      const [controlRead, controlWrite] = track(pipe(1));
      const [statusRead, statusWrite] = track(pipe(0));
      theirs = [stdinRead, stdoutWrite, stderrWrite, controlRead, statusWrite];
      const pid = vmctr.spawn(file, argv, env, [...theirs, ...extraFds]);
      if (pid < 0) fail(file, pid);
      return {
        pid,
        stdin: stdinWrite === undefined ? undefined : new FdWriter(stdinWrite),
        stdout: new FdReader(stdoutRead),
        stderr: new FdReader(stderrRead),
        control: new FdWriter(controlWrite),
        status: new FdReader(statusRead),
        exited: this.reaper.wait(pid),
      };
    } catch (err) {
      for (const fd of opened) if (!theirs.includes(fd)) os.close(fd);
      throw err;
    } finally {
      // The child's ends are the child's alone: its exit then ends our reads.
      for (const fd of theirs) os.close(fd);
    }
  }

  sleep(ms: number): Promise<void> {
    return new Promise((resolve) => os.setTimeout(resolve, ms));
  }

  log(line: string): void {
    std.err.puts(`vmctr-agent: ${line}\n`);
    std.err.flush();
  }
}
