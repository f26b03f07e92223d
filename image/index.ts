// The image side of vmctr, for the rest of the engine (vmctr run and friends).
import { ImageStore } from './store.js';

export { ImageStore, storeRoot, DEFAULT_ROOT, type ImageRecord } from './store.js';
export { resolveImage, type ResolvedImage } from './resolve-image.js';
export { pullImage, type PullOptions } from './pull.js';
export { RegistrySession, type RegistryOptions } from './registry-client.js';
export { containerSpec, type ContainerSpec, type SpecOverrides } from './run-spec.js';
export { readAccounts, type Accounts } from './accounts.js';
export { parseReference, formatReference, type ImageReference } from './reference.js';
export { parsePlatform, DEFAULT_PLATFORM, type Platform } from './platform.js';
export { progressTo, quietProgress, type PullProgress } from './progress.js';
export { ImageError } from './image-error.js';
export type { ImageConfig, ContainerConfig } from './image-config.js';

/** Opens (creating if needed) the image store under a vmctr root such as /var/lib/vmctr. */
export function openStore(root: string): Promise<ImageStore> {
  return ImageStore.open(root);
}
