/**
 * An append-only file that never grows past `maxBytes`: at the cap it is
 * renamed to `<path>.1` (replacing the older one) and a new file begins, so
 * a guest that prints forever costs at most twice the cap on the host.
 */
import { closeSync, openSync, renameSync, writeSync } from 'node:fs';
import { Writable } from 'node:stream';

export class CappedFile {
  private fd: number;
  private size = 0;

  constructor(
    readonly path: string,
    private readonly maxBytes: number,
  ) {
    this.fd = openSync(path, 'a', 0o644);
  }

  append(bytes: Uint8Array): void {
    for (let at = 0; at < bytes.length; ) {
      if (this.size >= this.maxBytes) this.rotate();
      const piece = bytes.subarray(at, at + (this.maxBytes - this.size));
      writeSync(this.fd, piece);
      this.size += piece.length;
      at += piece.length;
    }
  }

  /** The file as a stream, for writers that want one (LineBufferedOutput). */
  stream(): Writable {
    return new Writable({
      write: (chunk: Buffer, _encoding, callback) => {
        try {
          this.append(chunk);
          callback();
        } catch (err) {
          callback(err as Error);
        }
      },
    });
  }

  close(): void {
    closeSync(this.fd);
  }

  private rotate(): void {
    closeSync(this.fd);
    renameSync(this.path, `${this.path}.1`);
    this.fd = openSync(this.path, 'a', 0o644);
    this.size = 0;
  }
}
