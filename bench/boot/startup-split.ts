// Where `vmctr boot`'s time goes (dev tool, not a benchmark of record):
// Node's own start, the CLI's start, the import time of each module group,
// process start to Vm.run, the guest's uptime when userspace speaks, and
// the VM exits handled in JavaScript during a boot (boot-trace.ts). And
// what `vmctr run --rm default -- true` does before the guest runs: the
// same preload with the pod's marks (run-trace.ts) gives process start to
// the VMM loaded, to the pod's directory claimed, to Pod.start, to
// Vm.create (where the kernel is read into guest memory) and to Vm.run,
// which starts the vCPU threads and so the first KVM_RUN; bin/vmctr
// (bundled) is timed from outside. Each --repo (a built checkout; default this one) is measured in
// turn in every round, so a before/after comparison alternates.
//
//   npm run lab -- node dist/bench/boot/startup-split.js [--rounds N] [--no-startup] [--no-boot] [--no-run] [--repo DIR]...
//
// Prints a markdown report. Run it where guests boot (natively with VT-x/
// AMD-V, else inside the lab); the first round of each item warms caches
// (page cache, V8's compile cache, vmctr's oclif manifest) and is left out.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { pathToFileURL } from 'node:url';
import { cacheDir } from '../../cli/cache-dir.js';
import { repoRoot } from '../../test/lab/exec.js';
import { median } from '../report.js';

const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '3' },
    'no-startup': { type: 'boolean', default: false },
    'no-boot': { type: 'boolean', default: false },
    'no-run': { type: 'boolean', default: false },
    repo: { type: 'string', multiple: true, default: [repoRoot] },
  },
});
const rounds = Number(values.rounds);
const node = process.execPath;
const dist = (p: string) => join(repoRoot, 'dist', p);

function timed(argv: string[], env: NodeJS.ProcessEnv = {}, cwd = repoRoot): { ms: number; stdout: string; stderr: string } {
  const t = performance.now();
  const r = spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8', cwd, env: { ...process.env, ...env }, timeout: 600_000 });
  const ms = performance.now() - t;
  if (r.status !== 0) throw new Error(`${argv.join(' ')} failed (${r.status}): ${r.stderr}`);
  return { ms, stdout: r.stdout, stderr: r.stderr };
}

function repeat<T>(f: () => T): T[] {
  f();
  return Array.from({ length: rounds }, f);
}

/** A cached artifact's path, from its build script. */
const artifact = (script: string) => timed([join(repoRoot, script), '--path']).stdout.trim().split('\n').pop()!;

const fmt = (ms: number) => (ms / 1000).toFixed(2);
const lines: string[] = ['| what | median (s) | rounds (s) |', '| --- | ---: | --- |'];
const row = (what: string, ms: number[]) => lines.push(`| ${what} | ${fmt(median(ms))} | ${ms.map(fmt).join(' ')} |`);

if (!values['no-startup']) {
  row('`node -e 0`', repeat(() => timed([node, '-e', '0']).ms));
  row('`node dist/cli/main.js --version`', repeat(() => timed([node, dist('cli/main.js'), '--version']).ms));
  row('`bin/vmctr --version`', repeat(() => timed([join(repoRoot, 'bin/vmctr'), '--version']).ms));
  // The fast path of `vmctr boot` up to opening the kernel, unbundled and as bin/vmctr runs it (bundled).
  const missingKernel = (argv: string[]) => {
    const t = performance.now();
    spawnSync(argv[0]!, [...argv.slice(1), 'boot', '--kernel', '/nonexistent'], { cwd: repoRoot });
    return performance.now() - t;
  };
  row('`node dist/cli/main.js boot --kernel /nonexistent`', repeat(() => missingKernel([node, dist('cli/main.js')])));
  row('`bin/vmctr boot --kernel /nonexistent` (dist/cli/vmctr.js, bundled)', repeat(() => missingKernel([join(repoRoot, 'bin/vmctr')])));
  row('`vmctr boot --help`', repeat(() => timed([node, dist('cli/main.js'), 'boot', '--help']).ms));

  // Import time of each group, each in a fresh process (shared dependencies
  // count in each), with the compile cache and environment cli/main.ts sets.
  const asMain = { NODE_COMPILE_CACHE: join(cacheDir(), 'node-compile-cache'), OCLIF_DISABLE_ENGINE_WARNING: '1' };
  const groups: [string, string][] = [
    ['@oclif/core', '@oclif/core'],
    ['native addon (vmm/kvm/native.js)', pathToFileURL(dist('vmm/kvm/native.js')).href],
    ['vmm (vmm/vm.js, with the addon)', pathToFileURL(dist('vmm/vm.js')).href],
    ['image side (cli/commands/pull.js)', pathToFileURL(dist('cli/commands/pull.js')).href],
    ['cli/commands/boot.js (oclif + vmm)', pathToFileURL(dist('cli/commands/boot.js')).href],
    ['cli/boot-command.js (vmm, the fast path of vmctr boot)', pathToFileURL(dist('cli/boot-command.js')).href],
    ['cli/run-command.js (vmm, pod, agent client: the fast path of vmctr run)', pathToFileURL(dist('cli/run-command.js')).href],
  ];
  for (const [name, spec] of groups) {
    const script = `const t = performance.now(); await import(${JSON.stringify(spec)}); console.log(performance.now() - t);`;
    row(`import ${name}`, repeat(() => Number(timed([node, '--input-type=module', '-e', script], asMain).stdout.trim())));
  }

  // What finding the default kernel and initramfs costs when their inputs changed (else the answer is remembered: cli/artifact-lookup.ts).
  row('`build-kernel.sh --path` (vmctr boot without --kernel, once per change of its inputs)', repeat(() => timed([join(repoRoot, 'kernel-config/build-kernel.sh'), '--path']).ms));
  row('`build-demo-initramfs.sh --path` (likewise)', repeat(() => timed([join(repoRoot, 'setup/build-demo-initramfs.sh'), '--path']).ms));
}

if (!values['no-boot']) {
  // As bench/boot runs it: kernel and initrd given.
  const files = ['--kernel', artifact('kernel-config/build-kernel.sh'), '--initrd', artifact('setup/build-demo-initramfs.sh')];
  const boots = repeat(() => {
    const r = timed([node, '--import', pathToFileURL(dist('bench/boot/boot-trace.js')).href, dist('cli/main.js'), 'boot', ...files, '--cmdline', 'quiet vmctr_exec="cat /proc/uptime; busybox dmesg"']);
    const trace = JSON.parse(r.stderr.split('\n').find((l) => l.startsWith('boot-trace: '))!.slice('boot-trace: '.length));
    const uptime = Number(/userspace is up[^\n]*\n([\d.]+) /.exec(r.stdout)?.[1]) * 1000;
    return { ms: r.ms, trace, uptime, stdout: r.stdout };
  });
  row('`vmctr boot --kernel --initrd` (exec uptime + dmesg), process start to exit', boots.map((b) => b.ms));
  row('process start to the VMM loaded (preload)', boots.map((b) => b.trace.marks.traceLoaded));
  row('process start to kernel and initrd opened, ELF headers read (first Vm.plan)', boots.map((b) => b.trace.marks.firstPlan));
  row('Vm.create (kernel segments and initrd read into guest memory included)', boots.map((b) => b.trace.marks.createEnd - b.trace.marks.createStart));
  row('process start to Vm.run', boots.map((b) => b.trace.runAtMs));
  row('Vm.run to the first console output', boots.map((b) => b.trace.marks.firstConsole - b.trace.runAtMs));
  row('Vm.run to the userspace line', boots.map((b) => b.trace.marks.userspaceLine - b.trace.runAtMs));
  row('guest uptime after the userspace line', boots.map((b) => b.uptime));
  row('Vm.run to the VM\'s end', boots.map((b) => b.trace.endAtMs - b.trace.runAtMs));
  row('exits handled in JS (count, not s)', boots.map((b) => b.trace.exitCount * 1000));
  const last = boots.at(-1)!;
  lines.push('', 'Exits of the last boot, by kind:', '', '```', ...Object.entries(last.trace.exits as Record<string, number>).map(([k, n]) => `${String(n).padStart(7)} ${k}`), '```');
  lines.push('', `Exits per second of Vm.run: ${(last.trace.perSecond as number[]).join(' ')}`);
  lines.push('', 'First exit of each kind, ms after Vm.run (against the guest log\'s uptimes):', '', '```', ...Object.entries(last.trace.firstAt as Record<string, number>).sort((a, b) => a[1] - b[1]).map(([k, ms]) => `${String(ms).padStart(7)} ${k}`), '```');
  lines.push('', 'Guest log of the last boot:', '', '```', last.stdout.trim(), '```');
}
if (!values['no-run']) {
  // As a user runs it, and traced (unbundled, like the boot rows above); each repo in turn within a round.
  const repos = values.repo;
  const runArgv = ['run', '--rm', 'default', '--', 'true'];
  type RunSample = { bundled: number; traced: number; trace: { marks: Record<string, number>; runAtMs: number; endAtMs: number } };
  const samples = repeat(() => repos.map((repo): RunSample => {
    const bundled = timed([join(repo, 'bin/vmctr'), ...runArgv], {}, repo).ms;
    const r = timed([node, '--import', pathToFileURL(join(repo, 'dist/bench/boot/run-trace.js')).href, join(repo, 'dist/cli/main.js'), ...runArgv], {}, repo);
    const trace = JSON.parse(r.stderr.split('\n').find((l) => l.startsWith('boot-trace: '))!.slice('boot-trace: '.length));
    return { bundled, traced: r.ms, trace };
  }));
  repos.forEach((repo, i) => {
    const of = samples.map((round) => round[i]!);
    const label = repos.length > 1 ? ` [${repo}]` : '';
    row(`\`bin/vmctr run --rm default -- true\`, process start to exit${label}`, of.map((s) => s.bundled));
    row(`traced (\`node --import run-trace.js dist/cli/main.js run ...\`), process start to exit${label}`, of.map((s) => s.traced));
    row(`run: process start to the VMM loaded (preload)${label}`, of.map((s) => s.trace.marks.traceLoaded!));
    row(`run: process start to the pod's directory (kernel opened, agent image found, host checked)${label}`, of.map((s) => s.trace.marks.podDir!));
    row(`run: the pod's directory to Pod.start (root filesystem prepared)${label}`, of.map((s) => s.trace.marks.podStart! - s.trace.marks.podDir!));
    row(`run: Pod.start to Vm.create${label}`, of.map((s) => s.trace.marks.createStart! - s.trace.marks.podStart!));
    row(`run: Vm.create (kernel segments read into guest memory included)${label}`, of.map((s) => s.trace.marks.createEnd! - s.trace.marks.createStart!));
    row(`run: Vm.create's end to Vm.run${label}`, of.map((s) => s.trace.runAtMs - s.trace.marks.createEnd!));
    row(`run: process start to Vm.run (the first KVM_RUN)${label}`, of.map((s) => s.trace.runAtMs));
    row(`run: Vm.run to the VM's end${label}`, of.map((s) => s.trace.endAtMs - s.trace.runAtMs));
  });
}
process.stdout.write(lines.join('\n') + '\n');
