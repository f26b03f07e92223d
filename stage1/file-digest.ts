// The SHA-256 of a stage1 artifact, remembered between starts. Hashing the
// 18.8 MB kernel costs about 20 ms on this host (the agent image 8 ms), on
// every `vmctr run` and `vmctr boot`; a stat costs 0.1 ms. So a digest is
// kept in a cache keyed by the file's identity and change stamps: device,
// inode, size, modification and status-change times (ns).
//
// Why that is safe: any change to a file's bytes through the file system
// sets its mtime and ctime; mtime can be set back (utimes), but doing so
// sets ctime to the current time, and ctime itself cannot be set by any
// user (only by changing the clock, which needs root). Replacing the file
// gives a new inode or a new ctime. Two gaps remain, and are closed:
//  - a timestamp has a granularity (a clock tick, or seconds on some file
//    systems): a file changed again within the tick of the change the
//    digest was taken after would keep its stamps ("racy git"). So a digest
//    is remembered only for a file whose ctime is RACY_WINDOW_MS old;
//    artifacts are built minutes before they boot, so this costs nothing;
//  - a page of the file mapped writable (MAP_SHARED) updates the times at
//    its first write after writeback, not at every write. So a digest is
//    remembered only for a file that nobody but root or this user can write
//    (its owner, mode without group or other write): only they could do it,
//    and they could as well pass --insecure-options=image.
// The cache is trusted only if it, and its directory, could have been
// written by root or this user alone (key.ts's writableOnlyByUs); anything
// else is ignored, and the file is hashed. Without a writable cache (a user
// other than root) every start hashes: slower, not less safe.
import { createHash } from 'node:crypto';
import { closeSync, fstatSync, mkdirSync, openSync, readFileSync, readSync, renameSync, writeFileSync, type BigIntStats } from 'node:fs';
import { dirname, join } from 'node:path';
import { STAGE1_DIR_ENV, writableOnlyByUs } from './key.js';

/** Where digests are remembered: root's, as /etc is no place for a cache; beside the key when the stage1 directory is moved (tests). */
export function digestCachePath(): string {
  const moved = process.env[STAGE1_DIR_ENV];
  return moved ? join(moved, 'digests.json') : DEFAULT_DIGEST_CACHE;
}

const DEFAULT_DIGEST_CACHE = '/var/cache/vmctr/stage1-digests.json';

/** How old a file's last status change must be before its digest is remembered (FAT's 2 s granularity, with room). */
export const RACY_WINDOW_MS = 2_000;
/** How many artifacts the cache remembers: a few kernels and agent images at once, across upgrades. */
const MAX_ENTRIES = 16;
const READ_CHUNK = 1 << 20;
const CACHE_DIR_MODE = 0o755;
const CACHE_FILE_MODE = 0o644;
const WRITABLE_BY_OTHERS = 0o022;
const ROOT_UID = 0;
const NS_PER_MS = 1_000_000n;

interface Entry {
  /** `${size} ${mtimeNs} ${ctimeNs}` when the digest was taken. */
  stamp: string;
  sha256: string;
}

/** Entries by `${dev}:${ino}`, in the order they were last written. */
type Cache = Record<string, Entry>;

function identity(s: BigIntStats): string {
  return `${s.dev}:${s.ino}`;
}

function stamp(s: BigIntStats): string {
  return `${s.size} ${s.mtimeNs} ${s.ctimeNs}`;
}

/** Whether a digest of this file may be remembered (see above). */
function rememberable(s: BigIntStats, now: bigint): boolean {
  const ours = s.uid === BigInt(ROOT_UID) || s.uid === BigInt(process.geteuid!());
  return s.isFile() && ours && (s.mode & BigInt(WRITABLE_BY_OTHERS)) === 0n && now - s.ctimeNs >= BigInt(RACY_WINDOW_MS) * NS_PER_MS;
}

function readCache(file: string): Cache {
  try {
    if (!writableOnlyByUs(file) || !writableOnlyByUs(dirname(file))) return {};
    const cache = JSON.parse(readFileSync(file, 'utf8')) as unknown;
    return typeof cache === 'object' && cache !== null ? (cache as Cache) : {};
  } catch {
    return {};
  }
}

function writeCache(file: string, cache: Cache): void {
  try {
    mkdirSync(dirname(file), { recursive: true, mode: CACHE_DIR_MODE });
    if (!writableOnlyByUs(dirname(file))) return;
    const kept = Object.fromEntries(Object.entries(cache).slice(-MAX_ENTRIES));
    const tmp = `${file}.${process.pid}.tmp`;
    writeFileSync(tmp, JSON.stringify(kept, null, 1) + '\n', { mode: CACHE_FILE_MODE });
    renameSync(tmp, file);
  } catch {
    // not remembered: the next start hashes again
  }
}

function hashFd(fd: number): string {
  const hash = createHash('sha256');
  const buffer = Buffer.allocUnsafe(READ_CHUNK);
  for (let n; (n = readSync(fd, buffer, 0, READ_CHUNK, null)) > 0;) hash.update(buffer.subarray(0, n));
  return hash.digest('hex');
}

export interface FileDigest {
  sha256: string;
  size: number;
  /** Whether it came from the cache. */
  cached: boolean;
}

/** The SHA-256 of the file at `path`, from `cacheFile` when it is known there (undefined: no cache). */
export function fileDigest(path: string, cacheFile: string | undefined): FileDigest {
  const fd = openSync(path, 'r');
  try {
    const before = fstatSync(fd, { bigint: true });
    const size = Number(before.size);
    const cache = cacheFile === undefined ? {} : readCache(cacheFile);
    const id = identity(before);
    if (cache[id]?.stamp === stamp(before)) return { sha256: cache[id].sha256, size, cached: true };
    const sha256 = hashFd(fd);
    // Remembered only if nothing changed while it was read.
    const after = fstatSync(fd, { bigint: true });
    if (cacheFile !== undefined && stamp(after) === stamp(before) && rememberable(before, BigInt(Date.now()) * NS_PER_MS)) {
      const others = { ...cache };
      delete others[id];
      writeCache(cacheFile, { ...others, [id]: { stamp: stamp(before), sha256 } });
    }
    return { sha256, size, cached: false };
  } finally {
    closeSync(fd);
  }
}
