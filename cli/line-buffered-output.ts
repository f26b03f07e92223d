/**
 * Collects guest console bytes (the UART delivers one per VM exit) and
 * writes them to a stream a line at a time, or after a short delay for a
 * partial line such as a shell prompt: one write per line, not per byte.
 * The stream, not a raw write(2) on its fd, deals with a full pipe: stdout
 * may be non-blocking, and a bare EAGAIN would lose output.
 * The stream can be attached later (process.stdout is created on first use,
 * which loads Node's stream modules: `vmctr boot` does that while the guest
 * boots); output before that is held.
 */
export class LineBufferedOutput {
  private chunks: Buffer[] = [];
  private timer: NodeJS.Timeout | undefined;
  /** The stream asked us to wait for 'drain'; whoever can wait is told when it comes. */
  private full = false;
  private drainWaiters: (() => void)[] = [];

  constructor(
    private out?: NodeJS.WritableStream,
    private readonly delayMs = 5,
  ) {}

  attach(out: NodeJS.WritableStream): void {
    this.out = out;
    this.flush();
  }

  /** Takes all of `bytes`; false when the stream is full (a writer that can wait should, until `onDrain`). */
  write(bytes: Uint8Array): boolean {
    this.chunks.push(Buffer.from(bytes));
    if (bytes.includes(0x0a)) this.flush();
    else this.timer ??= setTimeout(() => this.flush(), this.delayMs);
    return !this.full;
  }

  /** Calls `resume` once the stream can take more (at once if it can now). */
  onDrain(resume: () => void): void {
    if (this.full) this.drainWaiters.push(resume);
    else queueMicrotask(resume);
  }

  flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.chunks.length === 0 || !this.out) return;
    const data = Buffer.concat(this.chunks);
    this.chunks = [];
    if (this.out.write(data) || this.full) return;
    this.full = true;
    this.out.once('drain', () => {
      this.full = false;
      for (const resume of this.drainWaiters.splice(0)) resume();
    });
  }
}
