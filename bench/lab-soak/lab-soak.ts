/**
 * bench/lab-soak: how often the nested lab itself fails under pod load, for
 * one combination of lab settings. One L1 runs N pods one after another and
 * M pairs at once (`vmctr run --rm default -- true`), optionally while K
 * busy-loop processes load the host's cores; a lab fault is counted, its
 * console kept, and a fresh L1 carries on. A pod that fails without a lab
 * fault is vmctr's or L2's failure and counted apart.
 *
 *   npm run bench:lab-soak -- [--sequential 100] [--pairs 20] [--busy 2] [--settings tcg=single,...]
 *   npm run bench:lab-soak -- --starts 20 --settings 'tcg=multi;tcg=single'
 *       (the hazard per L1: each round starts a fresh L1 per settings, in
 *       turn, runs one pod in it and stops it; one row per settings)
 *   npm run bench:lab-soak -- --report      # the table and plot of every recorded run
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { appendFile, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { median, plotRounds, RESULTS_DIR } from '../report.js';
import { repoRoot } from '../../test/lab/exec.js';
import { LabFault } from '../../test/lab/lab-fault.js';
import { describeLabSettings, parseLabSettings } from '../../test/lab/lab-settings.js';
import { Lab } from '../../test/lab/lab.js';

interface SoakResult {
  date: string;
  settings: string;
  busy: number;
  sequential: number;
  pairs: number;
  /** In --starts mode: fresh L1s started, each running one pod. */
  starts?: number;
  /** Pod runs that completed with exit 0. */
  podsOk: number;
  /** Pod runs that failed while L1 stayed healthy (vmctr's or L2's failure). */
  podFailures: string[];
  faults: Array<{ kind: string; consoleLog: string; during: string }>;
  wallSeconds: number;
  /** Seconds per sequential pod run, in order. */
  podSeconds: number[];
  /** Stopped by SIGINT before all runs: podsOk and podSeconds say how far it got. */
  interrupted?: boolean;
}

const RESULTS = join(RESULTS_DIR, 'lab-soak.jsonl');
const POD_TIMEOUT_MS = 300_000;
/** The soak's vmctr state, inside L1 (its /tmp writes stay there). */
const POD_ROOT = `/tmp/vmctr-soak-${process.pid}`;

const { values } = parseArgs({
  options: {
    sequential: { type: 'string', default: '100' },
    pairs: { type: 'string', default: '20' },
    busy: { type: 'string', default: '2' },
    settings: { type: 'string', default: '' },
    starts: { type: 'string' },
    report: { type: 'boolean', default: false },
  },
});

if (values.report) {
  await report();
} else if (values.starts !== undefined) {
  const results = await starts(Number(values.starts), Number(values.busy), values.settings.split(';').map((text) => parseLabSettings(text)));
  for (const result of results) {
    await appendFile(RESULTS, `${JSON.stringify(result)}\n`);
    console.log(row(result));
  }
} else {
  const settings = parseLabSettings(values.settings);
  const result = await soak(Number(values.sequential), Number(values.pairs), Number(values.busy), settings);
  await appendFile(RESULTS, `${JSON.stringify(result)}\n`);
  console.log(row(result));
}

async function soak(sequential: number, pairs: number, busy: number, settings: ReturnType<typeof parseLabSettings>): Promise<SoakResult> {
  const result: SoakResult = {
    date: new Date().toISOString(), settings: describeLabSettings(settings), busy, sequential, pairs,
    podsOk: 0, podFailures: [], faults: [], wallSeconds: 0, podSeconds: [],
  };
  const started = Date.now();
  const loaders = Array.from({ length: busy }, () => busyLoop());
  // Ctrl-C ends the soak early and still records what ran, marked as cut short.
  let stop = false;
  process.once('SIGINT', () => {
    stop = true;
    result.interrupted = true;
    progress('interrupted: finishing the pod runs under way, then recording what ran');
  });
  let lab = await Lab.start({ settings });
  progress(`L1 up in ${(lab.bootMs / 1000).toFixed(1)} s, settings: ${result.settings}, ${busy} busy host processes`);

  /** One pod run, its outcome counted; a lab fault leaves `lab` to be replaced by healthy(). */
  const pod = (during: string): Promise<void> => runPod(lab, result, during, during.startsWith('sequential'));
  const healthy = async (): Promise<void> => {
    if (!lab.fault) return;
    await lab.stop();
    lab = await startAfterFault(settings, result);
  };

  try {
    for (let i = 1; i <= sequential && !stop; i++) {
      await healthy();
      await pod(`sequential ${i}`);
      if (i % 10 === 0) progress(`${i}/${sequential} sequential, ${result.faults.length} lab faults, ${result.podFailures.length} pod failures`);
    }
    for (let i = 1; i <= pairs && !stop; i++) {
      await healthy();
      await Promise.all([pod(`pair ${i}a`), pod(`pair ${i}b`)]);
      if (i % 5 === 0) progress(`${i}/${pairs} pairs, ${result.faults.length} lab faults, ${result.podFailures.length} pod failures`);
    }
  } finally {
    await lab.stop();
    for (const loader of loaders) loader.kill('SIGKILL');
  }
  result.wallSeconds = Math.round((Date.now() - started) / 1000);
  return result;
}

/**
 * Runs `vmctr run --rm default -- true` in `lab` and counts the outcome in
 * `result`: ok, a pod failure (L1 healthy), or a lab fault (each L1's once).
 * `timed`: the run's seconds go into podSeconds when it completed.
 */
async function runPod(lab: Lab, result: SoakResult, during: string, timed: boolean): Promise<void> {
  const at = Date.now();
  try {
    const r = await lab.exec([join(repoRoot, 'bin/vmctr'), 'run', '--rm', 'default', '--', 'true'], { cwd: repoRoot, env: { VMCTR_ROOT: POD_ROOT }, timeoutMs: POD_TIMEOUT_MS });
    if (r.code === 0) result.podsOk++;
    else result.podFailures.push(`${during}: exit ${r.code ?? r.signal}: ${r.stderr.toString().trim().split('\n').at(-1) ?? ''}`);
    if (timed) result.podSeconds.push((Date.now() - at) / 1000);
  } catch (err) {
    const fault = lab.fault;
    if (!fault) {
      result.podFailures.push(`${during}: ${(err as Error).message.split('\n')[0]}`);
      return;
    }
    if (!result.faults.some((f) => f.consoleLog === fault.consoleLog)) {
      result.faults.push({ kind: fault.kind, consoleLog: fault.consoleLog, during });
      progress(`LAB FAULT (${result.settings}) during ${during}: ${fault.message.split('\n')[0]}`);
    }
  }
}

/** Rounds of: per settings in turn, a fresh L1, one pod in it, stop. Faults while booting count too. */
async function starts(rounds: number, busy: number, configs: Array<ReturnType<typeof parseLabSettings>>): Promise<SoakResult[]> {
  const results = configs.map((settings): SoakResult => ({
    date: new Date().toISOString(), settings: describeLabSettings(settings), busy, sequential: 0, pairs: 0, starts: 0,
    podsOk: 0, podFailures: [], faults: [], wallSeconds: 0, podSeconds: [],
  }));
  const loaders = Array.from({ length: busy }, () => busyLoop());
  let stop = false;
  process.once('SIGINT', () => {
    stop = true;
    for (const result of results) result.interrupted = true;
  });
  try {
    for (let round = 1; round <= rounds && !stop; round++) {
      for (const [i, settings] of configs.entries()) {
        const result = results[i]!;
        const started = Date.now();
        result.starts = round;
        let lab: Lab;
        try {
          lab = await Lab.start({ settings });
        } catch (err) {
          if (!(err instanceof LabFault)) throw err;
          result.faults.push({ kind: err.kind, consoleLog: err.consoleLog, during: `L1 boot ${round}` });
          progress(`LAB FAULT (${result.settings}) during L1 boot ${round}: ${err.message.split('\n')[0]}`);
          result.wallSeconds += (Date.now() - started) / 1000;
          continue;
        }
        try {
          await runPod(lab, result, `start ${round}`, true);
        } finally {
          await lab.stop();
        }
        result.wallSeconds += (Date.now() - started) / 1000;
      }
      progress(`round ${round}/${rounds}: ${results.map((r) => `${r.settings}: ${r.faults.length} faults in ${r.starts} L1s`).join('; ')}`);
    }
  } finally {
    for (const loader of loaders) loader.kill('SIGKILL');
  }
  for (const result of results) result.wallSeconds = Math.round(result.wallSeconds);
  return results;
}

/** A fresh L1 after a fault; one that faults while booting is counted too. */
async function startAfterFault(settings: ReturnType<typeof parseLabSettings>, result: SoakResult): Promise<Lab> {
  for (;;) {
    try {
      return await Lab.start({ settings });
    } catch (err) {
      if (!(err instanceof LabFault)) throw err;
      result.faults.push({ kind: err.kind, consoleLog: err.consoleLog, during: 'L1 boot' });
      progress(`LAB FAULT during L1 boot: ${err.message.split('\n')[0]}`);
    }
  }
}

/** A host process that keeps one core busy (the soak's "host under load"). */
function busyLoop(): ChildProcess {
  const child = spawn(process.execPath, ['-e', 'for (;;) {}'], { stdio: 'ignore' });
  child.unref();
  return child;
}

function progress(line: string): void {
  process.stderr.write(`[lab-soak] ${line}\n`);
}

function row(r: SoakResult): string {
  const kinds = r.faults.length ? ` (${r.faults.map((f) => f.kind).join(', ')})` : '';
  const planned = r.starts !== undefined ? `${r.starts} fresh L1s × 1 pod` : `${r.sequential} + ${r.pairs}×2`;
  const pods = r.interrupted ? `${r.podsOk + r.podFailures.length} of ${planned} (stopped early)` : planned;
  return `| ${r.date.slice(0, 10)} | ${r.settings} | ${r.busy} | ${pods} | ${r.podsOk} | ${r.faults.length}${kinds} | ${r.podFailures.length} | ${(r.wallSeconds / 60).toFixed(1)} | ${median(r.podSeconds).toFixed(1)} |`;
}

async function report(): Promise<void> {
  const results = (await readFile(RESULTS, 'utf8')).trim().split('\n').map((line) => JSON.parse(line) as SoakResult);
  console.log('| date | settings | busy host processes | pod runs (sequential + pairs) | ok | lab faults | pod failures | wall time (min) | median pod run (s) |');
  console.log('| --- | --- | ---: | --- | ---: | --- | ---: | ---: | ---: |');
  for (const r of results) console.log(row(r));
  await plotRounds(join(RESULTS_DIR, 'lab-soak.png'), 'bench/lab-soak: each sequential vmctr run --rm default -- true in the lab', 'seconds',
    results.map((r, i) => ({ name: `${i + 1}: ${r.settings}, busy ${r.busy}`, values: r.podSeconds })));
}
