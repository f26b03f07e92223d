// A kernel or initrd to load: bytes already in memory, or a file read piece
// by piece straight into its place in guest RAM. The loader reads the ELF
// headers, then only the loadable segments, each into the guest memory it
// belongs in: of the 18.8 MB vmlinux (symbols included) 11.7 MB, with no
// copy of the whole file first.
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';

export interface BootImage {
  readonly byteLength: number;
  /** Fills all of `target` with the image's bytes from `offset`; throws if the image ends first. */
  readInto(offset: number, target: Uint8Array): void;
}

/** `length` bytes of an image from `offset`, as a new array (headers, notes). */
export function readImage(image: BootImage, offset: number, length: number): Uint8Array {
  const out = new Uint8Array(length);
  image.readInto(offset, out);
  return out;
}

function outOfRange(offset: number, length: number, size: number): Error {
  return new RangeError(`image range ${offset}+${length} is beyond its end (${size} bytes)`);
}

/** An image held in memory. */
export class BytesImage implements BootImage {
  constructor(private readonly bytes: Uint8Array) {}

  get byteLength(): number {
    return this.bytes.byteLength;
  }

  readInto(offset: number, target: Uint8Array): void {
    if (offset < 0 || offset + target.byteLength > this.bytes.byteLength) throw outOfRange(offset, target.byteLength, this.bytes.byteLength);
    target.set(this.bytes.subarray(offset, offset + target.byteLength));
  }
}

/** A regular file, read with pread(2) into the caller's buffer (guest memory): no intermediate copy. */
export class FileImage implements BootImage {
  private constructor(
    private readonly fd: number,
    readonly byteLength: number,
  ) {}

  /** Opens a regular file; fails like fs calls do (code ENOENT, EACCES, ... and EISDIR for a directory). */
  static open(path: string): FileImage {
    const fd = openSync(path, 'r');
    try {
      const stats = fstatSync(fd);
      if (stats.isDirectory()) throw Object.assign(new Error(`EISDIR: illegal operation on a directory, open '${path}'`), { code: 'EISDIR' });
      return new FileImage(fd, stats.size);
    } catch (e) {
      closeSync(fd);
      throw e;
    }
  }

  readInto(offset: number, target: Uint8Array): void {
    if (offset < 0 || offset + target.byteLength > this.byteLength) throw outOfRange(offset, target.byteLength, this.byteLength);
    for (let done = 0; done < target.byteLength;) {
      const n = readSync(this.fd, target, done, target.byteLength - done, offset + done);
      if (n === 0) throw new Error(`the file ended at ${offset + done} bytes while reading it (changed since it was opened?)`);
      done += n;
    }
  }

  close(): void {
    closeSync(this.fd);
  }
}

/** An image as the loader takes it: bytes are wrapped, images are kept. */
export function bootImage(image: BootImage | Uint8Array): BootImage {
  return image instanceof Uint8Array ? new BytesImage(image) : image;
}
