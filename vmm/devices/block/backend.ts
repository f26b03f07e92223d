// Where a virtio-blk device's sectors live: a host file, accessed with
// positioned synchronous I/O straight into and out of guest memory (no
// intermediate copies). Page-cache hits make this cheap; O_DIRECT or
// io_uring can come later behind the same interface.
import { closeSync, constants, fdatasyncSync, fstatSync, openSync, readSync, writeSync } from 'node:fs';

export interface BlockBackend {
  /** Size in bytes (a multiple of 512). */
  readonly size: number;
  readonly readOnly: boolean;
  /** Reads into `buf` from byte `pos`; bytes past the end of the file read as zero. */
  read(pos: number, buf: Uint8Array): void;
  write(pos: number, buf: Uint8Array): void;
  flush(): void;
  close(): void;
}

export class FileBackend implements BlockBackend {
  readonly size: number;
  readonly readOnly: boolean;
  private readonly fd: number;

  private constructor(fd: number, size: number, readOnly: boolean) {
    this.fd = fd;
    this.size = size;
    this.readOnly = readOnly;
  }

  static open(path: string, opts: { readOnly: boolean }): FileBackend {
    const fd = openSync(path, opts.readOnly ? constants.O_RDONLY : constants.O_RDWR);
    const bytes = fstatSync(fd).size;
    // The guest sees whole sectors; a trailing partial sector is not exposed.
    return new FileBackend(fd, bytes - (bytes % 512), opts.readOnly);
  }

  read(pos: number, buf: Uint8Array): void {
    let done = 0;
    while (done < buf.byteLength) {
      const n = readSync(this.fd, buf, done, buf.byteLength - done, pos + done);
      if (n === 0) {
        buf.fill(0, done);
        return;
      }
      done += n;
    }
  }

  write(pos: number, buf: Uint8Array): void {
    let done = 0;
    while (done < buf.byteLength) done += writeSync(this.fd, buf, done, buf.byteLength - done, pos + done);
  }

  flush(): void {
    if (!this.readOnly) fdatasyncSync(this.fd);
  }

  close(): void {
    closeSync(this.fd);
  }
}
