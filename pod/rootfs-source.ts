// Where a pod's root filesystem comes from: the built-in default image, a
// directory or tar named on the command line, or an image in the store. Each
// ends up as an ext4 disk image the guest mounts read-only, plus how to start
// the container's process. The image store's code (image-rootfs.ts) is
// loaded only for a store image, and the tar code only for a tar or an image
// to unpack: the default image and a directory load neither, and every
// module loaded is start-up time before the guest runs.
import type { ImageVolume } from './image-volumes.js';
import { stat } from 'node:fs/promises';
import type { ContainerSpec } from '../guest-agent/protocol.js';
import { buildRootfsDisk } from './rootfs-disk.js';

export { RootfsError } from './rootfs-disk.js';

export const DEFAULT_IMAGE = 'default';
/** What runs when neither the command line nor an image says. */
const DEFAULT_COMMAND = ['sh'];

export interface RootfsOptions {
  /** vmctr's state directory (the image store lives under it). */
  root: string;
  /** Finds the built-in default image's disk. */
  defaultImage: () => string;
  /** Where to build a disk for a directory or tar (it belongs to the pod). */
  podDisk: string;
  /** The command after ROOTFS; empty means the image's. */
  command: string[];
  overrides: { env?: string[] | undefined; workdir?: string | undefined; user?: string | undefined };
  progress: (line: string) => void;
}

export interface PreparedRootfs {
  disk: string;
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
  if (source === DEFAULT_IMAGE) return { disk: opts.defaultImage(), container: plain, release: none };
  if (await stat(source).then(() => true, () => false)) {
    opts.progress(`vmctr: building the root filesystem disk from ${source}`);
    await buildRootfsDisk(source, opts.podDisk);
    return { disk: opts.podDisk, container: plain, release: none };
  }

  const { prepareImageRootfs } = await import('./image-rootfs.js');
  return prepareImageRootfs(source, opts);
}
