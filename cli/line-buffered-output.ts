import { writeSync } from 'node:fs';

/**
 * Collects guest console bytes (which arrive one per VM exit) and writes
 * them to a file descriptor a line at a time, or after a short delay for a
 * partial line such as a shell prompt: one syscall per line, not per byte.
 */
export class LineBufferedOutput {
  private chunks: number[] = [];
  private timer: NodeJS.Timeout | undefined;
  private readonly fd: number;
  private readonly delayMs: number;

  constructor(fd: number, delayMs = 5) {
    this.fd = fd;
    this.delayMs = delayMs;
  }

  write(bytes: Uint8Array): void {
    for (const b of bytes) this.chunks.push(b);
    if (bytes.includes(0x0a)) this.flush();
    else this.timer ??= setTimeout(() => this.flush(), this.delayMs);
  }

  flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.chunks.length === 0) return;
    const data = Uint8Array.from(this.chunks);
    this.chunks = [];
    let off = 0;
    while (off < data.byteLength) off += writeSync(this.fd, data, off);
  }
}
