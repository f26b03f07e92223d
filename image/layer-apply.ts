import { createHash } from 'node:crypto';
import {
  closeSync, createReadStream, fchmodSync, fchownSync, futimesSync, lchownSync, linkSync, lstatSync, lutimesSync,
  mkdirSync, openSync, readdirSync, rmSync, symlinkSync, writeSync, type Stats,
} from 'node:fs';
import { chmod, open, utimes } from 'node:fs/promises';
import { once } from 'node:events';
import { join, posix } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGunzip, createZstdDecompress } from 'node:zlib';
import type { Transform } from 'node:stream';
import { Parser, type ReadEntry } from 'tar';
import { ImageError } from './image-error.js';
import type { Digest } from './digest.js';
import { containedPath, RootResolver } from './root-path.js';

const WHITEOUT_PREFIX = '.wh.';
const OPAQUE_WHITEOUT = '.wh..wh..opq';

interface DirectoryMetadata {
  readonly mode: number;
  readonly atime: Date;
  readonly mtime: Date;
}

/**
 * Directory modes and times are applied after the last layer: a read-only
 * directory must stay writable while later entries land in it, and every
 * entry written into a directory changes its mtime.
 */
export class DirectoryMetadataLog {
  readonly #entries = new Map<string, DirectoryMetadata>();

  set(path: string, metadata: DirectoryMetadata): void {
    this.#entries.set(path, metadata);
  }

  /** Forgets a removed subtree, so a directory re-created implicitly gets no stale mode. */
  forgetUnder(path: string): void {
    for (const key of this.#entries.keys()) if (key === path || key.startsWith(`${path}/`)) this.#entries.delete(key);
  }

  async apply(): Promise<void> {
    const deepestFirst = [...this.#entries].sort(([a], [b]) => b.length - a.length);
    for (const [path, { mode, atime, mtime }] of deepestFirst) {
      try {
        await chmod(path, mode);
        await utimes(path, atime, mtime);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
      }
    }
  }
}

export interface LayerApplyOptions {
  /** Names the layer in messages: `layer 2 (sha256:…) of docker.io/library/nginx:1.25`. */
  readonly what: string;
  /** The uncompressed digest the image config promises for this layer; checked as it streams. */
  readonly diffId?: Digest;
  readonly directories: DirectoryMetadataLog;
  /** Called for entries skipped on purpose (device nodes, fifos). */
  readonly warn: (message: string) => void;
}

// Chosen by content, not media type: some registries and tools mislabel layers.
async function decoderFor(path: string): Promise<Transform | undefined> {
  const file = await open(path, 'r');
  let magic: Buffer;
  try {
    const { buffer, bytesRead } = await file.read(Buffer.alloc(4), 0, 4, 0);
    magic = buffer.subarray(0, bytesRead);
  } finally {
    await file.close();
  }
  if (magic[0] === 0x1f && magic[1] === 0x8b) return createGunzip();
  if (magic.equals(Buffer.from([0x28, 0xb5, 0x2f, 0xfd]))) return createZstdDecompress();
  return undefined;
}

/** A queue between the tar parser, which emits entries, and the applier, which handles them one at a time. */
class EntryQueue {
  readonly #entries: ReadEntry[] = [];
  #wake: (() => void) | undefined;
  #ended = false;

  push(entry: ReadEntry): void {
    this.#entries.push(entry);
    this.#wake?.();
  }

  end(): void {
    this.#ended = true;
    this.#wake?.();
  }

  async next(): Promise<ReadEntry | undefined> {
    while (this.#entries.length === 0 && !this.#ended) await new Promise<void>((resolve) => (this.#wake = resolve));
    this.#wake = undefined;
    return this.#entries.shift();
  }
}

/** Applies one layer (a tar, gzip or zstd blob) on top of the root filesystem at `rootfs`. */
export async function applyLayer(blobPath: string, rootfs: string, options: LayerApplyOptions): Promise<void> {
  const applier = new LayerApplier(rootfs, options);
  const parser = new Parser({ strict: true });
  const queue = new EntryQueue();
  const failure = new AbortController();
  let firstError: unknown;
  const fail = (error: unknown) => {
    firstError ??= error;
    queue.end();
    failure.abort(error);
  };
  // Builders write empty layers as a bare end-of-archive marker (zeros),
  // which the parser calls unrecognised: such a layer is simply empty.
  let sawData = false;
  const parsed = new Promise<void>((resolve) => {
    parser.on('entry', (entry: ReadEntry) => queue.push(entry));
    parser.on('end', () => {
      queue.end();
      resolve();
    });
    parser.on('error', (error: Error) => {
      if (!sawData) {
        queue.end();
        resolve();
      } else {
        fail(new ImageError(`${options.what} is not a valid tar archive: ${error.message}`));
      }
    });
  });
  const applying = (async () => {
    for (let entry = await queue.next(); entry !== undefined && !failure.signal.aborted; entry = await queue.next()) await applier.apply(entry);
  })();
  applying.catch(fail);

  const diffHash = createHash('sha256');
  const decoder = await decoderFor(blobPath);
  const feed = async (chunks: AsyncIterable<Buffer>) => {
    for await (const chunk of chunks) {
      diffHash.update(chunk);
      sawData ||= chunk.some((byte) => byte !== 0);
      if (!parser.write(chunk)) await once(parser, 'drain', { signal: failure.signal });
    }
    parser.end();
  };
  const source = createReadStream(blobPath, { highWaterMark: 1 << 20 });
  try {
    await (decoder ? pipeline(source, decoder, feed, { signal: failure.signal }) : pipeline(source, feed, { signal: failure.signal }));
    // The parser ends only once every entry is consumed; a failed applier stops consuming.
    await Promise.race([parsed, new Promise((_, reject) => {
      if (failure.signal.aborted) reject(failure.signal.reason);
      failure.signal.addEventListener('abort', () => reject(failure.signal.reason));
    })]);
    await applying;
  } catch (error) {
    if (firstError !== undefined) throw firstError;
    throw new ImageError(`${options.what}: cannot decompress: ${(error as Error).message}`);
  }
  if (options.diffId !== undefined) {
    const actual = `sha256:${diffHash.digest('hex')}`;
    if (actual !== options.diffId) throw new ImageError(`${options.what} failed verification: uncompressed digest is ${actual}, the image config says ${options.diffId}`);
  }
}

// Files up to this size are gathered in memory and written with synchronous
// calls; larger ones stream.
const SMALL_FILE = 1 << 20;

function statOrUndefined(path: string): Stats | undefined {
  try {
    return lstatSync(path);
  } catch {
    return undefined;
  }
}

/**
 * Turns tar entries into files, honouring whiteouts and keeping every path
 * inside the root. File system calls are synchronous (except streaming large
 * files): a layer is thousands of tiny calls, and a thread-pool round trip
 * each costs several times the call itself.
 */
class LayerApplier {
  readonly #resolver: RootResolver;
  // Paths this layer created: whiteouts and opaque directories hide only lower layers.
  readonly #created = new Set<string>();
  readonly #chown = process.getuid?.() === 0;

  constructor(
    readonly rootfs: string,
    readonly options: LayerApplyOptions,
  ) {
    this.#resolver = new RootResolver(rootfs);
  }

  async apply(entry: ReadEntry): Promise<void> {
    try {
      await this.#apply(entry);
    } catch (error) {
      if (error instanceof ImageError) throw error;
      throw new ImageError(`${this.options.what}: cannot extract "${entry.path}": ${(error as Error).message}`);
    } finally {
      entry.resume();
    }
  }

  async #apply(entry: ReadEntry): Promise<void> {
    const what = this.options.what;
    const relative = containedPath(entry.path, what);
    const base = posix.basename(relative);
    const parentRelative = relative.includes('/') ? posix.dirname(relative) : '';

    if (base === OPAQUE_WHITEOUT) return this.#clearLower(parentRelative);
    if (base.startsWith(WHITEOUT_PREFIX)) {
      const hidden = base.slice(WHITEOUT_PREFIX.length);
      if (hidden === '' || hidden === '.' || hidden === '..') throw new ImageError(`${what}: invalid whiteout "${entry.path}"`);
      return this.#whiteout(parentRelative ? `${parentRelative}/${hidden}` : hidden);
    }

    const mode = (entry.mode ?? 0o644) & 0o7777;
    const mtime = entry.mtime ?? new Date(0);
    const atime = entry.atime ?? mtime;
    if (relative === '') {
      if (entry.type === 'Directory') this.options.directories.set(this.rootfs, { mode, atime, mtime });
      return;
    }
    const target = join(this.#resolver.directory(parentRelative), base);

    switch (entry.type) {
      case 'Directory': {
        // A directory over a directory merges; over anything else it replaces.
        this.#create(target, () => mkdirSync(target, { mode: 0o755 }), (existing) => existing.isDirectory());
        this.#own(target, entry);
        this.options.directories.set(target, { mode, atime, mtime });
        break;
      }
      case 'File':
      case 'OldFile':
      case 'ContiguousFile':
        await this.#writeFile(target, entry, mode, atime, mtime);
        break;
      case 'SymbolicLink': {
        if (!entry.linkpath) throw new ImageError(`${what}: symlink "${entry.path}" has no target`);
        const linkpath = entry.linkpath;
        // The target is stored as written: it is resolved inside the container's root when used.
        this.#create(target, () => symlinkSync(linkpath, target));
        this.#own(target, entry);
        lutimesSync(target, atime, mtime);
        break;
      }
      case 'Link': {
        const linkRelative = containedPath(entry.linkpath ?? '', `${what}: hard link "${entry.path}"`);
        const source = join(this.#resolver.resolve(linkRelative.includes('/') ? posix.dirname(linkRelative) : ''), posix.basename(linkRelative));
        const sourceStat = linkRelative === '' ? undefined : statOrUndefined(source);
        if (!sourceStat || sourceStat.isDirectory()) throw new ImageError(`${what}: hard link "${entry.path}" points to "${entry.linkpath}", which is not a file in the image`);
        if (source === target) break;
        this.#create(target, () => linkSync(source, target));
        break;
      }
      case 'CharacterDevice':
      case 'BlockDevice':
      case 'FIFO':
        this.options.warn(`${what}: skipped ${entry.type === 'FIFO' ? 'fifo' : 'device node'} /${relative}`);
        return;
      default:
        this.options.warn(`${what}: skipped /${relative} of unsupported tar type ${entry.type}`);
        return;
    }
    this.#created.add(relative);
  }

  async #writeFile(target: string, entry: ReadEntry, mode: number, atime: Date, mtime: Date): Promise<void> {
    if (entry.size <= SMALL_FILE) {
      const chunks: Buffer[] = [];
      for await (const chunk of entry as AsyncIterable<Buffer>) chunks.push(chunk);
      let fd = -1;
      this.#create(target, () => (fd = openSync(target, 'wx', 0o600)));
      try {
        for (const chunk of chunks) writeSync(fd, chunk);
        if (this.#chown) fchownSync(fd, entry.uid ?? 0, entry.gid ?? 0);
        fchmodSync(fd, mode);
        futimesSync(fd, atime, mtime);
      } finally {
        closeSync(fd);
      }
      return;
    }
    this.#remove(target);
    const file = await open(target, 'wx', 0o600);
    try {
      for await (const chunk of entry as AsyncIterable<Buffer>) await file.write(chunk);
      if (this.#chown) await file.chown(entry.uid ?? 0, entry.gid ?? 0);
      await file.chmod(mode);
      await file.utimes(atime, mtime);
    } finally {
      await file.close();
    }
  }

  // Creates with `make`; if the path exists (from a lower layer), removes it
  // and tries again, unless `keep` accepts what is there. Trying first saves
  // a stat per entry in the common case. Replacing unlinks, so hard links to
  // a lower layer's file keep their content.
  #create(path: string, make: () => void, keep?: (existing: Stats) => boolean): void {
    try {
      make();
      return;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    const existing = lstatSync(path);
    if (keep?.(existing)) return;
    this.#remove(path);
    make();
  }

  #own(path: string, entry: ReadEntry): void {
    if (this.#chown) lchownSync(path, entry.uid ?? 0, entry.gid ?? 0);
  }

  #remove(path: string): void {
    const existing = statOrUndefined(path);
    if (!existing) return;
    rmSync(path, { recursive: true, force: true });
    if (existing.isDirectory()) this.options.directories.forgetUnder(path);
    this.#resolver.forget();
  }

  #whiteout(relative: string): void {
    if (this.#created.has(relative)) return;
    const parent = this.#resolver.resolve(relative.includes('/') ? posix.dirname(relative) : '');
    this.#remove(join(parent, posix.basename(relative)));
  }

  // An opaque directory hides everything lower layers put in it.
  #clearLower(relative: string): void {
    const directory = this.#resolver.resolve(relative);
    let children: string[];
    try {
      children = readdirSync(directory);
    } catch {
      return;
    }
    for (const child of children) {
      const childRelative = relative ? `${relative}/${child}` : child;
      if (!this.#created.has(childRelative)) this.#remove(join(directory, child));
      else if (lstatSync(join(directory, child)).isDirectory()) this.#clearLower(childRelative);
    }
  }
}
