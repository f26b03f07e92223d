import { lstat, readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { isDigest, type Digest } from './digest.js';
import { holderAlive, holderFromName } from './holder.js';
import { parseManifest } from './manifest.js';
import { livePins } from './pin.js';
import type { ImageStore } from './store.js';

export interface Collected {
  readonly blobs: number;
  readonly snapshots: number;
  readonly disks: number;
  readonly temporary: number;
  readonly bytes: number;
}

// Blobs a root digest keeps alive: a manifest keeps its config and layers, an index its manifests.
async function reachable(store: ImageStore, roots: Iterable<Digest>): Promise<Set<Digest>> {
  const keep = new Set<Digest>();
  const pending = [...roots];
  for (let digest = pending.pop(); digest !== undefined; digest = pending.pop()) {
    if (keep.has(digest)) continue;
    keep.add(digest);
    let bytes: Buffer;
    try {
      bytes = await readFile(store.blobPath(digest));
    } catch {
      continue;
    }
    if (bytes.length > 4 * 1024 * 1024 || bytes[0] !== 0x7b) continue; // only JSON documents refer to others
    try {
      const document = parseManifest(bytes, undefined, digest);
      if (document.kind === 'index') pending.push(...document.manifests.map((entry) => entry.digest));
      else pending.push(document.config.digest, ...document.layers.map((layer) => layer.digest));
    } catch {
      // a config, or JSON of some other kind: refers to nothing
    }
  }
  return keep;
}

async function sizeOf(path: string): Promise<number> {
  try {
    return (await lstat(path)).size;
  } catch {
    return 0;
  }
}

/**
 * Removes blobs, snapshots and image disks that no image and no live pin
 * refers to (a disk goes with its image's config), and the
 * temp files of processes that have died. With `only`, removes nothing but
 * those digests (a failed pull taking back what it added). Holds the store
 * lock throughout, so it never races a pull's pinning.
 */
export async function collectGarbage(store: ImageStore, only?: ReadonlySet<Digest>): Promise<Collected> {
  return store.withStoreLock(async () => {
    const images = await store.images();
    const pinned = await livePins(store);
    const keep = await reachable(store, [...images.flatMap((image) => [image.digest, image.manifest]), ...pinned]);
    const snapshots = new Set<Digest>([...images.map((image) => image.snapshot), ...pinned]);
    let blobs = 0;
    let removedSnapshots = 0;
    let temporary = 0;
    let disks = 0;
    let bytes = 0;

    for (const hex of await readdir(store.blobsDir)) {
      const digest = `sha256:${hex}`;
      if (!isDigest(digest) || keep.has(digest) || (only && !only.has(digest))) continue;
      bytes += await sizeOf(store.blobPath(digest));
      await rm(store.blobPath(digest), { force: true });
      blobs += 1;
    }
    for (const hex of await readdir(store.snapshotsDir)) {
      const digest = `sha256:${hex}`;
      if (!isDigest(digest) || snapshots.has(digest) || (only && !only.has(digest))) continue;
      await rm(join(store.snapshotsDir, hex), { recursive: true, force: true });
      removedSnapshots += 1;
    }
    if (!only) {
      for (const name of await readdir(store.disksDir)) {
        const digest = `sha256:${name.replace(/\.ext4$/, '')}`;
        if (isDigest(digest) && keep.has(digest)) continue;
        bytes += await sizeOf(join(store.disksDir, name));
        await rm(join(store.disksDir, name), { force: true });
        disks += 1;
      }
      for (const name of await readdir(store.tmpDir)) {
        const holder = holderFromName(name);
        if (holder && holderAlive(holder)) continue;
        bytes += await sizeOf(join(store.tmpDir, name));
        await rm(join(store.tmpDir, name), { recursive: true, force: true });
        temporary += 1;
      }
    }
    return { blobs, snapshots: removedSnapshots, disks, temporary, bytes };
  });
}
