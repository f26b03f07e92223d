import { createHash } from 'node:crypto';
import { ImageError } from './image-error.js';

/** A content digest as OCI writes it; only sha256 is produced or accepted. */
export type Digest = `sha256:${string}`;

const SHA256 = /^sha256:[a-f0-9]{64}$/;
const ANY_DIGEST = /^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/;

export function isDigest(text: string): text is Digest {
  return SHA256.test(text);
}

export function parseDigest(text: string, what = 'digest'): Digest {
  if (isDigest(text)) return text;
  if (ANY_DIGEST.test(text) && !text.startsWith('sha256:')) throw new ImageError(`unsupported ${what} "${text}": only sha256 is supported`);
  throw new ImageError(`invalid ${what} "${text}"`);
}

export function digestOf(bytes: Uint8Array | string): Digest {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

export function digestHex(digest: Digest): string {
  return digest.slice('sha256:'.length);
}

/** The 12-hex-digit form docker prints for ids. */
export function shortDigest(digest: Digest): string {
  return digestHex(digest).slice(0, 12);
}

/**
 * Hashes and counts content as it streams past, so a blob is checked on the
 * way to disk instead of by a second read; stops early when more bytes arrive
 * than were declared, so a hostile server cannot fill the disk.
 */
export class ContentVerifier {
  readonly #hash = createHash('sha256');
  #size = 0;

  constructor(
    readonly expected: Digest,
    readonly expectedSize: number | undefined,
    readonly what: string,
  ) {}

  get size(): number {
    return this.#size;
  }

  update(chunk: Uint8Array): void {
    this.#size += chunk.length;
    if (this.expectedSize !== undefined && this.#size > this.expectedSize) {
      throw new ImageError(`${this.what} failed verification: more than the ${this.expectedSize} bytes its descriptor declares`);
    }
    this.#hash.update(chunk);
  }

  verify(): void {
    if (this.expectedSize !== undefined && this.#size !== this.expectedSize) {
      throw new ImageError(`${this.what} failed verification: ${this.#size} bytes instead of ${this.expectedSize}`);
    }
    const actual: Digest = `sha256:${this.#hash.digest('hex')}`;
    if (actual !== this.expected) {
      throw new ImageError(`${this.what} failed verification: content digest is ${actual}`);
    }
  }
}
