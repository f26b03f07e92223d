// The fuzz targets, and how one case of one target is run and judged. The
// CI test and bench/fuzz share this: a case is (target, seed, index), so
// any failure either of them reports replays with `runCase` alone.
import { FuzzFailure, type FuzzTarget } from './invariants.js';
import { parserTargets } from './parser-targets.js';
import { Rng } from './prng.js';
import { virtioTargets } from './virtio-targets.js';

export type { FuzzTarget } from './invariants.js';

export const targets: readonly FuzzTarget[] = [...virtioTargets, ...parserTargets];

export const DEFAULT_SEED = 0x5eed;

export interface CaseResult {
  ms: number;
  /** Why the case failed: an invariant broken, an undocumented error, or the deadline passed. */
  failure?: string;
}

/**
 * Runs one case. A case is synchronous, so the deadline is checked when it
 * returns: a case that merely runs long is reported as a hang; one that
 * never returns is for the runner to catch (bench/fuzz has a watchdog).
 */
export function runCase(target: FuzzTarget, seed: number, caseIndex: number, deadlineMs: number): CaseResult {
  const started = performance.now();
  let failure: string | undefined;
  try {
    target.run(new Rng(seed, caseIndex), caseIndex);
  } catch (e) {
    failure = e instanceof FuzzFailure ? e.message : `escaped: ${e instanceof Error ? `${e.name}: ${e.message}\n${e.stack ?? ''}` : String(e)}`;
  }
  const ms = performance.now() - started;
  if (!failure && ms > deadlineMs) failure = `hang: took ${ms.toFixed(1)} ms, the deadline is ${deadlineMs} ms`;
  return failure ? { ms, failure } : { ms };
}
