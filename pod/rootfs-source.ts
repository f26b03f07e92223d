// Where a pod's root filesystem comes from: the built-in default image, a
// directory or tar named on the command line, or an image in the store. Each
// ends up as an ext4 disk image the guest mounts read-only (--rootfs block),
// or as a host directory the pod's virtio-fs device serves read-only
// (--rootfs fs: no disk to build), plus how to start the container's process. The image store's code (image-rootfs.ts) is
// loaded only for a store image, and the tar code only for a tar or an image
// to unpack: the default image and a directory load neither, and every
// module loaded is start-up time before the guest runs.
import type { ImageVolume } from './image-volumes.js';
import { stat } from 'node:fs/promises';
import type { ContainerSpec } from '../guest-agent/protocol.js';
import { resolve } from 'node:path';
import { buildRootfsDisk, extractTar, RootfsError, sourceKind } from './rootfs-disk.js';

export { RootfsError } from './rootfs-disk.js';

export const DEFAULT_IMAGE = 'default';
/** What runs when neither the command line nor an image says. */
const DEFAULT_COMMAND = ['sh'];

/** How the guest gets an app's image: a read-only disk, or a directory of the pod's virtio-fs device. */
export type RootfsMode = 'block' | 'fs';

/** The image as prepared: a disk for the guest, or a host directory for the pod's volume backend to serve read-only. */
export type RootfsImage = { disk: string } | { directory: string };

export interface RootfsOptions {
  mode: RootfsMode;
  /** vmctr's state directory (the image store lives under it). */
  root: string;
  /** Finds the built-in default image's disk. */
  defaultImage: () => string;
  /** Where to build a disk for a directory or tar, or beside which to unpack a tar for fs (it belongs to the pod). */
  podDisk: string;
  /** The command after ROOTFS; empty means the image's. */
  command: string[];
  overrides: { env?: string[] | undefined; workdir?: string | undefined; user?: string | undefined };
  progress: (line: string) => void;
}

export interface PreparedRootfs {
  image: RootfsImage;
  container: Omit<ContainerSpec, 'rootfs'>;
  /** Lets go of what the pod held (an image pin). */
  release(): Promise<void>;
  /** The volumes a store image declares (pod/image-volumes.ts). */
  imageVolumes?: ImageVolume[];
}

export async function prepareRootfs(source: string, opts: RootfsOptions): Promise<PreparedRootfs> {
  const { env, workdir, user } = opts.overrides;
  // Plain root filesystems have no config: the command line says it all, and the agent resolves user names in the container.
  const plain = {
    args: opts.command.length ? opts.command : DEFAULT_COMMAND,
    ...(env ? { env } : {}),
    ...(workdir ? { cwd: workdir } : {}),
    ...(user ? { user } : {}),
  };
  const none = async () => {};
  if (source === DEFAULT_IMAGE) {
    if (opts.mode === 'block') return { image: { disk: opts.defaultImage() }, container: plain, release: none };
    const { diskDirectory } = await import('./disk-directory.js');
    return { image: { directory: await diskDirectory(opts.defaultImage(), opts.progress) }, container: plain, release: none };
  }
  if (await stat(source).then(() => true, () => false)) {
    if (opts.mode === 'fs') {
      if ((await sourceKind(source)) === 'directory') return { image: { directory: resolve(source) }, container: plain, release: none };
      opts.progress(`vmctr: unpacking ${source} for the pod`);
      return { image: { directory: await extractTar(source, opts.podDisk) }, container: plain, release: none };
    }
    opts.progress(`vmctr: building the root filesystem disk from ${source}`);
    await buildRootfsDisk(source, opts.podDisk);
    return { image: { disk: opts.podDisk }, container: plain, release: none };
  }

  // No image reference starts like a path: a missing directory or tar is not looked for in the store.
  if (/^\.{0,2}\//.test(source)) throw new RootfsError(`rootfs source ${source} does not exist`);
  const { prepareImageRootfs } = await import('./image-rootfs.js');
  return prepareImageRootfs(source, opts);
}
