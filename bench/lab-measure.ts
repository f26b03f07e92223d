// A benchmark's measuring half run inside the nested lab, on a host without
// VT-x/AMD-V: the bench script again with `--measure`, its progress on
// stderr passed through, its measurement read as JSON from its stdout. The
// report is written out here (the lab's view of the host is read-only).
import { join } from 'node:path';
import { finished } from 'node:stream/promises';
import { repoRoot } from '../test/lab/exec.js';
import { Lab } from '../test/lab/lab.js';

/** A measurement that has not ended by then is a failure. */
const MEASURE_TIMEOUT_MS = 3_600_000;

/** `script` (under dist/, e.g. `bench/run/run-bench.js`) run with `--measure` and `args` in a lab; its JSON and where it was measured. */
export async function measureInLab<T>(script: string, args: readonly string[]): Promise<{ measurement: T; where: string }> {
  const lab = await Lab.start();
  try {
    const proc = lab.spawn(['node', join(repoRoot, 'dist', script), '--measure', ...args], { cwd: repoRoot });
    proc.stdin.end();
    proc.stderr.pipe(process.stderr); // progress
    const out: Buffer[] = [];
    proc.stdout.on('data', (c: Buffer) => out.push(c));
    const timer = setTimeout(() => proc.kill('SIGKILL'), MEASURE_TIMEOUT_MS);
    const [exit] = await Promise.all([proc.exited, finished(proc.stdout)]);
    clearTimeout(timer);
    if (exit.code !== 0) throw new Error(`measurement failed in the lab (exit ${exit.code ?? exit.signal})`);
    return {
      measurement: JSON.parse(Buffer.concat(out).toString()) as T,
      where: `inside the nested lab (L1 ${lab.kernel} under QEMU TCG with emulated AMD SVM, 2 vCPUs, on a 2-core PVM host)`,
    };
  } finally {
    await lab.stop();
  }
}
