/**
 * What the agent needs from the system it runs on, in one small interface:
 * file-descriptor I/O, processes, mounts, the guest's end. The agent's logic
 * (agent.ts, container.ts) sees only this; quickjs-platform.ts implements it
 * on QuickJS and the vmctr C module. Failures throw an Error with one line
 * naming the operation and the system's reason.
 */
import type { ExitStatus } from '../protocol.js';

export interface ByteReader {
  /** The next bytes (at most 64 KiB), or null at the end. */
  read(): Promise<Uint8Array | null>;
  close(): void;
}

export interface ByteWriter {
  /** Queues the buffers; settles once the last of them is written, or rejects if the fd failed (EPIPE...). */
  write(buffers: Uint8Array[]): Promise<void>;
  /** Closes the fd once everything queued is written. */
  end(): void;
}

export interface ByteStream {
  reader: ByteReader;
  writer: ByteWriter;
}

export interface Mount {
  source: string;
  target: string;
  /** Empty for a bind mount. */
  fstype: string;
  flags: number;
  data: string;
}

export interface Child {
  pid: number;
  /** A pipe when asked for; else the child reads /dev/null. */
  stdin: ByteWriter | undefined;
  stdout: ByteReader;
  stderr: ByteReader;
  /** The child's fd 3 (vmctr-exec's control lines). */
  control: ByteWriter;
  /** The child's fd 4 (vmctr-exec's status lines). */
  status: ByteReader;
  /** Settles when the child has exited (and was reaped). */
  exited: Promise<ExitStatus>;
}

export interface Platform {
  readonly pid: number;
  /** The JavaScript engine's name and version, for the hello. */
  readonly engine: string;
  kernelRelease(): string;
  /** Seconds since the kernel booted. */
  uptimeSeconds(): number;
  /** Milliseconds since the agent's code started. */
  elapsedMs(): number;

  /** A file's bytes, at most `limit` of them (more is an error); undefined when it does not exist. */
  readFile(path: string, limit: number): Uint8Array | undefined;
  writeFile(path: string, data: Uint8Array): void;
  /** mkdir -p. */
  makeDirectory(path: string): void;
  /** True if the path names anything (a dangling symlink included). */
  exists(path: string): boolean;
  /** True for a directory itself, false for anything else, a symlink to a directory included. */
  isDirectory(path: string): boolean;
  listDirectory(path: string): string[];
  symlink(target: string, path: string): void;

  mount(mount: Mount): void;
  /** Sets a network interface up. */
  interfaceUp(name: string): void;
  /** `detach`: lazily (MNT_DETACH), for a mount still busy. */
  unmount(target: string, detach: boolean): void;
  sync(): void;
  /** Reboots the guest at once (the VMM ends the VM); returns only if that failed. */
  reboot(): void;
  exit(code: number): never;

  /** Opens a character device (the virtio port) for reading and writing. */
  openDevice(path: string): ByteStream;
  /** A stream over an fd the agent inherited (a socket, in tests). */
  inheritedStream(fd: number): ByteStream;
  /** Opens /proc/PID/ns/TYPE for a child to enter (spawn's `extraFds`); undefined once the process has ended. */
  openNamespace(pid: number, type: 'uts'): number | undefined;
  /** Closes an fd the agent opened itself (openNamespace's). */
  close(fd: number): void;
  /**
   * Starts `file` with `argv` (argv[0] included) and `env` ("KEY=value"), its
   * fds 0 to 4 as Child describes and `extraFds[i]` as its fd 5 + i (the
   * caller keeps its own and closes them).
   */
  spawn(file: string, argv: string[], env: string[], withStdin: boolean, extraFds?: number[]): Child;
  sleep(ms: number): Promise<void>;
  log(line: string): void;
}
