// Boot time of `vmctr boot` against QEMU's microvm machine, same kernel,
// same initramfs, same memory and CPU count, alternating in one run:
// time from process start to the first line printed by guest userspace,
// and to the process's exit after the guest reboots.
//
//   npm run bench:boot [-- --rounds N]
//
// On a host without VT-x/AMD-V the measurements run inside the nested
// lab (and the report says so); the table and plot are written here.
import { execFileSync, spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { checkHostSupport } from '../../vmm/kvm/host-support.js';
import { repoRoot } from '../../test/lab/exec.js';
import { Lab } from '../../test/lab/lab.js';
import { RESULTS_DIR, median, plotRounds, roundsTable, type Series } from '../report.js';

const USERSPACE_LINE = 'vmctr demo guest: userspace is up';
/** A boot that has not ended by then is a failure, not a data point. */
const RUN_TIMEOUT_MS = 300_000;

interface Sample { userspaceMs: number; exitMs: number }
interface Runner { name: string; argv: string[] }
interface Measurement { where: string; runners: string[]; samples: Record<string, Sample[]>; versions: Record<string, string> }

function artifact(script: string): string {
  return execFileSync(join(repoRoot, script), ['--path'], { encoding: 'utf8' }).trim().split('\n').pop()!;
}

function runners(kernel: string, initrd: string): Runner[] {
  // microvm has no i8042: its guests reset by triple fault.
  const params = 'reboot=t panic=-1 quiet';
  return [
    { name: 'vmctr boot', argv: [join(repoRoot, 'bin/vmctr'), 'boot', '--kernel', kernel, '--initrd', initrd, '--memory', '256', '--cmdline', 'quiet'] },
    { name: 'vmctr boot --console serial', argv: [join(repoRoot, 'bin/vmctr'), 'boot', '--kernel', kernel, '--initrd', initrd, '--memory', '256', '--console', 'serial', '--cmdline', 'quiet'] },
    {
      name: 'qemu -M microvm',
      argv: ['qemu-system-x86_64', '-M', 'microvm,x-option-roms=off,rtc=off,isa-serial=on', '-enable-kvm', '-cpu', 'host', '-smp', '1', '-m', '256',
        '-nodefaults', '-no-user-config', '-nographic', '-serial', 'stdio', '-no-reboot', '-kernel', kernel, '-initrd', initrd, '-append', `console=ttyS0 ${params}`],
    },
  ];
}

/** Starts argv, timing the first userspace line on stdout and the exit. */
function measureOnce(r: Runner): Promise<Sample> {
  return new Promise((resolve, reject) => {
    const start = performance.now();
    let userspaceMs = NaN;
    let out = '';
    const child = spawn(r.argv[0]!, r.argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], timeout: RUN_TIMEOUT_MS, killSignal: 'SIGKILL' });
    child.stdout.on('data', (chunk: Buffer) => {
      if (!Number.isNaN(userspaceMs)) return;
      out += chunk.toString();
      if (out.includes(USERSPACE_LINE)) userspaceMs = performance.now() - start;
    });
    let err = '';
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      const exitMs = performance.now() - start;
      if (code !== 0 || Number.isNaN(userspaceMs)) reject(new Error(`${r.name} failed (exit ${code}): ${err.trim() || out.slice(-300)}`));
      else resolve({ userspaceMs, exitMs });
    });
  });
}

/** The measuring half: runs here, on a host with real KVM. Prints JSON. */
async function measure(rounds: number): Promise<Measurement> {
  const rs = runners(artifact('kernel-config/build-kernel.sh'), artifact('setup/build-demo-initramfs.sh'));
  const samples: Record<string, Sample[]> = Object.fromEntries(rs.map((r) => [r.name, []]));
  // One warm-up of each (page cache), then rounds in alternating order.
  for (const r of rs) await measureOnce(r);
  for (let i = 0; i < rounds; i++) {
    const order = i % 2 === 0 ? rs : [...rs].reverse();
    for (const r of order) samples[r.name]!.push(await measureOnce(r));
  }
  const qemu = execFileSync('qemu-system-x86_64', ['--version'], { encoding: 'utf8' }).split('\n')[0]!;
  return { where: '', runners: rs.map((r) => r.name), samples, versions: { node: process.version, qemu, kernel: execFileSync('uname', ['-r'], { encoding: 'utf8' }).trim() } };
}

async function report(m: Measurement, rounds: number): Promise<void> {
  const series = (key: keyof Sample): Series[] => m.runners.map((n) => ({ name: n, values: m.samples[n]!.map((s) => s[key] / 1000) }));
  const peer = 'qemu -M microvm';
  const ratio = (key: keyof Sample, name: string) => median(m.samples[name]!.map((s) => s[key])) / median(m.samples[peer]!.map((s) => s[key]));
  const md = [
    '# Boot time: vmctr against QEMU microvm',
    '',
    `Same guest kernel (kernel-config/, PVH vmlinux) and demo initramfs, 1 vCPU, 256 MiB, \`quiet\`; ${rounds} rounds after one warm-up, alternating order.`,
    `Measured ${m.where}. Versions: Node ${m.versions.node}; ${m.versions.qemu}; host kernel ${m.versions.kernel}.`,
    '',
    '## Process start to the first line printed by guest userspace',
    '',
    roundsTable(series('userspaceMs'), 's'),
    '',
    '## Process start to exit (the guest reboots)',
    '',
    roundsTable(series('exitMs'), 's'),
    '',
    '## Ratios (medians, vmctr / QEMU microvm; below 1 is faster)',
    '',
    '| runner | to userspace | to exit |',
    '| --- | ---: | ---: |',
    ...m.runners.filter((n) => n !== peer).map((n) => `| ${n} | ${ratio('userspaceMs', n).toFixed(2)} | ${ratio('exitMs', n).toFixed(2)} |`),
    '',
  ].join('\n');
  await writeFile(join(RESULTS_DIR, 'boot.md'), md);
  await writeFile(join(RESULTS_DIR, 'boot.json'), JSON.stringify(m, null, 2));
  await plotRounds(join(RESULTS_DIR, 'boot.png'), `Boot to guest userspace (${m.where})`, 'seconds', series('userspaceMs'));
  process.stdout.write(md);
}

const { values } = parseArgs({ options: { rounds: { type: 'string', default: '7' }, measure: { type: 'boolean', default: false } } });
const rounds = Number(values.rounds);
if (values.measure) {
  process.stdout.write(JSON.stringify(await measure(rounds)));
} else if (checkHostSupport().ok) {
  await report({ ...(await measure(rounds)), where: 'natively on this host (hardware virtualization)' }, rounds);
} else {
  process.stderr.write('bench/boot: this host has no VT-x/AMD-V: measuring inside the nested lab (QEMU TCG with emulated SVM; absolute times are slow, the ratio is what compares)\n');
  const lab = await Lab.start();
  try {
    const r = await lab.exec(['node', join(repoRoot, 'dist/bench/boot/boot-bench.js'), '--measure', '--rounds', String(rounds)], { cwd: repoRoot, timeoutMs: 3_600_000 });
    if (r.code !== 0) throw new Error(`measurement failed in the lab: ${r.stderr.toString().trim()}`);
    const m = JSON.parse(r.stdout.toString()) as Measurement;
    await report({ ...m, where: `inside the nested lab (L1 ${lab.kernel} under QEMU TCG with emulated AMD SVM, on a 2-core PVM host)` }, rounds);
  } finally {
    await lab.stop();
  }
}
