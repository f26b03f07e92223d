// What the stage1 check costs a start (issue 9 counts every ms): each
// artifact's check made in full (the verification cache removed first) and
// remembered, in alternating rounds, medians. In-process: node:crypto's
// load (about 10 ms, once per process, only for a check made in full) is
// not in these figures.
//   node dist/bench/stage1/verify-cost.js [--rounds N] KIND=PATH...
// Uses the stage1 directory vmctr would (VMCTR_STAGE1_DIR to use another);
// removing its verification cache costs the next start a full check.
import { rmSync } from 'node:fs';
import { verificationCachePath } from '../../stage1/verification-cache.js';
import { isStage1Kind, type Stage1Artifact } from '../../stage1/kind.js';
import { Stage1Error, verifyArtifact } from '../../stage1/verify.js';

const DEFAULT_ROUNDS = 21;

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[sorted.length >> 1]!;
}

function timed(artifact: Stage1Artifact): { ms: number; cached: boolean } {
  const start = process.hrtime.bigint();
  const { cached } = verifyArtifact(artifact);
  return { ms: Number(process.hrtime.bigint() - start) / 1e6, cached };
}

const argv = process.argv.slice(2);
let rounds = DEFAULT_ROUNDS;
if (argv[0] === '--rounds') {
  rounds = Number(argv[1]);
  argv.splice(0, 2);
}
const artifacts: Stage1Artifact[] = argv.map((arg) => {
  const [kind, path] = arg.split('=', 2);
  if (!isStage1Kind(kind) || !path || !Number.isSafeInteger(rounds) || rounds < 1) {
    process.stderr.write('usage: verify-cost.js [--rounds N] KIND=PATH... (KIND: kernel, agent-image, initramfs)\n');
    process.exit(2);
  }
  return { kind, path };
});

process.on('uncaughtException', (e) => {
  process.stderr.write(`verify-cost: ${e instanceof Stage1Error ? e.message : e.stack}\n`);
  process.exit(1);
});

for (const artifact of artifacts) {
  const hashed: number[] = [];
  const cached: number[] = [];
  for (let i = 0; i < rounds; i++) {
    rmSync(verificationCachePath(), { force: true });
    const cold = timed(artifact);
    const warm = timed(artifact);
    if (cold.cached || !warm.cached) throw new Error(`${artifact.path}: the verification cache did not behave (changed in the last 2 s, or writable by others?)`);
    hashed.push(cold.ms);
    cached.push(warm.ms);
  }
  console.log(`${artifact.kind} ${artifact.path}: checked in full ${median(hashed).toFixed(2)} ms, remembered ${median(cached).toFixed(3)} ms (medians of ${rounds})`);
}
