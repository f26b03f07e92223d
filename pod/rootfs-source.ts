// Where a pod's root filesystem comes from: the built-in default image, a
// directory or tar named on the command line, or an image in the store. Each
// ends up as an ext4 disk image the guest mounts read-only, plus how to start
// the container's process.
import { stat, rename, rm } from 'node:fs/promises';
import type { ContainerSpec } from '../guest-agent/protocol.js';
import { containerSpec, openStore, readAccounts, resolveImage, type ImageStore } from '../image/index.js';
import type { Digest } from '../image/digest.js';
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

  const store = await openStore(opts.root);
  const image = await resolveImage(store, source);
  try {
    const spec = containerSpec(image.config, { command: opts.command, env, workdir, user }, await readAccounts(image.rootfsDir));
    const disk = await imageDisk(store, image.configDigest, image.rootfsDir, opts.progress);
    const container = {
      args: spec.args,
      env: spec.env,
      cwd: spec.cwd,
      user: `${spec.user.uid}:${spec.user.gid}`,
      ...(spec.user.additionalGids.length ? { additionalGroups: spec.user.additionalGids.map(String) } : {}),
    };
    return { disk, container, release: () => image.release() };
  } catch (err) {
    await image.release();
    throw err;
  }
}

/**
 * An image's disk is built once from its snapshot and shared by its pods
 * (read-only in every guest). Built in the store's tmp/ (so prune knows a
 * dead builder's leftovers) and renamed: concurrent first runs each build a
 * whole one and the last rename wins. `image prune` removes it with the image.
 */
async function imageDisk(store: ImageStore, configDigest: Digest, rootfsDir: string, progress: (line: string) => void): Promise<string> {
  const disk = store.diskPath(configDigest);
  if (await stat(disk).then(() => true, () => false)) return disk;
  progress(`vmctr: building the image's disk (once per image)`);
  const partial = store.tempPath('-disk.ext4');
  try {
    await buildRootfsDisk(rootfsDir, partial);
    await rename(partial, disk);
  } finally {
    await rm(partial, { force: true });
  }
  return disk;
}
