// `vmctr run` against the OCI runtimes runc and crun, on the same root
// filesystem (the built-in busybox `default` image), alternating in one run:
//
//   - latency: time from starting the command to the first byte of the
//     container's output, and to the command's exit, for `echo hi`; and to
//     the exit for `true`;
//   - memory per running pod: a long-lived container (`sleep 600`) is started
//     and, once it is up, the host processes that keep it running are read
//     from /proc: for vmctr the VMM process (`vmctr run`: guest RAM is a
//     shared memfd mapping of it, so its RSS counts the guest memory the guest
//     has touched), for runc/crun the runtime process still waiting in the
//     foreground plus every process in the container's cgroup; then the same
//     with several pods at once (once per run, after the rounds).
//
//   npm run bench:run [-- --rounds N] [--pods N] [--runtimes vmctr,runc,crun]
//
// runc and crun get an OCI bundle made with `runc spec`: the default image's
// ext4 dumped into a directory with debugfs, read-only root, no terminal.
// On a host without VT-x/AMD-V everything runs inside the nested lab (and the
// report says so); the table, plot and JSON are written here.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { finished } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { checkHostSupport } from '../../vmm/kvm/host-support.js';
import { repoRoot } from '../../test/lab/exec.js';
import { Lab } from '../../test/lab/lab.js';
import { RESULTS_DIR, median, plotRounds, roundsTable, type Series } from '../report.js';

/** A run that has not ended by then is a failure, not a data point. */
const RUN_TIMEOUT_MS = 300_000;
/** How long a long-lived container runs after it printed `up` before its memory is read. */
const SETTLE_MS = 3_000;
const UP = 'up\n';
const RUNTIMES = ['vmctr', 'runc', 'crun'] as const;
type Runtime = (typeof RUNTIMES)[number];

interface Latency { firstByteMs: number; exitMs: number }
/**
 * KiB per process. From /proc/PID/status: VmRSS and its RssAnon/RssFile/RssShmem
 * split, which kernels before 6.2 keep in per-thread caches synced every 64
 * page faults (SPLIT_RSS_COUNTING), so a small process can read low (4 kB for
 * a fresh `sleep`). From /proc/PID/smaps_rollup, a page-table walk: Rss, and
 * Pss with its anon/file/shmem split.
 */
interface ProcessMemory {
  pid: number; comm: string;
  vmRssKiB: number; anonKiB: number; fileKiB: number; shmemKiB: number;
  rssKiB: number; pssKiB: number; pssAnonKiB: number; pssFileKiB: number; pssShmemKiB: number;
}
interface Totals { rssKiB: number; vmRssKiB: number; pssKiB: number }
interface MemorySample extends Totals { processes: ProcessMemory[] }
interface MultiSample extends Totals { pods: number; processes: number }
interface Measurement {
  where: string;
  runtimes: Runtime[];
  echo: Record<string, Latency[]>;
  true: Record<string, number[]>;
  memory: Record<string, MemorySample[]>;
  multi: Record<string, MultiSample>;
  versions: Record<string, string>;
}

/** Where a runtime's pods live for this run: vmctr's state directory, the OCI bundles. */
interface Setup { work: string; vmctrRoot: string; rootfs: string; bundles: Record<'echo' | 'true' | 'sleep', string> }

function artifact(script: string): string {
  return execFileSync(join(repoRoot, script), ['--path'], { encoding: 'utf8' }).trim().split('\n').pop()!;
}

const COMMANDS = { echo: ['echo', 'hi'], true: ['true'], sleep: ['sh', '-c', 'echo up; exec sleep 600'] } as const;

/** The default image's files in a directory, and one OCI bundle per command over it. */
async function prepare(): Promise<Setup> {
  process.env.PATH = `${process.env.PATH}:/usr/sbin:/sbin`; // debugfs, runc
  const work = await mkdtemp(join(tmpdir(), 'vmctr-run-bench-'));
  const rootfs = join(work, 'rootfs');
  await mkdir(rootfs);
  execFileSync('debugfs', ['-R', `rdump / ${rootfs}`, artifact('setup/build-default-image.sh')], { stdio: ['ignore', 'ignore', 'pipe'] });
  await chmod(join(rootfs, 'tmp'), 0o1777); // rdump drops the sticky bit
  await rm(join(rootfs, 'lost+found'), { recursive: true, force: true });
  const bundles = {} as Setup['bundles'];
  for (const [name, args] of Object.entries(COMMANDS) as [keyof typeof COMMANDS, readonly string[]][]) {
    const bundle = join(work, `bundle-${name}`);
    await mkdir(bundle);
    execFileSync('runc', ['spec', '--bundle', bundle]);
    const spec = JSON.parse(readFileSync(join(bundle, 'config.json'), 'utf8'));
    spec.process.args = args;
    spec.process.terminal = false;
    spec.root = { path: rootfs, readonly: true };
    await writeFile(join(bundle, 'config.json'), JSON.stringify(spec, null, 2));
    bundles[name] = bundle;
  }
  const vmctrRoot = join(work, 'vmctr-root');
  return { work, vmctrRoot, rootfs, bundles };
}

let containers = 0;

/** Starts one container of `command`; `id` names it for runc and crun. */
function start(rt: Runtime, setup: Setup, command: keyof typeof COMMANDS): { child: ChildProcess; id: string } {
  const id = `vmctr-bench-${process.pid}-${containers++}`;
  const argv = rt === 'vmctr'
    ? [join(repoRoot, 'bin/vmctr'), 'run', '--rm', 'default', '--', ...COMMANDS[command]]
    : [rt, 'run', '--bundle', setup.bundles[command], id];
  const child = spawn(argv[0]!, argv.slice(1), {
    stdio: ['ignore', 'pipe', 'pipe'],
    timeout: RUN_TIMEOUT_MS,
    killSignal: 'SIGKILL',
    env: { ...process.env, VMCTR_ROOT: setup.vmctrRoot },
  });
  return { child, id };
}

/** Resolves with the stdout, stderr and status of a child once it closed. */
function closed(child: ChildProcess): Promise<{ out: string; err: string; code: number | null; signal: NodeJS.Signals | null }> {
  let out = '';
  let err = '';
  child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (err += c.toString()));
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ out, err, code, signal }));
  });
}

/** Runc and crun keep a stopped container's state when something went wrong: delete it. */
function cleanUp(rt: Runtime, id: string): void {
  if (rt !== 'vmctr') {
    try {
      execFileSync(rt, ['delete', '--force', id], { stdio: 'ignore' });
    } catch { /* already gone, as it should be */ }
  }
}

/** Time to the first byte on stdout and to the exit; the output must be `expected`. */
async function latency(rt: Runtime, setup: Setup, command: 'echo' | 'true', expected: string): Promise<Latency> {
  const started = performance.now();
  const { child, id } = start(rt, setup, command);
  let firstByteMs = NaN;
  child.stdout!.once('data', () => (firstByteMs = performance.now() - started));
  const r = await closed(child);
  const exitMs = performance.now() - started;
  cleanUp(rt, id);
  if (r.code !== 0 || r.out !== expected) {
    throw new Error(`${rt} ${COMMANDS[command].join(' ')} failed (exit ${r.code ?? r.signal}, stdout ${JSON.stringify(r.out)}): ${r.err.trim()}`);
  }
  return { firstByteMs, exitMs };
}

function status(pid: number): Record<string, string> {
  const fields: Record<string, string> = {};
  for (const line of readFileSync(`/proc/${pid}/status`, 'utf8').split('\n')) {
    const i = line.indexOf(':');
    if (i > 0) fields[line.slice(0, i)] = line.slice(i + 1).trim();
  }
  return fields;
}

const kib = (value: string | undefined) => (value === undefined ? 0 : parseInt(value, 10));

function processMemory(pid: number): ProcessMemory {
  const s = status(pid);
  const rollup = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
  const field = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB$`, 'm').exec(rollup)?.[1] ?? NaN);
  return {
    pid,
    comm: s.Name ?? '?',
    vmRssKiB: kib(s.VmRSS),
    anonKiB: kib(s.RssAnon),
    fileKiB: kib(s.RssFile),
    shmemKiB: kib(s.RssShmem),
    rssKiB: field('Rss'),
    pssKiB: field('Pss'),
    pssAnonKiB: field('Pss_Anon'),
    pssFileKiB: field('Pss_File'),
    pssShmemKiB: field('Pss_Shmem'),
  };
}

/** `pid` and every process below it. */
function tree(pid: number): number[] {
  const children: number[] = [];
  for (const task of readdirSync(`/proc/${pid}/task`)) {
    const text = readFileSync(`/proc/${pid}/task/${task}/children`, 'utf8').trim();
    if (text) children.push(...text.split(/\s+/).map(Number));
  }
  return [pid, ...children.flatMap(tree)];
}

/** The processes in the cgroup of a runc/crun container (its init's, from `<rt> state`). */
function containerProcesses(rt: Runtime, id: string): number[] {
  const state = JSON.parse(execFileSync(rt, ['state', id], { encoding: 'utf8' })) as { pid: number };
  const cgroup = /^0::(.*)$/m.exec(readFileSync(`/proc/${state.pid}/cgroup`, 'utf8'))?.[1];
  // cgroup v2 at /sys/fs/cgroup (the lab), or the hybrid layout's unified hierarchy.
  for (const mount of ['/sys/fs/cgroup', '/sys/fs/cgroup/unified']) {
    if (cgroup && existsSync(join(mount, cgroup, 'cgroup.procs'))) {
      return readFileSync(join(mount, cgroup, 'cgroup.procs'), 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
    }
  }
  return [state.pid];
}

interface Running { rt: Runtime; child: ChildProcess; id: string; done: ReturnType<typeof closed> }

/** Starts `sleep 600` and resolves once the container printed `up`. */
async function startLongLived(rt: Runtime, setup: Setup): Promise<Running> {
  const { child, id } = start(rt, setup, 'sleep');
  const done = closed(child);
  let out = '';
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
      if (out === UP) resolve();
    });
    done.then((r) => reject(new Error(`${rt} sleep ended before it was up (exit ${r.code ?? r.signal}): ${r.err.trim()}`)), reject);
  });
  return { rt, child, id, done };
}

/** What keeps a pod running on the host: the VMM process, or the runtime process plus the container's cgroup. */
function podProcesses(p: Running): number[] {
  const pids = new Set(tree(p.child.pid!));
  if (p.rt !== 'vmctr') for (const pid of containerProcesses(p.rt, p.id)) pids.add(pid);
  return [...pids]; // the VMM or runtime process first
}

async function stopLongLived(p: Running): Promise<void> {
  // vmctr passes SIGTERM to the container; sleep is PID 1 of the runc/crun container, which only SIGKILL ends.
  if (p.rt === 'vmctr') p.child.kill('SIGTERM');
  else execFileSync(p.rt, ['kill', p.id, 'KILL']);
  await p.done;
  cleanUp(p.rt, p.id);
}

function sum(ps: ProcessMemory[]): MemorySample {
  const total = (key: keyof Totals) => ps.reduce((a, p) => a + p[key], 0);
  return { rssKiB: total('rssKiB'), vmRssKiB: total('vmRssKiB'), pssKiB: total('pssKiB'), processes: ps };
}

async function memory(rt: Runtime, setup: Setup): Promise<MemorySample> {
  const p = await startLongLived(rt, setup);
  try {
    await sleep(SETTLE_MS);
    return sum(podProcesses(p).map(processMemory));
  } finally {
    await stopLongLived(p);
  }
}

/** `pods` long-lived pods of one runtime, started one after the other, then read together. */
async function multi(rt: Runtime, setup: Setup, pods: number): Promise<MultiSample> {
  const running: Running[] = [];
  try {
    for (let i = 0; i < pods; i++) running.push(await startLongLived(rt, setup));
    await sleep(SETTLE_MS);
    const s = sum(running.flatMap(podProcesses).map(processMemory));
    return { pods, rssKiB: s.rssKiB, vmRssKiB: s.vmRssKiB, pssKiB: s.pssKiB, processes: s.processes.length };
  } finally {
    for (const p of running) await stopLongLived(p);
  }
}

function log(line: string): void {
  process.stderr.write(`[bench/run] ${line}\n`);
}

/** The measuring half: runs here, on a host with real KVM. */
async function measure(rounds: number, pods: number, runtimes: Runtime[]): Promise<Measurement> {
  const setup = await prepare();
  try {
    const m: Measurement = {
      where: '',
      runtimes,
      echo: Object.fromEntries(runtimes.map((r) => [r, []])),
      true: Object.fromEntries(runtimes.map((r) => [r, []])),
      memory: Object.fromEntries(runtimes.map((r) => [r, []])),
      multi: {},
      versions: {
        node: process.version,
        kernel: execFileSync('uname', ['-r'], { encoding: 'utf8' }).trim(),
        cgroup: execFileSync('stat', ['-f', '-c', '%T', '/sys/fs/cgroup'], { encoding: 'utf8' }).trim(),
        ...Object.fromEntries(runtimes.filter((r) => r !== 'vmctr').map((r) => [r, execFileSync(r, ['--version'], { encoding: 'utf8' }).split('\n')[0]!])),
      },
    };
    // One warm-up of each (page cache), then rounds in alternating order.
    for (const r of runtimes) log(`warm-up ${r}: ${((await latency(r, setup, 'echo', 'hi\n')).exitMs / 1000).toFixed(2)} s`);
    for (let i = 0; i < rounds; i++) {
      const order = i % 2 === 0 ? runtimes : [...runtimes].reverse();
      for (const r of order) m.echo[r]!.push(await latency(r, setup, 'echo', 'hi\n'));
      for (const r of order) m.true[r]!.push((await latency(r, setup, 'true', '')).exitMs);
      for (const r of order) m.memory[r]!.push(await memory(r, setup));
      log(`round ${i + 1}/${rounds}: ${order.map((r) => `${r} ${(m.echo[r]!.at(-1)!.exitMs / 1000).toFixed(2)} s, ${(m.memory[r]!.at(-1)!.rssKiB / 1024).toFixed(1)} MiB`).join('; ')}`);
    }
    if (pods > 1) {
      for (const r of runtimes) {
        m.multi[r] = await multi(r, setup, pods);
        log(`${pods} pods of ${r}: ${(m.multi[r]!.rssKiB / 1024).toFixed(1)} MiB`);
      }
    }
    return m;
  } finally {
    await rm(setup.work, { recursive: true, force: true });
  }
}

const mib = (kiB: number) => kiB / 1024;

async function report(m: Measurement, rounds: number, pods: number): Promise<void> {
  const rts = m.runtimes;
  const latencySeries = (key: keyof Latency): Series[] => rts.map((r) => ({ name: `${r}`, values: m.echo[r]!.map((s) => s[key] / 1000) }));
  const trueSeries: Series[] = rts.map((r) => ({ name: r, values: m.true[r]!.map((ms) => ms / 1000) }));
  const memorySeries = (key: keyof Totals): Series[] => rts.map((r) => ({ name: r, values: m.memory[r]!.map((s) => mib(s[key])) }));
  const vmm = (s: MemorySample) => s.processes[0]!;
  const peers = rts.filter((r) => r !== 'vmctr');
  const med = {
    firstByte: (r: Runtime) => median(m.echo[r]!.map((s) => s.firstByteMs)),
    exit: (r: Runtime) => median(m.echo[r]!.map((s) => s.exitMs)),
    true: (r: Runtime) => median(m.true[r]!),
    rss: (r: Runtime) => median(m.memory[r]!.map((s) => s.rssKiB)),
    pss: (r: Runtime) => median(m.memory[r]!.map((s) => s.pssKiB)),
  };
  const ratioRows = rts.includes('vmctr')
    ? peers.map((p) => `| vmctr / ${p} | ${(Object.keys(med) as (keyof typeof med)[]).map((k) => (med[k]('vmctr') / med[k](p)).toFixed(1)).join(' | ')} |`)
    : [];
  const processNames = (r: Runtime) => [...new Set(m.memory[r]!.flatMap((s) => s.processes.map((p) => p.comm)))].join(', ');
  const md = [
    '# vmctr run against runc and crun',
    '',
    `The built-in busybox \`default\` image for all three: vmctr boots it as a read-only ext4 disk of a microVM (1 vCPU, 256 MiB, its own guest kernel and the guest agent); runc and crun run it from the same ext4 dumped into a directory (\`debugfs rdump\`) with an OCI bundle from \`runc spec\` (read-only root, no terminal, its default pid, network, ipc, uts and mount namespaces and a cgroup of its own).`,
    `${rounds} rounds after one warm-up of each, alternating order. Measured ${m.where}. Versions: Node ${m.versions.node}; ${rts.filter((r) => r !== 'vmctr').map((r) => m.versions[r]).join('; ')}; kernel ${m.versions.kernel}; /sys/fs/cgroup is ${m.versions.cgroup}.`,
    '',
    '## Start of the command to the first byte of `echo hi`',
    '',
    '`vmctr run --rm default -- echo hi` against `runc run` / `crun run` of the same command.',
    '',
    roundsTable(latencySeries('firstByteMs'), 's'),
    '',
    '## Start of the command to its exit, `echo hi`',
    '',
    roundsTable(latencySeries('exitMs'), 's'),
    '',
    '## Start of the command to its exit, `true`',
    '',
    roundsTable(trueSeries, 's'),
    '',
    "## Host memory of one running pod (`sh -c 'echo up; exec sleep 600'`)",
    '',
    `Read ${SETTLE_MS / 1000} s after the container printed \`up\`. vmctr: the VMM process (\`vmctr run\`, one Node process whose main thread is named MainThread; guest RAM is its shared memfd mapping, so its RSS includes every guest page the guest has touched); runc/crun: the sum over the runtime process (\`runc run\` / \`crun run\`, waiting in the foreground) and every process in the container's cgroup (here \`sleep\`). Processes seen (by name): ${rts.map((r) => `${r}: ${processNames(r)}`).join('; ')}.`,
    '',
    'RSS is the `Rss` of /proc/PID/smaps_rollup (a page-table walk); it counts shared pages (libraries, page cache) once per process. PSS divides those among the processes that map them. VmRSS of /proc/PID/status is listed too: on kernels before 6.2 it is kept in per-thread caches synced every 64 page faults, so it reads low for small processes (4 kB for a fresh `sleep`).',
    '',
    roundsTable(memorySeries('rssKiB'), 'MiB RSS', 1),
    '',
    roundsTable(memorySeries('pssKiB'), 'MiB PSS', 1),
    '',
    roundsTable(memorySeries('vmRssKiB'), 'MiB VmRSS', 1),
    '',
    ...(rts.includes('vmctr') ? [
      'The VMM process\'s memory split (MiB): shmem is the guest RAM memfd (the pages the guest touched; only this process maps it, so its PSS is its RSS), anon Node\'s heap and the VMM\'s own memory, file the mapped Node binary, addon and libraries. From /proc/PID/status (VmRSS, RssShmem, RssAnon, RssFile) and from smaps_rollup (Rss, Pss_Shmem, Pss_Anon, Pss_File).',
      '',
      '| round | VmRSS | RssShmem (guest RAM) | RssAnon | RssFile | Rss (smaps) | Pss_Shmem | Pss_Anon | Pss_File |',
      '| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
      ...[...m.memory.vmctr!.map((s, i) => [`${i + 1}`, vmm(s)] as const), ['**median**', null] as const].map(([label, p]) => {
        const keys = ['vmRssKiB', 'shmemKiB', 'anonKiB', 'fileKiB', 'rssKiB', 'pssShmemKiB', 'pssAnonKiB', 'pssFileKiB'] as const;
        const cells = keys.map((k) => {
          const v = mib(p ? p[k] : median(m.memory.vmctr!.map((s) => vmm(s)[k]))).toFixed(1);
          return p ? v : `**${v}**`;
        });
        return `| ${label} | ${cells.join(' | ')} |`;
      }),
      '',
    ] : []),
    ...(Object.keys(m.multi).length ? [
      `## ${pods} pods at once`,
      '',
      `Once per run, after the rounds: ${pods} \`sleep 600\` pods of one runtime started one after the other, each waited for, then read together ${SETTLE_MS / 1000} s after the last was up (the same processes as above, summed over the pods).`,
      '',
      '| runtime | processes | RSS total (MiB) | RSS per pod (MiB) | PSS total (MiB) | PSS per pod (MiB) | VmRSS total (MiB) |',
      '| --- | ---: | ---: | ---: | ---: | ---: | ---: |',
      ...Object.entries(m.multi).map(([r, s]) => `| ${r} | ${s.processes} | ${mib(s.rssKiB).toFixed(1)} | ${mib(s.rssKiB / s.pods).toFixed(1)} | ${mib(s.pssKiB).toFixed(1)} | ${mib(s.pssKiB / s.pods).toFixed(1)} | ${mib(s.vmRssKiB).toFixed(1)} |`),
      '',
    ] : []),
    ...(ratioRows.length ? [
      '## Ratios (medians; above 1 means vmctr is slower or uses more)',
      '',
      '| | first byte (echo) | exit (echo) | exit (true) | RSS per pod | PSS per pod |',
      '| --- | ---: | ---: | ---: | ---: | ---: |',
      ...ratioRows,
      '',
    ] : []),
  ].join('\n');
  await writeFile(join(RESULTS_DIR, 'run.md'), md);
  await writeFile(join(RESULTS_DIR, 'run.json'), JSON.stringify(m, null, 2));
  await plotRounds(join(RESULTS_DIR, 'run.png'), `Command start to first byte / exit of echo hi (${m.where.replace(/ \(.*$/, '')})`, 'seconds', [
    ...latencySeries('firstByteMs').map((s) => ({ ...s, name: `${s.name} first byte` })),
    ...latencySeries('exitMs').map((s) => ({ ...s, name: `${s.name} exit` })),
  ]);
  process.stdout.write(md);
}

const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '3' },
    pods: { type: 'string', default: '3' },
    runtimes: { type: 'string', default: RUNTIMES.join(',') },
    measure: { type: 'boolean', default: false },
  },
});
const rounds = Number(values.rounds);
const pods = Number(values.pods);
const runtimes = values.runtimes.split(',') as Runtime[];
for (const r of runtimes) if (!RUNTIMES.includes(r)) throw new Error(`unknown runtime ${r} (known: ${RUNTIMES.join(', ')})`);
const args = ['--rounds', String(rounds), '--pods', String(pods), '--runtimes', runtimes.join(',')];
if (values.measure) {
  process.stdout.write(JSON.stringify(await measure(rounds, pods, runtimes)));
} else if (checkHostSupport().ok || !runtimes.includes('vmctr')) {
  await report({ ...(await measure(rounds, pods, runtimes)), where: 'natively on this host' }, rounds, pods);
} else {
  process.stderr.write('bench/run: this host has no VT-x/AMD-V: measuring inside the nested lab (QEMU TCG with emulated SVM; absolute times are slow for every runtime, the ratios are what compares)\n');
  const started = Date.now();
  const lab = await Lab.start();
  try {
    const proc = lab.spawn(['node', join(repoRoot, 'dist/bench/run/run-bench.js'), '--measure', ...args], { cwd: repoRoot });
    proc.stdin.end();
    proc.stderr.pipe(process.stderr); // progress
    const out: Buffer[] = [];
    proc.stdout.on('data', (c: Buffer) => out.push(c));
    const timer = setTimeout(() => proc.kill('SIGKILL'), 3_600_000);
    const [exit] = await Promise.all([proc.exited, finished(proc.stdout)]);
    clearTimeout(timer);
    if (exit.code !== 0) throw new Error(`measurement failed in the lab (exit ${exit.code ?? exit.signal})`);
    const m = JSON.parse(Buffer.concat(out).toString()) as Measurement;
    await writeFile(join(RESULTS_DIR, 'run.json'), JSON.stringify(m, null, 2)); // the data, before anything else can fail
    await report({ ...m, where: `inside the nested lab (L1 ${lab.kernel} under QEMU TCG with emulated AMD SVM, 2 vCPUs, on a 2-core PVM host)` }, rounds, pods);
    process.stderr.write(`bench/run: ${((Date.now() - started) / 1000).toFixed(0)} s in all, lab boot included\n`);
  } finally {
    await lab.stop();
  }
}
