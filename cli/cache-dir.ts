import { homedir } from 'node:os';
import { join } from 'node:path';

/**
 * vmctr's per-user cache: $VMCTR_CACHE (as the build scripts use it), else
 * $XDG_CACHE_HOME/vmctr, else ~/.cache/vmctr. Everything kept there can be
 * rebuilt; nothing may fail because it is missing or not writable.
 */
export function cacheDir(): string {
  return process.env.VMCTR_CACHE || join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'vmctr');
}
