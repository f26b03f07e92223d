/**
 * The parts of QuickJS's built-in modules (2021-03-27) and of the agent's own
 * C module (vmctr.c) that the agent uses. Functions that can fail return a
 * negative errno, as in C.
 */
declare module 'os' {
  export const O_RDONLY: number;
  export const O_WRONLY: number;
  export const O_RDWR: number;
  export const O_CREAT: number;
  export const O_TRUNC: number;
  export const S_IFMT: number;
  export const S_IFDIR: number;
  export const WNOHANG: number;
  export function open(path: string, flags: number, mode?: number): number;
  export function close(fd: number): number;
  export function read(fd: number, buffer: ArrayBuffer, offset: number, length: number): number;
  export function write(fd: number, buffer: ArrayBufferLike, offset: number, length: number): number;
  export function setReadHandler(fd: number, handler: (() => void) | null): void;
  export function setWriteHandler(fd: number, handler: (() => void) | null): void;
  export function signal(signal: number, handler: (() => void) | null | undefined): void;
  export function setTimeout(handler: () => void, ms: number): unknown;
  export function mkdir(path: string, mode?: number): number;
  export function readdir(path: string): [string[], number];
  export function lstat(path: string): [{ mode: number }, number];
  export function symlink(target: string, path: string): number;
  export function waitpid(pid: number, options: number): [number, number];
}

declare module 'std' {
  export function exit(code: number): never;
  export function strerror(errno: number): string;
  interface FILE {
    puts(text: string): void;
    flush(): void;
  }
  export const err: FILE;
}

declare module 'vmctr' {
  export const O_CLOEXEC: number;
  export const O_NONBLOCK: number;
  export const MNT_DETACH: number;
  export function mount(source: string, target: string, fstype: string, flags: number, data: string): number;
  export function umount(target: string, flags: number): number;
  export function sync(): void;
  export function interfaceUp(name: string): number;
  export function reboot(): number;
  /** The kernel's release (uname -r), or a negative errno. */
  export function uname(): string | number;
  export function getpid(): number;
  export function pipe(): [number, number] | number;
  export function setNonBlocking(fd: number): number;
  export function setCloseOnExec(fd: number): number;
  /** Blocks the signals and returns a non-blocking signalfd for them. */
  export function signalFd(signals: number[]): number;
  /** fds[i] becomes the child's fd i; returns its pid. */
  export function spawn(file: string, argv: string[], envp: string[], fds: number[]): number;
}

/** The program's name, then its arguments. */
declare const scriptArgs: string[];
