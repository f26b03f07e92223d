// Where vmctr keeps its state (the image store, pods), in a module of its
// own: `vmctr run` needs the answer before its guest runs, and store.ts
// brings locks, digests and streams along.

export const DEFAULT_ROOT = '/var/lib/vmctr';

/** `--root`, else `$VMCTR_ROOT`, else /var/lib/vmctr. */
export function storeRoot(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  return flag ?? env.VMCTR_ROOT ?? DEFAULT_ROOT;
}
