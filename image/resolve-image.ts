import { ImageError } from './image-error.js';
import type { Digest } from './digest.js';
import { findImage } from './image-lookup.js';
import { parseImageConfig, type ImageConfig } from './image-config.js';
import { parseManifest } from './manifest.js';
import { Pin } from './pin.js';
import { quietProgress } from './progress.js';
import { ensureSnapshot } from './snapshot.js';
import type { ImageStore } from './store.js';
import type { SnapshotProgress } from './snapshot.js';

/** An image ready to run: its unpacked root filesystem and its config. */
export interface ResolvedImage {
  /** Shared by every container of this image: use it read-only (or as an overlay's lower layer). */
  readonly rootfsDir: string;
  readonly config: ImageConfig;
  readonly configDigest: Digest;
  readonly manifestDigest: Digest;
  /** Lets garbage collection remove the snapshot again; call when the container is gone. */
  release(): Promise<void>;
}

/**
 * Resolves a reference or image id in the store to its snapshot, unpacking
 * it first if it is not there yet. The image stays pinned against `vmctr
 * image prune` and `vmctr rmi` until `release()` or this process exits.
 */
export async function resolveImage(store: ImageStore, nameOrId: string, progress: SnapshotProgress = quietProgress): Promise<ResolvedImage> {
  const image = await findImage(store, nameOrId);
  const pin = new Pin(store);
  try {
    await pin.add([image.digest, image.manifest, image.config, image.snapshot]);
    const what = image.repository ? `${image.repository}${image.tag ? `:${image.tag}` : ''}` : image.config;
    const manifest = parseManifest(await store.readBlob(image.manifest, `manifest of ${what}`), undefined, `manifest of ${what}`);
    if (manifest.kind !== 'manifest') throw new ImageError(`${what}: ${image.manifest} is not an image manifest`);
    const config = parseImageConfig(await store.readBlob(image.config, `config of ${what}`), `config of ${what}`);
    const rootfsDir = await ensureSnapshot(store, manifest, config, what, progress);
    return { rootfsDir, config, configDigest: image.config, manifestDigest: image.manifest, release: () => pin.release() };
  } catch (error) {
    await pin.release();
    throw error;
  }
}
