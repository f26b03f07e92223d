import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, readFile, rename, stat, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Readable } from 'node:stream';
import { ImageError } from './image-error.js';
import { ContentVerifier, digestHex, digestOf, type Digest } from './digest.js';
import { withLock, type LockWait } from './file-lock.js';
import { holderTag } from './holder.js';
import { removeAtExit } from './exit-cleanup.js';

/** What `vmctr images` lists: one name (or none, for an untagged load) pointing at one image. */
export interface ImageRecord {
  /** Full repository name (`docker.io/library/nginx`), or null when loaded without a name. */
  readonly repository: string | null;
  readonly tag: string | null;
  /** What the name resolved to in the registry: an index or a manifest. */
  readonly digest: Digest;
  /** The image manifest for the chosen platform. */
  readonly manifest: Digest;
  /** The config digest: docker's image id. */
  readonly config: Digest;
  /** Chain id of the layers: the key of the unpacked snapshot. */
  readonly snapshot: Digest;
  readonly platform: string;
  /** Config plus compressed layers, in bytes. */
  readonly size: number;
  readonly created: string | null;
}

interface RecordFile {
  readonly version: 1;
  readonly images: ImageRecord[];
}

export { DEFAULT_ROOT, storeRoot } from './store-root.js';

/** Records are keyed by name and tag; untagged ones by their digest. */
export function sameName(a: ImageRecord, b: Pick<ImageRecord, 'repository' | 'tag' | 'digest'>): boolean {
  if (a.repository !== b.repository) return false;
  return a.tag === null && b.tag === null ? a.digest === b.digest : a.tag === b.tag;
}

/**
 * The content-addressed image store under `<root>/image`: verified blobs by
 * digest, unpacked snapshots by chain id, images' disks by config digest, and
 * images.json naming images.
 * See image/README.md for the layout and the locking rules.
 */
export class ImageStore {
  readonly dir: string;

  private constructor(root: string) {
    this.dir = join(root, 'image');
  }

  static async open(root: string): Promise<ImageStore> {
    const store = new ImageStore(root);
    try {
      for (const sub of ['blobs/sha256', 'snapshots', 'disks', 'tmp', 'locks', 'pins']) await mkdir(join(store.dir, sub), { recursive: true });
    } catch (error) {
      throw new ImageError(`cannot use image store at ${store.dir}: ${(error as Error).message}`);
    }
    return store;
  }

  blobPath(digest: Digest): string {
    return join(this.dir, 'blobs', 'sha256', digestHex(digest));
  }

  snapshotPath(chainId: Digest): string {
    return join(this.dir, 'snapshots', digestHex(chainId));
  }

  /** An image's root filesystem as the ext4 disk its pods boot, by config digest (built once, read-only). */
  diskPath(configDigest: Digest): string {
    return join(this.dir, 'disks', `${digestHex(configDigest)}.ext4`);
  }

  get disksDir(): string {
    return join(this.dir, 'disks');
  }

  get snapshotsDir(): string {
    return join(this.dir, 'snapshots');
  }

  get blobsDir(): string {
    return join(this.dir, 'blobs', 'sha256');
  }

  get tmpDir(): string {
    return join(this.dir, 'tmp');
  }

  get pinsDir(): string {
    return join(this.dir, 'pins');
  }

  /** A fresh path in tmp/ named after this process, so prune knows whose it is. */
  tempPath(suffix = ''): string {
    return join(this.tmpDir, `${holderTag()}-${randomBytes(6).toString('hex')}${suffix}`);
  }

  lockPath(name: string): string {
    return join(this.dir, 'locks', `${name}.lock`);
  }

  /** Runs `work` holding the store lock, which guards images.json, pins and garbage collection. */
  withStoreLock<T>(work: () => Promise<T>): Promise<T> {
    return withLock(this.lockPath('store'), work);
  }

  withBlobLock<T>(digest: Digest, work: () => Promise<T>, wait: LockWait = {}): Promise<T> {
    return withLock(this.lockPath(`blob-${digestHex(digest)}`), work, wait);
  }

  /**
   * Whether the blob is present; with `size`, also of that size, so a blob
   * cut short (by a power loss after its rename) is fetched again.
   */
  async hasBlob(digest: Digest, size?: number): Promise<boolean> {
    try {
      const info = await stat(this.blobPath(digest));
      return info.isFile() && (size === undefined || info.size === size);
    } catch {
      return false;
    }
  }

  /** Reads a (small) blob and checks it against its digest: content at rest is not trusted either. */
  async readBlob(digest: Digest, what: string): Promise<Buffer> {
    let bytes: Buffer;
    try {
      bytes = await readFile(this.blobPath(digest));
    } catch {
      throw new ImageError(`${what} (${digest}) is missing from the store at ${this.dir}`);
    }
    if (digestOf(bytes) !== digest) throw new ImageError(`${what} (${digest}) is corrupt in the store at ${this.dir}: remove the image and pull it again`);
    return bytes;
  }

  /**
   * Streams content into the store: to a temp file, checked against digest
   * and size while it is written, flushed, and renamed into place only if it
   * matches. Callers hold the blob's lock, so each blob is fetched once.
   */
  async ingest(source: Readable, verifier: ContentVerifier, onChunk?: (bytes: number) => void, signal?: AbortSignal): Promise<void> {
    const tmp = this.tempPath();
    const dispose = removeAtExit(tmp);
    try {
      await pipeline(
        source,
        async function* (chunks: AsyncIterable<Buffer>) {
          for await (const chunk of chunks) {
            verifier.update(chunk);
            onChunk?.(chunk.length);
            yield chunk;
          }
        },
        createWriteStream(tmp, { flags: 'wx', flush: true }),
        { signal: signal ?? new AbortController().signal },
      );
      verifier.verify();
      await rename(tmp, this.blobPath(verifier.expected));
    } catch (error) {
      await unlink(tmp).catch(() => undefined);
      throw error;
    } finally {
      dispose();
    }
  }

  /** Stores small content (manifests, configs) the caller already holds and has checked. */
  async putBlob(bytes: Uint8Array): Promise<Digest> {
    const digest = digestOf(bytes);
    if (await this.hasBlob(digest, bytes.length)) return digest;
    const tmp = this.tempPath();
    const dispose = removeAtExit(tmp);
    try {
      await writeFile(tmp, bytes, { flag: 'wx', flush: true });
      await rename(tmp, this.blobPath(digest));
    } catch (error) {
      await unlink(tmp).catch(() => undefined);
      throw error;
    } finally {
      dispose();
    }
    return digest;
  }

  get #recordsPath(): string {
    return join(this.dir, 'images.json');
  }

  async images(): Promise<ImageRecord[]> {
    let text: string;
    try {
      text = await readFile(this.#recordsPath, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw error;
    }
    try {
      return (JSON.parse(text) as RecordFile).images;
    } catch {
      throw new ImageError(`${this.#recordsPath} is corrupt (not JSON)`);
    }
  }

  /**
   * Changes images.json under the store lock: read, change, write to a temp
   * file and rename, so readers never see it half written.
   */
  async updateImages<T>(change: (images: ImageRecord[]) => T | Promise<T>): Promise<T> {
    return this.withStoreLock(async () => {
      const images = await this.images();
      const result = await change(images);
      const tmp = this.tempPath('.json');
      await writeFile(tmp, `${JSON.stringify({ version: 1, images } satisfies RecordFile, null, 1)}\n`, { flush: true });
      await rename(tmp, this.#recordsPath);
      return result;
    });
  }

  /** Adds or replaces the record with the same name. */
  async record(image: ImageRecord): Promise<void> {
    await this.updateImages((images) => {
      const at = images.findIndex((existing) => sameName(existing, image));
      if (at >= 0) images[at] = image;
      else images.push(image);
    });
  }
}
