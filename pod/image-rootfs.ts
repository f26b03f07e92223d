// A pod's root filesystem from an image in the store (vmctr pull / vmctr
// load): its snapshot (unpacked on first use) as a shared disk, or the
// snapshot itself for --rootfs fs, and the process its config says to start. Loaded by rootfs-source.ts only for a
// store image, and it imports the store's modules one by one, not
// image/index.ts, which brings the registry client (undici) along.
import { rename, rm, stat } from 'node:fs/promises';
import { readAccounts } from '../image/accounts.js';
import type { Digest } from '../image/digest.js';
import { resolveImage } from '../image/resolve-image.js';
import { containerSpec } from '../image/run-spec.js';
import { ImageStore } from '../image/store.js';
import { buildRootfsDisk } from './rootfs-disk.js';
import { imageVolumes } from './image-volumes.js';
import type { PreparedRootfs, RootfsOptions } from './rootfs-source.js';

/** The root filesystem of the store image `nameOrId`; a one-line ImageError if it is not there or cannot run. */
export async function prepareImageRootfs(nameOrId: string, opts: RootfsOptions): Promise<PreparedRootfs> {
  const { env, workdir, user } = opts.overrides;
  const store = await ImageStore.open(opts.root);
  const image = await resolveImage(store, nameOrId);
  try {
    const spec = containerSpec(image.config, { command: opts.command, env, workdir, user }, await readAccounts(image.rootfsDir));
    const rootfs = opts.mode === 'fs' ? { directory: image.rootfsDir } : { disk: await imageDisk(store, image.configDigest, image.rootfsDir, opts.progress) };
    const container = {
      args: spec.args,
      env: spec.env,
      cwd: spec.cwd,
      user: `${spec.user.uid}:${spec.user.gid}`,
      ...(spec.user.additionalGids.length ? { additionalGroups: spec.user.additionalGids.map(String) } : {}),
    };
    return { image: rootfs, container, release: () => image.release(), imageVolumes: imageVolumes(image.rootfsDir, spec.volumes) };
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
