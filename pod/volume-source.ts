// The host side of a pod's host volumes, checked before anything starts:
// each source must be an existing directory (a volume is a directory the
// guest shares, never a file), and the backend is given its real path, with
// every symlink followed here, once, rather than by the backend.
import { realpathSync, statSync } from 'node:fs';
import { shown } from './spec-text.js';
import { VolumeSpecError, type Origin, type VolumeSpec } from './volume-spec.js';

/** `source` (absolute) as the backend takes it: the real path of a directory, or the one-line reason it is not one. */
function realDirectory(source: string): string | { problem: string } {
  let real: string;
  try {
    real = realpathSync(source);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return { problem: `${shown(source)} does not exist` };
    return { problem: `cannot resolve ${shown(source)}: ${(err as Error).message}` };
  }
  if (!statSync(real).isDirectory()) return { problem: `${shown(source)} is not a directory (only a directory can be a volume)` };
  return real;
}

/**
 * The volumes with each host source made the real path of a directory;
 * `originOf(index)` says where volume `index` was given, for the
 * VolumeSpecError of a source that does not exist or is no directory.
 */
export function resolveVolumeSources(volumes: readonly VolumeSpec[], originOf: (index: number) => Origin): VolumeSpec[] {
  return volumes.map((volume, index) => {
    if (volume.source === undefined) return volume;
    const real = realDirectory(volume.source);
    if (typeof real !== 'string') throw new VolumeSpecError(`${originOf(index).field('source')}: ${real.problem}`);
    return { ...volume, source: real };
  });
}
