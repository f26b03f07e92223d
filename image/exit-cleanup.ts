import { rmSync, unlinkSync } from 'node:fs';

// Files this process must not leave behind if it exits mid-operation: its
// lock files, temp files and pins. Removal at exit must be synchronous.
const cleanups = new Set<() => void>();
let installed = false;

/** Runs `cleanup` (synchronously) if the process exits before `dispose` is called. */
export function onExit(cleanup: () => void): () => void {
  if (!installed) {
    installed = true;
    process.on('exit', () => {
      for (const run of cleanups) {
        try {
          run();
        } catch {
          // best effort: prune and stale-lock recovery handle what is left
        }
      }
    });
  }
  cleanups.add(cleanup);
  return () => cleanups.delete(cleanup);
}

/** Removes a temp file or directory at exit unless `dispose` is called first (it was committed). */
export function removeAtExit(path: string, directory = false): () => void {
  return onExit(() => (directory ? rmSync(path, { recursive: true, force: true }) : unlinkSync(path)));
}

/** Makes SIGINT and SIGTERM exit through the 'exit' handlers, so cleanups run. */
export function exitOnSignals(): void {
  process.once('SIGINT', () => process.exit(130));
  process.once('SIGTERM', () => process.exit(143));
}
