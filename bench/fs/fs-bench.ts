// A pod's volume over virtio-fs against a runc bind mount of the same host
// directory, rounds alternating between the runtimes. Each round, vmctr
// gets one pod with the directory at /data (`vmctr run -d -v DIR:/data`:
// one virtiofsd for the pod, cache=auto, no writeback cache) and runc a
// bundle with DIR bound there, and each operation is a run, in that pod
// (`vmctr exec`) or in a container of its own (`runc run`), of a static C
// program from that directory (bench/fs/fs-workload.c) that times the
// operation itself and prints it:
//
//   - sequential write of a new file in 1 MiB writes, fsync included;
//   - sequential read of it in 1 MiB reads, and 4 KiB reads at distinct
//     random offsets of it, each after dropping caches (the host's, and for
//     vmctr the guest's: `--drop-caches` in the guest);
//   - sequential write in 4 KiB writes (without a writeback cache each write
//     is a FUSE round trip);
//   - small files: create (4 KiB each), stat and unlink, the last two after
//     dropping caches.
//
// Neither pod nor container start is measured, nor the exec round trip:
// only the operation, timed in the container. Then, in the same run, pods
// whose root filesystem is served over virtio-fs against a read-only disk
// (rootfs-start.ts).
//
//   npm run bench:fs [-- --rounds N] [--rootfs-rounds N] [--memory MiB] [--size MiB] [--small-write-size MiB] [--reads N] [--files N] [--dir PARENT] [--runtimes vmctr,runc]
//   npm run bench:fs -- --report    (the report again from bench/results/fs.json)
//
// On a host without VT-x/AMD-V everything runs inside the nested lab (and the
// report says so), with the shared directory on the lab's /run, a tmpfs;
// the table, plot and JSON are written here.
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import type { PodRecord } from '../../pod/pod-record.js';
import { VIRTIOFSD } from '../../pod/volume-backend.js';
import { MIN_MEMORY_MIB } from '../../vmm/vm.js';
import { checkHostSupport } from '../../vmm/kvm/host-support.js';
import { repoRoot } from '../../test/lab/exec.js';
import { measureInLab } from '../lab-measure.js';
import { dumpDefaultImage, makeBundle, OCI_RUNTIMES, runtimeVersion } from '../oci-bundle.js';
import { RESULTS_DIR, median, plotBars, roundsTable, type Series } from '../report.js';
import { layoutOf, makeNodeImage, measureRootfs, NODE_STORE_IMAGE, ROOTFS_CASES, rootfsReport, type RootfsMeasurement } from './rootfs-start.js';

const RUNTIMES = ['vmctr', ...OCI_RUNTIMES] as const;
type Runtime = (typeof RUNTIMES)[number];
const VMCTR = join(repoRoot, 'bin/vmctr');
const WORKLOAD_SOURCE = join(repoRoot, 'bench/fs/fs-workload.c');
const WORKLOAD = join(repoRoot, 'dist/bench/fs/fs-workload');
/** Where the shared directory is in every container. */
const TARGET = '/data';
/** What keeps a pod up while the workload is exec'd into it. */
const COMMAND = ['sleep', '86400'];
/** A pod boots in well under this in the lab; a start that has not returned by then is a failure. */
const START_TIMEOUT_MS = 300_000;
/** The slowest operation (4 KiB writes through virtio-fs in the lab) takes minutes at most. */
const OP_TIMEOUT_MS = 900_000;
const MIB = 1 << 20;
const LARGE_BLOCK = MIB;
const SMALL_BLOCK = 4096;
const SMALL_FILE_BYTES = 4096;
/** How much of a failed pod's guest console is logged. */
const CONSOLE_TAIL_LINES = 30;
/** In the lab, /tmp is an overlay over the host's /tmp through 9p; /run is a plain tmpfs. */
const LAB_DIR = '/run';

/** The figures, in the order a round measures them; `plot` names them under the plot's bars. */
const FIGURES = [
  { key: 'seqWrite', label: 'sequential write, 1 MiB writes', plot: 'write\n1 MiB blocks', unit: 'MiB/s' },
  { key: 'seqRead', label: 'sequential read, 1 MiB reads', plot: 'read\n1 MiB blocks', unit: 'MiB/s' },
  { key: 'randRead', label: 'random read, 4 KiB', plot: 'random read\n4 KiB', unit: 'IOPS' },
  { key: 'seqWrite4k', label: 'sequential write, 4 KiB writes', plot: 'write\n4 KiB blocks', unit: 'MiB/s' },
  { key: 'create', label: 'create, 4 KiB files', plot: 'create\n4 KiB files', unit: 'files/s' },
  { key: 'stat', label: 'stat', plot: 'stat', unit: 'files/s' },
  { key: 'unlink', label: 'unlink', plot: 'unlink', unit: 'files/s' },
] as const;
type FigureKey = (typeof FIGURES)[number]['key'];
type Figure = (typeof FIGURES)[number];

interface Options {
  rounds: number; memoryMiB: number; sizeMiB: number; smallWriteMiB: number; reads: number; files: number;
  /** Rounds of the root filesystem comparison (rootfs-start.ts); 0 leaves it out. */
  rootfsRounds: number;
  /** Where the shared directory is made; by default the temporary directory (the lab's /run in the lab). */
  dir: string | undefined;
  runtimes: Runtime[];
}

/** What fs-workload printed, and how long its `exec` took as the host saw it. */
interface Sample { op: string; count: number; bytes: number; seconds: number; execMs: number }

interface Round {
  samples: Record<FigureKey, Sample>;
  /** memory.peak and memory.max of vmctr's pod's cgroup (the pages its virtiofsd wrote to a tmpfs count there). */
  peakKiB: number | undefined;
  limitKiB: number | undefined;
}

interface Measurement {
  where: string;
  /** The load average (1, 5, 15 min) of the host that ran the bench (outside the lab), at its start and end: the host is shared. */
  hostLoad: { start: string; end: string };
  date: string;
  options: Options;
  /** The shared directory's filesystem (`stat -f`): what the figures are backed by. */
  dirFilesystem: string;
  rounds: Record<string, Round[]>;
  host: Record<string, string>;
  rootfs?: RootfsMeasurement;
}

/** This run's files: the shared directory, the OCI bundle over it, vmctr's state directory. */
interface Setup { work: string; shared: string; vmctrRoot: string; bundle: string }

/** A runtime's container for a round: a command run in it, its cgroup (vmctr's pod), its removal. */
interface Container {
  exec(argv: readonly string[]): string;
  cgroup: string | undefined;
  remove(): void;
}

let started = 0;

function log(line: string): void {
  process.stderr.write(`[bench/fs] ${line}\n`);
}

/** Compiles fs-workload unless dist has it from its current source (in the lab, dist is the host's, read-only: built before). */
function buildWorkload(): void {
  if (existsSync(WORKLOAD) && statSync(WORKLOAD).mtimeMs >= statSync(WORKLOAD_SOURCE).mtimeMs) return;
  mkdirSync(dirname(WORKLOAD), { recursive: true });
  execFileSync('cc', ['-O2', '-Wall', '-Werror', '-static', '-o', WORKLOAD, WORKLOAD_SOURCE], { stdio: ['ignore', 'inherit', 'inherit'] });
}

async function prepare(options: Options): Promise<Setup> {
  const work = await mkdtemp(join(tmpdir(), 'vmctr-fs-bench-'));
  const shared = await mkdtemp(join(options.dir ?? tmpdir(), 'vmctr-fs-bench-shared-'));
  copyFileSync(WORKLOAD, join(shared, 'fs-workload'));
  const rootfs = join(work, 'rootfs');
  await dumpDefaultImage(rootfs);
  const bundle = join(work, 'bundle');
  // Its command is set for each operation (setBundleArgs).
  await makeBundle(bundle, rootfs, [], [{ destination: TARGET, type: 'bind', source: shared, options: ['rbind', 'rw'] }]);
  return { work, shared, vmctrRoot: join(work, 'vmctr-root'), bundle };
}

const vmctrEnv = (setup: Setup) => ({ ...process.env, VMCTR_ROOT: setup.vmctrRoot });

/**
 * vmctr: one pod for the round, each operation an exec into it. runc: each
 * operation its own `runc run` of the bundle, its start untimed like
 * vmctr's exec, because `runc exec` goes wrong in the lab: L1's root is a
 * chroot over its initramfs, where runc's pivot_root moves only the
 * chroot's mount, so a process joining the container's mount namespace
 * lands at the initramfs's root, not the container's.
 */
function startContainer(rt: Runtime, setup: Setup, options: Options, name: string): Container {
  const run = (argv: readonly string[], timeout = OP_TIMEOUT_MS) => execFileSync(argv[0]!, argv.slice(1), { encoding: 'utf8', timeout, killSignal: 'SIGKILL', env: vmctrEnv(setup), stdio: ['ignore', 'pipe', 'pipe'] });
  if (rt !== 'vmctr') {
    let ops = 0;
    return {
      exec: (argv) => {
        setBundleArgs(setup.bundle, argv);
        return run([rt, 'run', '--bundle', setup.bundle, `${name}-${ops++}`]);
      },
      cgroup: undefined,
      remove: () => {},
    };
  }
  const remove = () => run([VMCTR, 'rm', '-f', name]);
  try {
    run([VMCTR, 'run', '-d', '--name', name, '--memory', String(options.memoryMiB), '-v', `${setup.shared}:${TARGET}`, 'default', '--', ...COMMAND], START_TIMEOUT_MS);
    const pods = JSON.parse(run([VMCTR, 'ps', '--format', 'json'])) as PodRecord[];
    const cgroup = pods.find((p) => p.name === name)?.cgroup;
    const exec = (argv: readonly string[]) => {
      try {
        return run([VMCTR, 'exec', name, '--', ...argv]);
      } catch (err) {
        log(podPostmortem(setup, name, cgroup));
        throw err;
      }
    };
    return { exec, cgroup, remove };
  } catch (err) {
    try {
      remove(); // a failed start can leave a pod behind
    } catch { /* none was left */ }
    throw err;
  }
}

/** What is known of a pod an exec failed in: its status, its cgroup's memory events (an OOM kill), the end of its guest console. */
function podPostmortem(setup: Setup, name: string, cgroup: string | undefined): string {
  const lines = [`${name} after a failed exec:`];
  try {
    lines.push(execFileSync(VMCTR, ['status', name], { encoding: 'utf8', env: vmctrEnv(setup) }).trim());
  } catch (err) {
    lines.push(`vmctr status: ${(err as Error).message.split('\n')[0]}`);
  }
  if (cgroup && existsSync(join(cgroup, 'memory.events'))) lines.push(`memory.events: ${readFileSync(join(cgroup, 'memory.events'), 'utf8').trim().replace(/\n/g, ', ')}; memory.peak ${cgroupKiB(cgroup, 'memory.peak')! / 1024} MiB`);
  const console = join(setup.vmctrRoot, 'pods', name, 'console.log');
  if (existsSync(console)) lines.push(`the end of its guest console:\n${readFileSync(console, 'utf8').trimEnd().split('\n').slice(-CONSOLE_TAIL_LINES).join('\n')}`);
  return lines.join('\n');
}

/** The command the bundle's container runs. */
function setBundleArgs(bundle: string, argv: readonly string[]): void {
  const config = join(bundle, 'config.json');
  const spec = JSON.parse(readFileSync(config, 'utf8')) as { process: { args: readonly string[] } };
  spec.process.args = argv;
  writeFileSync(config, JSON.stringify(spec, null, 2));
}

/** The host's page cache, dentries and inodes dropped (tmpfs keeps its files: they are its only copy). */
function dropHostCaches(): void {
  execFileSync('sync');
  writeFileSync('/proc/sys/vm/drop_caches', '3');
}

/** A cgroup's memory file in KiB; undefined without it, or for `max`. */
function cgroupKiB(cgroup: string | undefined, file: string): number | undefined {
  if (!cgroup || !existsSync(join(cgroup, file))) return undefined;
  const text = readFileSync(join(cgroup, file), 'utf8').trim();
  return text === 'max' ? undefined : Number(text) / 1024;
}

/** One round of one runtime: a container, every operation in it in turn, its removal. */
function round(rt: Runtime, setup: Setup, options: Options): Round {
  const c = startContainer(rt, setup, options, `fs-bench-${process.pid}-${started++}`);
  try {
    const run = (args: (string | number)[], dropCaches = false): Sample => {
      if (dropCaches) dropHostCaches();
      const argv = [join(TARGET, 'fs-workload'), ...(dropCaches && rt === 'vmctr' ? ['--drop-caches'] : []), ...args.map(String)];
      const t0 = performance.now();
      const out = c.exec(argv);
      const execMs = performance.now() - t0;
      const sample = { ...(JSON.parse(out) as Omit<Sample, 'execMs'>), execMs };
      // The guest times itself: a guest clock running fast would inflate its figures, and no exec is shorter than what it ran.
      if (sample.seconds * 1000 > execMs) throw new Error(`${rt}: ${sample.op} took ${sample.seconds} s by the container's clock, in an exec of ${(execMs / 1000).toFixed(3)} s`);
      return sample;
    };
    const file = join(TARGET, 'file'), smallWrites = join(TARGET, 'small-writes'), files = join(TARGET, 'files');
    const seqWrite = run(['write', file, options.sizeMiB, LARGE_BLOCK]);
    const seqRead = run(['read', file, LARGE_BLOCK], true);
    const randRead = run(['randread', file, options.reads], true);
    rmSync(join(setup.shared, 'file')); // the lab's tmpfs pages count against the pod's memory limit until then
    const seqWrite4k = run(['write', smallWrites, options.smallWriteMiB, SMALL_BLOCK]);
    rmSync(join(setup.shared, 'small-writes'));
    const create = run(['create', files, options.files, SMALL_FILE_BYTES]);
    const stat = run(['stat', files, options.files], true);
    const unlink = run(['unlink', files, options.files], true);
    return { samples: { seqWrite, seqRead, randRead, seqWrite4k, create, stat, unlink }, peakKiB: cgroupKiB(c.cgroup, 'memory.peak'), limitKiB: cgroupKiB(c.cgroup, 'memory.max') };
  } finally {
    c.remove();
  }
}

/** The measuring half: runs here, on a host with real KVM (or without vmctr). */
async function measure(options: Options): Promise<Measurement> {
  const setup = await prepare(options);
  try {
    const m: Measurement = {
      where: '',
      hostLoad: { start: '', end: '' },
      date: new Date().toISOString(),
      options,
      dirFilesystem: execFileSync('stat', ['-f', '-c', '%T', setup.shared], { encoding: 'utf8' }).trim(),
      rounds: Object.fromEntries(options.runtimes.map((r) => [r, []])),
      host: {
        node: process.version,
        kernel: execFileSync('uname', ['-r'], { encoding: 'utf8' }).trim(),
        memTotalKiB: /^MemTotal:\s+(\d+) kB$/m.exec(readFileSync('/proc/meminfo', 'utf8'))?.[1] ?? '?',
        cpus: String(cpus().length),
        ...(options.runtimes.includes('vmctr') ? { virtiofsd: execFileSync(VIRTIOFSD, ['--version'], { encoding: 'utf8' }).split('\n')[0]! } : {}),
        ...Object.fromEntries(options.runtimes.flatMap((r) => (r === 'vmctr' ? [] : [[r, runtimeVersion(r)]]))),
      },
    };
    for (let i = 0; i < options.rounds; i++) {
      const order = i % 2 === 0 ? options.runtimes : [...options.runtimes].reverse();
      for (const r of order) {
        log(`round ${i + 1}/${options.rounds}: ${r}...`);
        const t0 = performance.now();
        const s = round(r, setup, options);
        m.rounds[r]!.push(s);
        const peak = s.peakKiB === undefined ? '' : `; memory.peak ${(s.peakKiB / 1024).toFixed(0)} MiB`;
        log(`round ${i + 1}/${options.rounds} ${r} (${((performance.now() - t0) / 1000).toFixed(0)} s): ${FIGURES.map((f) => `${f.key} ${rate(f, s.samples[f.key]).toFixed(1)} ${f.unit}`).join(', ')}${peak}`);
      }
    }
    if (options.rootfsRounds > 0 && options.runtimes.includes('vmctr')) {
      const nodeImage = join(setup.work, 'node-image');
      const kib = await makeNodeImage(nodeImage);
      const vmctr = (args: string[]) => execFileSync(VMCTR, args, { encoding: 'utf8', timeout: START_TIMEOUT_MS, killSignal: 'SIGKILL', env: vmctrEnv(setup), stdio: ['ignore', 'pipe', 'pipe'] });
      const run = (args: string[]) => vmctr(['run', ...args]);
      const layout = join(setup.work, 'node-layout');
      await layoutOf(nodeImage, layout);
      vmctr(['load', '--quiet', '-i', layout, '--tag', NODE_STORE_IMAGE]);
      // Once per image, not a cost of every start: fs copies the default image's files out of its disk, block builds the store image's disk.
      run(['--rm', '--rootfs', 'fs', 'default', '--', 'true']);
      run(['--rm', '--rootfs', 'block', NODE_STORE_IMAGE, '--', 'true']);
      m.rootfs = measureRootfs(options.rootfsRounds, nodeImage, kib, run, log);
    }
    return m;
  } finally {
    await rm(setup.work, { recursive: true, force: true });
    await rm(setup.shared, { recursive: true, force: true });
  }
}

function rate(f: Figure, s: Sample): number {
  return f.unit === 'MiB/s' ? s.bytes / MIB / s.seconds : s.count / s.seconds;
}

async function report(m: Measurement): Promise<void> {
  const { options: o } = m;
  const rts = o.runtimes;
  const peers = rts.filter((r) => r !== 'vmctr');
  const ratioPeers = rts.includes('vmctr') ? peers : [];
  const values = (r: Runtime, f: Figure) => m.rounds[r]!.map((s) => rate(f, s.samples[f.key]));
  const med = (r: Runtime, f: Figure) => median(values(r, f));
  const seconds = (r: Runtime, f: Figure) => median(m.rounds[r]!.map((s) => s.samples[f.key].seconds));
  const kib = (r: Runtime, key: 'peakKiB' | 'limitKiB') => m.rounds[r]!.map((s) => (s[key] ?? NaN) / 1024);
  const where = m.where.startsWith('inside the nested lab') ? 'in the nested lab' : 'on this host';
  const digits = (v: number) => (v >= 100 ? 0 : v >= 10 ? 1 : 2);
  const shown = (v: number) => v.toFixed(digits(v));
  const md = [
    '# Volumes: virtio-fs (vmctr) against a runc bind mount of the same directory',
    '',
    `Measured ${m.date.slice(0, 10)} (${m.date.slice(11, 16)} UTC) ${m.where}: ${(Number(m.host.memTotalKiB) / 1024 / 1024).toFixed(1)} GiB of memory, ${m.host.cpus} CPUs, kernel ${m.host.kernel}; Node ${m.host.node}; ${[m.host.virtiofsd, ...peers.map((r) => m.host[r])].filter(Boolean).join('; ')}. The shared directory was on **${m.dirFilesystem}**${m.dirFilesystem === 'tmpfs' ? ' (in the lab every file lives in memory): no disk under either runtime, so the figures compare the paths to the files, virtio-fs against the host kernel\'s own, not storage' : ''}. Load average of the host that ran it${where === 'in the nested lab' ? ' (outside the lab, which is a QEMU process on it)' : ''}, 1, 5 and 15 min: ${m.hostLoad.start} at the start, ${m.hostLoad.end} at the end.`,
    '',
    `Each round, for each runtime in turn (alternating order from round to round), the directory is at ${TARGET} in: for vmctr, one pod for the round, \`vmctr run -d --memory ${o.memoryMiB} -v DIR:${TARGET} default -- ${COMMAND.join(' ')}\` (one microVM, 1 vCPU, ${o.memoryMiB} MiB; the pod's virtiofsd with cache=auto, xattr, no writeback cache), each operation a \`vmctr exec\` into it; or, for runc, each operation a \`runc run\` of an OCI bundle over the same busybox files (the default image's ext4 dumped with \`debugfs rdump\`, read-only root) with DIR bind-mounted there (rbind, rw; no CPU or memory limit). Not \`runc exec\`: in the lab it runs the command outside the container's root (L1's root is a chroot over its initramfs, and a process joining the container's mount namespace lands at the namespace's root). Each operation is one run of \`fs-workload\` (bench/fs/fs-workload.c, compiled static on the host and run from ${TARGET} by both), which times the operation alone with the container's CLOCK_MONOTONIC (checked against the exec's or run's time on the host) and prints it; neither the pod's nor a container's start, nor the exec round trip, is in the figures:`,
    '',
    `- **sequential write**: a new ${o.sizeMiB} MiB file in write(2)s of 1 MiB, and a new ${o.smallWriteMiB} MiB file in write(2)s of 4 KiB; from open to close, fsync included. Without a writeback cache every write(2) is a FUSE WRITE round trip to virtiofsd, so the 4 KiB writes show the cost per request.`,
    `- **sequential read**: the ${o.sizeMiB} MiB file in read(2)s of 1 MiB; **random read**: ${o.reads} preads of 4 KiB at distinct random 4 KiB-aligned offsets of it (the same sequence for both; distinct, so no read finds a page an earlier one cached). Before each, the host's caches are dropped (\`sync; echo 3 > /proc/sys/vm/drop_caches\`; a tmpfs keeps its files, the only copy), and for vmctr the guest's (\`fs-workload --drop-caches\` in the guest, as root there). Under cache=auto virtiofsd opens files without FOPEN_KEEP_CACHE, so the guest drops a file's cached pages at every open anyway: a read after an open always goes to the host.`,
    `- **create, stat, unlink**: ${o.files} files of ${SMALL_FILE_BYTES} bytes in a new directory (open O_CREAT|O_EXCL, one write, close), then stat(2) of each, then unlink(2) of each, the last two after dropping caches as above (the guest's dentries with them, so each name is a FUSE LOOKUP again).`,
    '',
    '## Medians over the rounds',
    '',
    `| operation | unit | ${[...rts, ...ratioPeers.map((p) => `vmctr / ${p}`)].join(' | ')} |`,
    `| --- | --- | ${[...rts, ...ratioPeers].map(() => '---:').join(' | ')} |`,
    ...FIGURES.map((f) => `| ${f.label} | ${f.unit} | ${[...rts.map((r) => shown(med(r, f))), ...ratioPeers.map((p) => (med('vmctr', f) / med(p, f)).toFixed(3))].join(' | ')} |`),
    '',
    ...(ratioPeers.length ? ['The ratios are of rates: below 1 means vmctr is slower by that factor (0.1: ten times slower).', ''] : []),
    `Time of each operation (median s): ${FIGURES.map((f) => `${f.label} ${rts.map((r) => `${r} ${seconds(r, f).toFixed(3)}`).join(', ')}`).join('; ')}.`,
    '',
    '## Rounds',
    '',
    ...FIGURES.flatMap((f) => [roundsTable(rts.map((r) => ({ name: r, values: values(r, f) })), `${f.unit}, ${f.label}`, 2), '']),
    ...(rts.includes('vmctr') ? [
      `Peak memory charged to vmctr's pod's cgroup in each round (memory.peak, MiB; its limit is guest memory + 160 MiB: ${[...new Set(kib('vmctr', 'limitKiB').map((v) => v.toFixed(0)))].join(', ')} MiB). The files the pod writes to a tmpfs count there, through its virtiofsd, besides the guest RAM the guest touched (its page cache of the files included) and the VMM's own memory; each file is removed after the operations on it.`,
      '',
      roundsTable([{ name: 'vmctr', values: kib('vmctr', 'peakKiB') }], 'MiB', 1),
      '',
    ] : []),
    ...(m.rootfs ? [...rootfsReport(m.rootfs, o.rootfsRounds), 'Plot: [fs-rootfs.png](fs-rootfs.png) (the medians above).', ''] : []),
    `Plot: [fs.png](fs.png) (the volumes' medians above, log scale). Data: [fs.json](fs.json). Measured ${where} with \`npm run bench:fs -- ${cliArgs(o).join(' ')}\`.`,
    '',
  ].join('\n');
  await writeFile(join(RESULTS_DIR, 'fs.md'), md);
  await writeFile(join(RESULTS_DIR, 'fs.json'), JSON.stringify(m, null, 2));
  const series: Series[] = rts.map((r) => ({ name: r, values: FIGURES.map((f) => med(r, f)) }));
  await plotBars(join(RESULTS_DIR, 'fs.png'), `Volumes: virtio-fs (vmctr) against a runc bind mount, medians of ${o.rounds} rounds, ${where}, ${m.dirFilesystem}-backed (higher is better)`, 'rate (log scale)',
    FIGURES.map((f) => `${f.plot}\n(${f.unit})`), series, { logScale: true });
  if (m.rootfs) {
    const rootfs = m.rootfs;
    await plotBars(join(RESULTS_DIR, 'fs-rootfs.png'), `vmctr run --rm to exit, --rootfs block against fs, medians of ${o.rootfsRounds} rounds, ${where} (lower is better)`, 'seconds',
      ROOTFS_CASES.map((c) => c.plot), (['block', 'fs'] as const).map((mode) => ({ name: `--rootfs ${mode}`, values: ROOTFS_CASES.map((c) => median(rootfs.ms[mode][c.key]) / 1000) })), { digits: 2 });
  }
  process.stdout.write(md);
}

function cliArgs(o: Options): string[] {
  return [
    '--rounds', String(o.rounds), '--memory', String(o.memoryMiB), '--size', String(o.sizeMiB), '--small-write-size', String(o.smallWriteMiB),
    '--reads', String(o.reads), '--files', String(o.files), '--rootfs-rounds', String(o.rootfsRounds), ...(o.dir ? ['--dir', o.dir] : []), '--runtimes', o.runtimes.join(','),
  ];
}

function parseOptions(): Options & { measure: boolean; report: boolean } {
  const { values } = parseArgs({
    options: {
      rounds: { type: 'string', default: '3' },
      // 512 left the pod 54 MiB under its limit in the lab (guest memory + 160 MiB; the files it writes to the lab's tmpfs count there).
      memory: { type: 'string', default: '1024' },
      size: { type: 'string', default: '256' },
      'small-write-size': { type: 'string', default: '16' },
      reads: { type: 'string', default: '2000' },
      files: { type: 'string', default: '2000' },
      'rootfs-rounds': { type: 'string', default: '3' },
      dir: { type: 'string' },
      runtimes: { type: 'string', default: 'vmctr,runc' },
      measure: { type: 'boolean', default: false },
      report: { type: 'boolean', default: false },
    },
  });
  const integer = (name: string, text: string, min: number) => {
    if (!/^\d+$/.test(text) || Number(text) < min) throw new Error(`--${name} must be a whole number of at least ${min}, not "${text}"`);
    return Number(text);
  };
  const runtimes = values.runtimes.split(',');
  for (const r of runtimes) if (!(RUNTIMES as readonly string[]).includes(r)) throw new Error(`unknown runtime "${r}" (known: ${RUNTIMES.join(', ')})`);
  const sizeMiB = integer('size', values.size, 1);
  const reads = integer('reads', values.reads, 1);
  if (reads > sizeMiB * (MIB / 4096)) throw new Error(`--reads ${reads} is more than the ${sizeMiB} MiB file has 4 KiB pages`);
  return {
    rounds: integer('rounds', values.rounds, 1),
    memoryMiB: integer('memory', values.memory, MIN_MEMORY_MIB),
    sizeMiB,
    smallWriteMiB: integer('small-write-size', values['small-write-size'], 1),
    reads,
    files: integer('files', values.files, 1),
    rootfsRounds: integer('rootfs-rounds', values['rootfs-rounds'], 0),
    dir: values.dir,
    runtimes: runtimes as Runtime[],
    measure: values.measure,
    report: values.report,
  };
}

const loadAverage = () => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');

try {
  const { measure: measureOnly, report: reportOnly, ...options } = parseOptions();
  const start = loadAverage();
  if (reportOnly) {
    // The report again from the last run's data (its wording or rules changed, not the measurement).
    await report(JSON.parse(readFileSync(join(RESULTS_DIR, 'fs.json'), 'utf8')) as Measurement);
  } else if (measureOnly) {
    buildWorkload();
    process.stdout.write(JSON.stringify(await measure(options)));
  } else if (checkHostSupport().ok || !options.runtimes.includes('vmctr')) {
    buildWorkload();
    const m = await measure(options);
    await report({ ...m, where: 'natively on this host', hostLoad: { start, end: loadAverage() } });
  } else {
    process.stderr.write('bench/fs: this host has no VT-x/AMD-V: measuring inside the nested lab (QEMU TCG with emulated SVM: every figure is slow, the ratios compare the two paths)\n');
    buildWorkload();
    const t0 = Date.now();
    const { measurement, where } = await measureInLab<Measurement>('bench/fs/fs-bench.js', cliArgs({ ...options, dir: options.dir ?? LAB_DIR }));
    await writeFile(join(RESULTS_DIR, 'fs.json'), JSON.stringify(measurement, null, 2)); // the data, before anything else can fail
    await report({ ...measurement, where, hostLoad: { start, end: loadAverage() } });
    process.stderr.write(`bench/fs: ${((Date.now() - t0) / 1000).toFixed(0)} s in all, lab boot included\n`);
  }
} catch (err) {
  process.stderr.write(`bench/fs: ${(err as Error).message}\n`);
  process.exitCode = 1;
}
