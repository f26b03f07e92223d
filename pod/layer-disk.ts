// A pod's writable layer: a sparse ext4 disk in the pod's directory on which
// the agent puts each app's overlay upper directory, so what containers write
// lands on the host's disk (and is removed with the pod), not in guest RAM,
// and a full layer is ENOSPC in the guest rather than an out-of-memory
// guest. Made fresh per pod by mke2fs in tens of milliseconds: sparse, lazily
// initialised inode tables, no journal (the layer does not outlive the pod,
// so there is nothing to recover after a crash), no reserved blocks.
import { execFile } from 'node:child_process';
import { truncate, writeFile } from 'node:fs/promises';
import { promisify } from 'node:util';

const run = promisify(execFile);

export const MiB = 1024 * 1024;
/** As docker's devicemapper and Kata's default base size. */
export const DEFAULT_LAYER_BYTES = 10 * 1024 * MiB;
/** ext4 needs a few MiB of its own; below this a layer holds almost nothing. */
const MIN_LAYER_BYTES = 16 * MiB;
const MAX_LAYER_BYTES = 16 * 1024 * 1024 * MiB;
const UNITS: Record<string, number> = { '': 1, k: 1024, m: MiB, g: 1024 * MiB, t: 1024 * 1024 * MiB };
export const SIZE_EXPECTED = 'a size such as 512M, 10G or 1T (from 16M to 16T)';

export class LayerDiskError extends Error {
  override name = 'LayerDiskError';
}

/** A size's form (parseSize checks its range). */
export const SIZE_FORM = /^(\d+)([kmgt]?)(i?b)?$/i;

/** `10G`, `512m`, `1T`, `4096k` or a byte count, in bytes; throws with SIZE_EXPECTED otherwise. */
export function parseSize(text: string): number {
  const m = SIZE_FORM.exec(text.trim());
  const bytes = m ? Number(m[1]) * UNITS[m[2]!.toLowerCase()]! : NaN;
  if (!Number.isSafeInteger(bytes) || bytes < MIN_LAYER_BYTES || bytes > MAX_LAYER_BYTES) throw new LayerDiskError(`expected ${SIZE_EXPECTED}, got "${text}"`);
  return bytes;
}

/** Makes `path` an empty ext4 filesystem of `bytes` (rounded down to 4 KiB blocks), sparse. */
export async function createLayerDisk(path: string, bytes: number): Promise<void> {
  await writeFile(path, '');
  await truncate(path, bytes - (bytes % 4096));
  try {
    await run('mke2fs', ['-q', '-t', 'ext4', '-F', '-O', '^has_journal', '-E', 'lazy_itable_init=1,nodiscard', '-m', '0', '-L', 'vmctr-layer', path]);
  } catch (err) {
    const stderr = String((err as { stderr?: unknown }).stderr ?? '').trim().split('\n').at(-1);
    throw new LayerDiskError(`cannot make the pod's writable layer ${path}: ${stderr || (err as Error).message}`);
  }
}
