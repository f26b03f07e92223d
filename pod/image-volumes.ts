// The volumes an image declares (its config's Volumes), with Docker's
// semantics: unless the app mounts a volume there, each path gets a new
// volume of the pod's, populated with what the image has at that path, so
// the container's writes there go to the host (and are shared with nothing
// else). The image's content is found in its unpacked snapshot on the host,
// resolving the path as the container would: symlinks in the image lead
// within the image's root, never to the host's files.
import { execFile } from 'node:child_process';
import { lstatSync, readlinkSync } from 'node:fs';
import { posix } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
/** As Linux's MAXSYMLINKS. */
const MAX_SYMLINKS = 40;

export class ImageVolumeError extends Error {
  override name = 'ImageVolumeError';
}

/** A declared volume: its path in the container, and where the image has it on the host (none if the image has nothing there). */
export interface ImageVolume {
  path: string;
  source: string | undefined;
}

/**
 * The host path of `path` in the root filesystem `root`, symlinks followed
 * inside `root` (an absolute target starts again at `root`, `..` stops at
 * it); undefined when some component does not exist.
 */
export function resolveInRoot(root: string, path: string): string | undefined {
  const pending = path.split('/').filter((c) => c && c !== '.');
  const resolved: string[] = [];
  let links = 0;
  while (pending.length) {
    const part = pending.shift()!;
    if (part === '..') {
      resolved.pop();
      continue;
    }
    const host = posix.join(root, ...resolved, part);
    let stat;
    try {
      stat = lstatSync(host);
    } catch {
      return undefined;
    }
    if (!stat.isSymbolicLink()) {
      resolved.push(part);
      continue;
    }
    if (++links > MAX_SYMLINKS) throw new ImageVolumeError(`the image's volume ${path}: too many symbolic links`);
    const target = readlinkSync(host);
    if (target.startsWith('/')) resolved.length = 0;
    pending.unshift(...target.split('/').filter((c) => c && c !== '.'));
  }
  return posix.join(root, ...resolved);
}

/** The volumes `declared` by an image whose snapshot is at `root`. */
export function imageVolumes(root: string, declared: readonly string[]): ImageVolume[] {
  return declared.map((path) => ({ path: posix.normalize(path).replace(/(.)\/+$/, '$1'), source: resolveInRoot(root, path) }));
}

/** Copies what the image has at `volume.source` (owners, modes, links, xattrs) into the new volume's directory `dir`. */
export async function populateVolume(volume: ImageVolume, dir: string): Promise<void> {
  if (volume.source === undefined) return;
  if (!lstatSync(volume.source).isDirectory()) throw new ImageVolumeError(`the image declares a volume at ${volume.path}, which in the image is not a directory`);
  try {
    await run('cp', ['-a', '--', `${volume.source}/.`, dir]);
  } catch (err) {
    const line = String((err as { stderr?: unknown }).stderr ?? '').trim().split('\n')[0];
    throw new ImageVolumeError(`cannot populate the image's volume ${volume.path}: ${line || (err as Error).message}`);
  }
}
