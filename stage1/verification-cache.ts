// Checks that passed, remembered between starts. A full check costs the
// 18.8 MB kernel about 21 ms on this host (the agent image and the demo
// initramfs about 8 ms each), and loading node:crypto for it about 10 ms
// more, on every `vmctr run` and `vmctr boot`. So a check that passed is
// remembered in a cache keyed by the stamps of the three files it read (the
// artifact, its manifest, the public key): device, inode, size,
// modification and status-change times (ns). A start whose three stamps
// match is done after three stats, with no hashing and no node:crypto.
//
// Why that is safe: any change to a file's bytes through the file system
// sets its mtime and ctime; mtime can be set back (utimes), but doing so
// sets ctime to the current time, and ctime itself cannot be set by any
// user (only by changing the clock, which needs root). Replacing a file
// gives a new inode or a new ctime. Two gaps remain, and are closed:
//  - a timestamp has a granularity (a clock tick, or seconds on some file
//    systems): a file changed again within the tick of the change the check
//    read it after would keep its stamp ("racy git"). So a check is
//    remembered only if each file's ctime is RACY_WINDOW_MS old; artifacts
//    are built minutes before they boot, so this costs nothing;
//  - a page of a file mapped writable (MAP_SHARED) updates the times at its
//    first write after writeback, not at every write. So a check is
//    remembered only if nobody but root or this user can write each file
//    (its owner, mode without group or other write): only they could do
//    that, and they could as well pass --insecure-options=image.
// The cache is believed only if it, and its directory, could have been
// written by root or this user alone; anything else is ignored and the
// check is made in full. Without a writable cache (a user other than root)
// every start checks in full: slower, not less safe.
import { mkdirSync, readFileSync, renameSync, statSync, writeFileSync, type BigIntStats } from 'node:fs';
import { dirname, join } from 'node:path';
import { writableOnlyByUs } from './files.js';
import { STAGE1_DIR_ENV } from './key.js';
import type { Stage1Artifact } from './kind.js';

/** How old a file's last status change must be before a check that read it is remembered (FAT's 2 s granularity, with room). */
export const RACY_WINDOW_MS = 2_000;
/** How many checks the cache remembers: a few kernels and agent images at once, across upgrades. */
const MAX_ENTRIES = 16;
const DEFAULT_CACHE = '/var/cache/vmctr/stage1-verified.json';
const CACHE_DIR_MODE = 0o755;
const CACHE_FILE_MODE = 0o644;
const WRITABLE_BY_OTHERS = 0o022n;
const ROOT_UID = 0n;
const NS_PER_MS = 1_000_000n;

/** Where checks are remembered: root's, as /etc is no place for a cache; beside the key when the stage1 directory is moved (tests). */
export function verificationCachePath(): string {
  const moved = process.env[STAGE1_DIR_ENV];
  return moved ? join(moved, 'verified.json') : DEFAULT_CACHE;
}

/** A file's identity and change stamps. */
export function stampOf(s: BigIntStats): string {
  return `${s.dev}:${s.ino} ${s.size} ${s.mtimeNs} ${s.ctimeNs}`;
}

/** The stamps of the files a check read, in the order the check reads them: artifact, manifest, public key. */
type CheckStamps = readonly [artifact: BigIntStats, manifest: BigIntStats, publicKey: BigIntStats];

/** Entries by `${kind} ${path}`, in the order they were last written: the three files' stamps, one per line. */
type Cache = Record<string, string>;

function entryKey(artifact: Stage1Artifact): string {
  return `${artifact.kind} ${artifact.path}`;
}

function entryValue(stamps: readonly BigIntStats[]): string {
  return stamps.map(stampOf).join('\n');
}

/** Whether a check that read this file may be remembered (see above). */
function rememberable(s: BigIntStats, nowNs: bigint): boolean {
  const ours = s.uid === ROOT_UID || s.uid === BigInt(process.geteuid!());
  return s.isFile() && ours && (s.mode & WRITABLE_BY_OTHERS) === 0n && nowNs - s.ctimeNs >= BigInt(RACY_WINDOW_MS) * NS_PER_MS;
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

/** Whether a check of `artifact` (its absolute path) passed with its three files as they are now; never throws. */
export function isRemembered(artifact: Stage1Artifact, files: readonly [artifact: string, manifest: string, publicKey: string]): boolean {
  try {
    const remembered = readCache(verificationCachePath())[entryKey(artifact)];
    return remembered !== undefined && remembered === entryValue(files.map((f) => statSync(f, { bigint: true })));
  } catch {
    return false;
  }
}

/** Remembers a check of `artifact` that passed having read files with these stamps, if it may be; a failure only makes starts slower. */
export function remember(artifact: Stage1Artifact, stamps: CheckStamps): void {
  const nowNs = BigInt(Date.now()) * NS_PER_MS;
  if (!stamps.every((s) => rememberable(s, nowNs))) return;
  const file = verificationCachePath();
  try {
    mkdirSync(dirname(file), { recursive: true, mode: CACHE_DIR_MODE });
    if (!writableOnlyByUs(dirname(file))) return;
    const cache = readCache(file);
    delete cache[entryKey(artifact)];
    cache[entryKey(artifact)] = entryValue(stamps);
    const kept = Object.fromEntries(Object.entries(cache).slice(-MAX_ENTRIES));
    const tmp = `${file}.${process.pid}.tmp`;
    writeFileSync(tmp, JSON.stringify(kept, null, 1) + '\n', { mode: CACHE_FILE_MODE });
    renameSync(tmp, file);
  } catch {
    // not remembered: the next start checks in full
  }
}
