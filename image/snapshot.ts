import { access, mkdir, rename, rm } from 'node:fs/promises';
import { ImageError } from './image-error.js';
import { digestOf, shortDigest, type Digest } from './digest.js';
import { withLock } from './file-lock.js';
import { removeAtExit } from './exit-cleanup.js';
import { applyLayer, DirectoryMetadataLog } from './layer-apply.js';
import type { ImageConfig } from './image-config.js';
import type { ImageManifest } from './manifest.js';
import type { ImageStore } from './store.js';

/** The OCI chain id of a layer stack: images sharing all their layers share one snapshot. */
export function chainId(diffIds: readonly Digest[]): Digest {
  if (diffIds.length === 0) return digestOf('');
  return diffIds.slice(1).reduce<Digest>((chain, diffId) => digestOf(`${chain} ${diffId}`), diffIds[0]!);
}

export interface SnapshotProgress {
  readonly unpacking?: (layer: number, of: number, digest: Digest) => void;
  readonly warn: (message: string) => void;
}

async function exists(path: string): Promise<boolean> {
  return access(path).then(() => true, () => false);
}

/**
 * The image's root filesystem, unpacked once and shared by every later run.
 * Layers are applied into a temp directory that is renamed into snapshots/
 * only when complete, under a lock so concurrent callers unpack it once.
 * Returns the snapshot directory.
 */
export async function ensureSnapshot(store: ImageStore, manifest: ImageManifest, config: ImageConfig, what: string, progress: SnapshotProgress): Promise<string> {
  const diffIds = config.rootfs.diff_ids;
  if (diffIds.length !== manifest.layers.length) {
    throw new ImageError(`${what}: the manifest has ${manifest.layers.length} layers but the config lists ${diffIds.length}`);
  }
  const key = chainId(diffIds);
  const final = store.snapshotPath(key);
  if (await exists(final)) return final;
  return withLock(store.lockPath(`snapshot-${shortDigest(key)}`), async () => {
    if (await exists(final)) return final;
    for (const layer of manifest.layers) {
      if (!(await store.hasBlob(layer.digest))) throw new ImageError(`${what}: layer ${layer.digest} is missing from the store: pull the image again`);
    }
    const tmp = store.tempPath('-snapshot');
    const dispose = removeAtExit(tmp, true);
    try {
      await mkdir(tmp, { mode: 0o755 });
      const directories = new DirectoryMetadataLog();
      for (const [i, layer] of manifest.layers.entries()) {
        progress.unpacking?.(i + 1, manifest.layers.length, layer.digest);
        await applyLayer(store.blobPath(layer.digest), tmp, {
          what: `layer ${i + 1} (${layer.digest}) of ${what}`,
          diffId: diffIds[i]!,
          directories,
          warn: progress.warn,
        });
      }
      await directories.apply();
      await rename(tmp, final);
    } catch (error) {
      await rm(tmp, { recursive: true, force: true });
      throw error;
    } finally {
      dispose();
    }
    return final;
  });
}
