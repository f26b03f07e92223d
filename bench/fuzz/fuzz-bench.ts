// bench/fuzz: N cases of every fuzz target (default 10^6), each under the
// per-case invariants of test/fuzz and a deadline; reports per target the
// cases run, the failures (with seed and case index to replay them), the
// slowest case and peak RSS, and writes bench/results/fuzz.md.
//
//   npm run bench:fuzz -- [--cases N] [--seed S] [--deadline-ms D] [--targets a,b]
//
// A case is synchronous: one that runs past its deadline but returns is
// counted as a hang by runCase; one still running after ten deadlines is
// taken to never return: a watchdog thread names it and kills the run.
import { writeFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Worker } from 'node:worker_threads';
import { RESULTS_DIR } from '../report.js';
import { DEFAULT_SEED, runCase, targets, type FuzzTarget } from '../../test/fuzz/targets.js';

const { values } = parseArgs({
  options: {
    cases: { type: 'string', default: String(10 ** 6) },
    seed: { type: 'string', default: String(DEFAULT_SEED) },
    'deadline-ms': { type: 'string', default: '1000' },
    targets: { type: 'string' },
  },
});
const cases = Number(values.cases);
const seed = Number(values.seed);
const deadlineMs = Number(values['deadline-ms']);
const chosen = values.targets ? targets.filter((t) => values.targets!.split(',').includes(t.name)) : targets;
if (!Number.isSafeInteger(cases) || cases < 1 || !Number.isSafeInteger(seed) || !(deadlineMs > 0) || chosen.length === 0) {
  throw new Error(`usage: fuzz-bench [--cases N] [--seed S] [--deadline-ms D] [--targets ${targets.map((t) => t.name).join(',')}]`);
}

/** What the watchdog reads: the target's number and the case running, and a heartbeat. */
const progress = new Int32Array(new SharedArrayBuffer(12));
const HEARTBEAT = 2;

/**
 * A thread that kills the run when a case never returns: ten deadlines
 * with no heartbeat. It names the case first, so the hang replays.
 */
function startWatchdog(): Worker {
  const names = chosen.map((t) => t.name);
  const worker = new Worker(`
    const { workerData } = require('node:worker_threads');
    const { writeSync } = require('node:fs');
    const { progress, names, seed, limitMs } = workerData;
    let last = -1;
    let since = Date.now();
    setInterval(() => {
      const beat = Atomics.load(progress, 2);
      if (beat !== last) { last = beat; since = Date.now(); return; }
      if (Date.now() - since < limitMs) return;
      // writeSync to fd 2: a worker's process.stderr goes through the main thread, which is stuck.
      writeSync(2, 'hang: ' + names[Atomics.load(progress, 0)] + ' case ' + Atomics.load(progress, 1) + ' (seed ' + seed + ') has not returned in ' + limitMs + ' ms\\n');
      process.kill(process.pid, 'SIGKILL');
    }, Math.min(limitMs, 1000));
  `, { eval: true, workerData: { progress, names, seed, limitMs: 10 * deadlineMs } });
  worker.unref();
  return worker;
}

interface TargetReport {
  name: string;
  cases: number;
  failureCount: number;
  /** The first KEEP failures. */
  failures: { caseIndex: number; failure: string }[];
  slowestMs: number;
  slowestCase: number;
  seconds: number;
  rssStartMiB: number;
  rssPeakMiB: number;
}

const MiB = 1 << 20;
/** Failures kept per target for the report: the rest are counted. */
const KEEP = 20;

function runTarget(target: FuzzTarget, index: number): TargetReport {
  const report: TargetReport = { name: target.name, cases: 0, failureCount: 0, failures: [], slowestMs: 0, slowestCase: -1, seconds: 0, rssStartMiB: process.memoryUsage.rss() / MiB, rssPeakMiB: 0 };
  const started = performance.now();
  Atomics.store(progress, 0, index);
  for (let i = 0; i < cases; i++) {
    Atomics.store(progress, 1, i);
    Atomics.add(progress, HEARTBEAT, 1);
    const r = runCase(target, seed, i, deadlineMs);
    report.cases++;
    if (r.ms > report.slowestMs) {
      report.slowestMs = r.ms;
      report.slowestCase = i;
    }
    if (r.failure) {
      report.failureCount++;
      if (report.failures.length < KEEP) report.failures.push({ caseIndex: i, failure: r.failure.split('\n')[0]! });
    }
    // RSS every 256 cases: often enough to see growth, rare enough to cost nothing.
    if ((i & 255) === 0) report.rssPeakMiB = Math.max(report.rssPeakMiB, process.memoryUsage.rss() / MiB);
    if (i > 0 && i % Math.max(1, Math.floor(cases / 10)) === 0) {
      process.stderr.write(`${target.name}: ${i}/${cases}, ${report.failureCount} failures, ${((performance.now() - started) / 1000).toFixed(1)} s\n`);
    }
  }
  report.rssPeakMiB = Math.max(report.rssPeakMiB, process.memoryUsage.rss() / MiB);
  report.seconds = (performance.now() - started) / 1000;
  return report;
}

function markdown(reports: readonly TargetReport[], totalSeconds: number): string {
  const lines = [
    '# bench/fuzz',
    '',
    `${new Date().toISOString()}, node ${process.version}, seed ${seed}, ${cases} cases per target, deadline ${deadlineMs} ms per case, ${totalSeconds.toFixed(0)} s in all.`,
    'A failure is an undocumented error escaping, a broken invariant (status register, bounded output, a host write outside what the guest allowed) or a case past its deadline.',
    '',
    '| target | cases | failures | slowest case (ms) | mean (µs/case) | time (s) | RSS at start (MiB) | peak RSS (MiB) |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...reports.map((r) => `| ${r.name} | ${r.cases} | ${r.failureCount} | ${r.slowestMs.toFixed(1)} (case ${r.slowestCase}) | ${((r.seconds * 1e6) / r.cases).toFixed(0)} | ${r.seconds.toFixed(1)} | ${r.rssStartMiB.toFixed(0)} | ${r.rssPeakMiB.toFixed(0)} |`),
  ];
  const withFailures = reports.filter((r) => r.failures.length > 0);
  if (withFailures.length > 0) {
    lines.push('', '## Failures', '', 'Replay one with `runCase(target, seed, caseIndex, deadlineMs)` from test/fuzz/targets.ts.', '');
    for (const r of withFailures) {
      for (const f of r.failures) lines.push(`- ${r.name} case ${f.caseIndex}: ${f.failure}`);
      if (r.failureCount > r.failures.length) lines.push(`- ${r.name}: and ${r.failureCount - r.failures.length} more`);
    }
  }
  return lines.join('\n') + '\n';
}

startWatchdog();
const started = performance.now();
const reports = chosen.map((t, i) => runTarget(t, i));
const md = markdown(reports, (performance.now() - started) / 1000);
await mkdir(RESULTS_DIR, { recursive: true });
await writeFile(join(RESULTS_DIR, 'fuzz.md'), md);
process.stdout.write(md);
process.exitCode = reports.some((r) => r.failureCount > 0) ? 1 : 0;
