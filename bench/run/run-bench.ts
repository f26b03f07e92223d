// `vmctr run` against the OCI runtimes runc and crun, on the same root
// filesystem (the built-in busybox `default` image), alternating in one run:
//
//   - latency: time from starting the command to the first byte of the
//     container's output, and to the command's exit, for `echo hi`; and to
//     the exit for `true`;
//   - memory per running pod: a long-lived container (`sleep 600`) is started
//     and, once it is up, the host processes that keep it running are read
//     from /proc: for vmctr `vmctr run` and the pod's monitor below it, the
//     VMM (guest RAM is a private anonymous mapping of the monitor, so its
//     RSS counts the guest memory the guest has touched; that mapping is
//     found in /proc/PID/smaps and reported apart from the VMM's own memory;
//     bench/proc-memory.ts), for runc/crun the runtime process
//     still waiting in the foreground plus every process in the container's
//     cgroup; then the same with several pods at once (once per run, after
//     the rounds).
//
//   npm run bench:run [-- --rounds N] [--pods N] [--runtimes vmctr,runc,crun]
//
// runc and crun get an OCI bundle made with `runc spec`: the default image's
// ext4 dumped into a directory with debugfs, read-only root, no terminal.
// On a host without VT-x/AMD-V everything runs inside the nested lab (and the
// report says so); the table, plot and JSON are written here.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { MONITOR_COMMAND } from '../../cli/monitor-command.js';
import { checkHostSupport } from '../../vmm/kvm/host-support.js';
import { repoRoot } from '../../test/lab/exec.js';
import { measureInLab } from '../lab-measure.js';
import { containerProcesses, dumpDefaultImage, makeBundle, OCI_RUNTIMES, runtimeVersion } from '../oci-bundle.js';
import { processMemory, processTree, thpSetting, type ProcessMemory, type VmmSplit } from '../proc-memory.js';
import { RESULTS_DIR, median, plotRounds, roundsTable, type Series } from '../report.js';

/** A run that has not ended by then is a failure, not a data point. */
const RUN_TIMEOUT_MS = 300_000;
/** How long a long-lived container runs after it printed `up` before its memory is read. */
const SETTLE_MS = 3_000;
const UP = 'up\n';
/** Guest RAM of every vmctr pod (`vmctr run --memory`, its default), in MiB. */
const GUEST_MEMORY_MIB = 256;
const RUNTIMES = ['vmctr', ...OCI_RUNTIMES] as const;
type Runtime = (typeof RUNTIMES)[number];

interface Latency { firstByteMs: number; exitMs: number }
interface Totals { rssKiB: number; vmRssKiB: number; pssKiB: number }
interface MemorySample extends Totals { processes: ProcessMemory[] }
interface MultiSample extends Totals { pods: number; processes: number; guestRssKiB?: number }
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

const COMMANDS = { echo: ['echo', 'hi'], true: ['true'], sleep: ['sh', '-c', 'echo up; exec sleep 600'] } as const;

/** The default image's files in a directory, and one OCI bundle per command over it. */
async function prepare(): Promise<Setup> {
  const work = await mkdtemp(join(tmpdir(), 'vmctr-run-bench-'));
  const rootfs = join(work, 'rootfs');
  await dumpDefaultImage(rootfs);
  const bundles = {} as Setup['bundles'];
  for (const [name, args] of Object.entries(COMMANDS) as [keyof typeof COMMANDS, readonly string[]][]) {
    bundles[name] = join(work, `bundle-${name}`);
    await makeBundle(bundles[name], rootfs, args);
  }
  const vmctrRoot = join(work, 'vmctr-root');
  return { work, vmctrRoot, rootfs, bundles };
}

let containers = 0;

/** Starts one container of `command`; `id` names it for runc and crun. */
function start(rt: Runtime, setup: Setup, command: keyof typeof COMMANDS): { child: ChildProcess; id: string } {
  const id = `vmctr-bench-${process.pid}-${containers++}`;
  const argv = rt === 'vmctr'
    ? [join(repoRoot, 'bin/vmctr'), 'run', '--rm', '--memory', String(GUEST_MEMORY_MIB), 'default', '--', ...COMMANDS[command]]
    : [rt, 'run', '--bundle', setup.bundles[command], id];
  const child = spawn(argv[0]!, argv.slice(1), {
    stdio: ['ignore', 'pipe', 'pipe'],
    timeout: RUN_TIMEOUT_MS,
    killSignal: 'SIGKILL',
    env: { ...process.env, VMCTR_ROOT: setup.vmctrRoot },
  });
  return { child, id };
}

/**
 * Resolves with the stdout, stderr and status of a child once it closed. A
 * process left behind holding the pipes (a runtime's init killed with its
 * parent) would keep them open forever: they are closed 10 s after the exit.
 */
function closed(child: ChildProcess): Promise<{ out: string; err: string; code: number | null; signal: NodeJS.Signals | null }> {
  let out = '';
  let err = '';
  child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (err += c.toString()));
  child.once('exit', () => setTimeout(() => {
    child.stdout!.destroy();
    child.stderr!.destroy();
  }, 10_000).unref());
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

/** What keeps a pod running on the host: `vmctr run` and the pod's monitor below it, or the runtime process plus the container's cgroup. */
function podProcesses(p: Running): number[] {
  const pids = new Set(processTree(p.child.pid!));
  if (p.rt !== 'vmctr') for (const pid of containerProcesses(p.rt, p.id)) pids.add(pid);
  return [...pids]; // the CLI or runtime process first
}

/** The pod's monitor (`node <bundle> __monitor <pod dir>`), the process that is its VMM. */
function isMonitor(pid: number): boolean {
  return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').includes(MONITOR_COMMAND);
}

/** The memory of a pod's processes; vmctr's VMM with its guest RAM apart. */
function podMemory(p: Running): ProcessMemory[] {
  return podProcesses(p).map((pid) => processMemory(pid, p.rt === 'vmctr' && isMonitor(pid) ? GUEST_MEMORY_MIB : undefined));
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
    return sum(podMemory(p));
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
    const s = sum(running.flatMap(podMemory));
    const vmms = s.processes.flatMap((p) => (p.vmm ? [p.vmm] : []));
    return {
      pods, rssKiB: s.rssKiB, vmRssKiB: s.vmRssKiB, pssKiB: s.pssKiB, processes: s.processes.length,
      ...(vmms.length ? { guestRssKiB: vmms.reduce((a, v) => a + v.guestRssKiB, 0) } : {}),
    };
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
        thp: thpSetting('enabled'),
        thpDefrag: thpSetting('defrag'),
        ...Object.fromEntries(runtimes.flatMap((r) => (r === 'vmctr' ? [] : [[r, runtimeVersion(r)]]))),
      },
    };
    // One warm-up of each (page cache), then rounds in alternating order.
    for (const r of runtimes) {
      log(`warm-up ${r}...`);
      log(`warm-up ${r}: ${((await latency(r, setup, 'echo', 'hi\n')).exitMs / 1000).toFixed(2)} s`);
    }
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
  const vmm = (s: MemorySample) => {
    const monitor = s.processes.find((p) => p.vmm);
    if (!monitor) throw new Error(`no VMM among the vmctr processes ${s.processes.map((p) => `${p.pid} (${p.comm})`).join(', ')}`);
    return monitor;
  };
  const split = (p: ProcessMemory): VmmSplit => p.vmm!; // vmm() found it
  const vmmColumns: [string, (p: ProcessMemory) => number][] = [
    ['Rss (smaps_rollup)', (p) => p.rssKiB],
    ['Pss', (p) => p.pssKiB],
    ['guest RAM', (p) => split(p).guestRssKiB],
    ['of which AnonHugePages', (p) => split(p).guestAnonHugeKiB],
    ['other anonymous', (p) => split(p).otherAnonKiB],
    ['file and shared', (p) => split(p).fileAndSharedKiB],
    ['Pss_File', (p) => p.pssFileKiB],
  ];
  const vmctrSamples = m.memory.vmctr ?? [];
  const guestMappings = [...new Set(vmctrSamples.flatMap((s) => split(vmm(s)).guestMappings.map((g) => `${mib(g.sizeKiB)} MiB, VmFlags \`${g.vmFlags}\``)))].join('; ');
  const guestPrivate = vmctrSamples.length > 0 && vmctrSamples.every((s) => split(vmm(s)).guestPssKiB === split(vmm(s)).guestRssKiB);
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
    `The built-in busybox \`default\` image for all three: vmctr boots it as a read-only ext4 disk of a microVM (1 vCPU, \`--memory ${GUEST_MEMORY_MIB}\` MiB, its own guest kernel and the guest agent); runc and crun run it from the same ext4 dumped into a directory (\`debugfs rdump\`) with an OCI bundle from \`runc spec\` (read-only root, no terminal, its default pid, network, ipc, uts and mount namespaces and a cgroup of its own).`,
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
    `Read ${SETTLE_MS / 1000} s after the container printed \`up\`. vmctr: \`vmctr run\`, attached in the foreground, and the pod's monitor it started, the VMM (a Node process each; guest RAM is a private anonymous mapping of the monitor, so its RSS includes every guest page the guest has touched, and the split below shows how much); runc/crun: the sum over the runtime process (\`runc run\` / \`crun run\`, waiting in the foreground) and every process in the container's cgroup (here \`sleep\`). Processes seen (by name): ${rts.map((r) => `${r}: ${processNames(r)}`).join('; ')}.`,
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
      `The VMM process's memory split (MiB), from one read of /proc/PID/smaps right after smaps_rollup. Guest RAM: the \`Rss\` of the guest RAM mapping (${guestMappings}; vmctr allocates it private and anonymous, 2 MiB-aligned, with MADV_HUGEPAGE and MADV_DONTFORK, and it is found as the anonymous rw-p mapping of exactly that size on a 2 MiB boundary): host memory behind the guest-physical pages the guest has touched so far. The guest kernel, its page cache and the guest agent live in it. Where the host backed a range with a transparent huge page (the AnonHugePages column, a part of guest RAM), a touch anywhere in it counts all 2 MiB, so guest RAM can exceed what the guest itself uses (host THP: enabled ${m.versions.thp ?? '?'}, defrag ${m.versions.thpDefrag ?? '?'}).${guestPrivate ? ' Only this process maps it: its PSS equals its RSS in every round.' : ''} Other anonymous: the \`Anonymous\` pages of every other mapping (Node's heap, the VMM's buffers, malloc arenas, thread stacks, private copies of file pages). File and shared: \`Rss\` − \`Anonymous\` of every other mapping (the mapped Node binary, the addon and libraries from the page cache, shared with other processes that map them; Pss_File is this process's share of file pages). Guest RAM, other anonymous and file and shared add up to that read's Rss, within a few pages of the smaps_rollup read just before. Not counted for any runtime: host page cache of files that are read but not mapped (vmctr's disk image, which the VMM reads with pread; the files runc's and crun's containers read).`,
      '',
      `| round | ${vmmColumns.map(([h]) => h).join(' | ')} |`,
      `| ---: | ${vmmColumns.map(() => '---:').join(' | ')} |`,
      ...[...m.memory.vmctr!.map((s, i) => [`${i + 1}`, vmm(s)] as const), ['**median**', null] as const].map(([label, p]) => {
        const cells = vmmColumns.map(([, get]) => {
          const v = mib(p ? get(p) : median(m.memory.vmctr!.map((s) => get(vmm(s))))).toFixed(1);
          return p ? v : `**${v}**`;
        });
        return `| ${label} | ${cells.join(' | ')} |`;
      }),
      '',
    ] : []),
    ...(Object.keys(m.multi).length ? [
      `## ${pods} pods at once`,
      '',
      `Once per run, after the rounds: ${pods} \`sleep 600\` pods of one runtime started one after the other, each waited for, then read together ${SETTLE_MS / 1000} s after the last was up (the same processes as above, summed over the pods; guest RAM per pod is the Rss of vmctr's guest RAM mappings, as above).`,
      '',
      '| runtime | processes | RSS total (MiB) | RSS per pod (MiB) | PSS total (MiB) | PSS per pod (MiB) | VmRSS total (MiB) | guest RAM per pod (MiB) |',
      '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
      ...Object.entries(m.multi).map(([r, s]) => `| ${r} | ${s.processes} | ${mib(s.rssKiB).toFixed(1)} | ${mib(s.rssKiB / s.pods).toFixed(1)} | ${mib(s.pssKiB).toFixed(1)} | ${mib(s.pssKiB / s.pods).toFixed(1)} | ${mib(s.vmRssKiB).toFixed(1)} | ${s.guestRssKiB === undefined ? '—' : mib(s.guestRssKiB / s.pods).toFixed(1)} |`),
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
  const { measurement: m, where } = await measureInLab<Measurement>('bench/run/run-bench.js', args);
  await writeFile(join(RESULTS_DIR, 'run.json'), JSON.stringify(m, null, 2)); // the data, before anything else can fail
  await report({ ...m, where }, rounds, pods);
  process.stderr.write(`bench/run: ${((Date.now() - started) / 1000).toFixed(0)} s in all, lab boot included\n`);
}
