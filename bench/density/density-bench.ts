// Host memory per idle detached pod: N long-lived pods (`sleep 600`) of one
// runtime at a time, vmctr against runc and crun, rounds alternating:
//
//   - after the settle time, MemAvailable (/proc/meminfo) is read, the N pods are started at once
//     (`vmctr run -d`, `runc run -d`, `crun run -d`), and once every start
//     has returned, the pods are checked up and left to settle;
//   - MemAvailable is read again (its drop over N is the host memory per pod,
//     kernel memory included: page tables, KVM's, cgroups, namespaces), then
//     the PSS and RSS of every process of each pod (vmctr: its monitor, the
//     VMM, with its guest RAM apart, and anything else in the pod's cgroup;
//     runc/crun: the container's cgroup: no runtime process stays behind a
//     detached container, and no shim is part of this);
//   - the pods are removed and checked gone (processes, cgroups, `vmctr ps
//     -a` / `<rt> list`), and MemAvailable read once more.
//
//   npm run bench:density [-- --rounds N] [--pods N] [--memory MiB] [--settle SECONDS] [--runtimes vmctr,runc,crun]
//   npm run bench:density -- --report    (the report again from bench/results/density.json)
//
// runc and crun get an OCI bundle over the default image's files, as in
// bench/run (bench/oci-bundle.ts). On a host without VT-x/AMD-V everything
// runs inside the nested lab (and the report says so); the table, plot and
// JSON are written here.
import { execFileSync, spawn } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import type { PodRecord } from '../../pod/pod-record.js';
import { identify, isAlive, type ProcessIdentity } from '../../pod/process-identity.js';
import { MIN_MEMORY_MIB } from '../../vmm/vm.js';
import { checkHostSupport } from '../../vmm/kvm/host-support.js';
import { repoRoot } from '../../test/lab/exec.js';
import { measureInLab } from '../lab-measure.js';
import { containerState, dumpDefaultImage, makeBundle, OCI_RUNTIMES, runtimeVersion, type OciRuntime } from '../oci-bundle.js';
import { cgroupMemory, cgroupProcesses, isKernelThread, memAvailableKiB, processMemory, processTree, thpSetting, type ProcessMemory } from '../proc-memory.js';
import { RESULTS_DIR, median, plotBars, roundsTable, type Series } from '../report.js';

const RUNTIMES = ['vmctr', ...OCI_RUNTIMES] as const;
type Runtime = (typeof RUNTIMES)[number];
const COMMAND = ['sleep', '600'];
/** N microVMs booting at once under TCG take minutes; a start that has not returned by then is a failure. */
const START_TIMEOUT_MS = 600_000;
/** `vmctr rm -f` of N pods: each teardown waits up to 60 s for its monitor, then SIGKILLs it (cli/pod-control.ts). */
const REMOVE_TIMEOUT_MS = 300_000;
const VMCTR = join(repoRoot, 'bin/vmctr');
/** How much of a failed pod's guest console is logged. */
const CONSOLE_TAIL_LINES = 30;

interface Options { rounds: number; pods: number; memoryMiB: number; settleS: number; runtimes: Runtime[] }

interface PodSample {
  name: string;
  /** The pod's cgroup v2 directory, checked gone after removal. */
  cgroup: string | undefined;
  /** Every user process of the pod; vmctr's monitor carries the guest RAM split (`vmm`). */
  processes: ProcessMemory[];
  /** Kernel threads in the pod's cgroup, by name: no memory of their own, so not in `processes`. */
  kernelThreads: string[];
  /** The memory charged to the pod's cgroup, kernel memory included. */
  charged: ReturnType<typeof cgroupMemory>;
}

interface Round {
  /** From launching the N starts at once to the last one's return, and each one's. */
  startMs: number; startEachMs: number[];
  /** Removing the N pods (one `vmctr rm -f` of all, or `<rt> delete --force` one after the other). */
  removeMs: number;
  memAvailableBeforeKiB: number; memAvailableUpKiB: number; memAvailableRemovedKiB: number;
  pods: PodSample[];
}

interface Measurement {
  where: string;
  /** The load average (1, 5, 15 min) of the host that ran the bench (outside the lab), at its start and end: the host is shared. */
  hostLoad: { start: string; end: string };
  date: string;
  options: Options;
  rounds: Record<string, Round[]>;
  host: Record<string, string>;
}

/** This run's files: the OCI bundle, vmctr's state directory, the start commands' output. */
interface Setup { work: string; vmctrRoot: string; bundle: string }

let started = 0;

function log(line: string): void {
  process.stderr.write(`[bench/density] ${line}\n`);
}

async function prepare(): Promise<Setup> {
  const work = await mkdtemp(join(tmpdir(), 'vmctr-density-bench-'));
  const rootfs = join(work, 'rootfs');
  await dumpDefaultImage(rootfs);
  const bundle = join(work, 'bundle');
  await makeBundle(bundle, rootfs, COMMAND);
  return { work, vmctrRoot: join(work, 'vmctr-root'), bundle };
}

function vmctr(setup: Setup, args: string[], timeoutMs = 60_000): string {
  return execFileSync(VMCTR, args, { encoding: 'utf8', timeout: timeoutMs, env: { ...process.env, VMCTR_ROOT: setup.vmctrRoot }, stdio: ['ignore', 'pipe', 'pipe'] });
}

/**
 * Starts one detached pod named `name` and resolves with its start's stdout
 * once the start returned. Its output goes to files, not pipes: runc's and
 * crun's detached containers inherit them and would hold pipes open.
 */
async function startPod(rt: Runtime, setup: Setup, options: Options, name: string): Promise<string> {
  const argv = rt === 'vmctr'
    ? [VMCTR, 'run', '-d', '--name', name, '--memory', String(options.memoryMiB), 'default', '--', ...COMMAND]
    : [rt, 'run', '-d', '--bundle', setup.bundle, name];
  const outPath = join(setup.work, `${name}.out`);
  const errPath = join(setup.work, `${name}.err`);
  const out = openSync(outPath, 'w');
  const err = openSync(errPath, 'w');
  const child = spawn(argv[0]!, argv.slice(1), {
    stdio: ['ignore', out, err],
    timeout: START_TIMEOUT_MS,
    killSignal: 'SIGKILL',
    env: { ...process.env, VMCTR_ROOT: setup.vmctrRoot },
  });
  closeSync(out);
  closeSync(err);
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (c, s) => resolve([c, s]));
  });
  if (code !== 0 && rt === 'vmctr') logConsoleTail(setup, name);
  if (code !== 0) throw new Error(`${argv.slice(0, 3).join(' ')} ${name} failed (exit ${code ?? signal}): ${readFileSync(errPath, 'utf8').trim().split('\n').at(-1) ?? ''}`);
  return readFileSync(outPath, 'utf8');
}

/** A pod that failed to start: the end of its guest console (in the lab, its directory is gone with the lab). */
function logConsoleTail(setup: Setup, name: string): void {
  const path = join(setup.vmctrRoot, 'pods', name, 'console.log');
  if (existsSync(path)) log(`${name}: the end of its guest console (${path}):\n${readFileSync(path, 'utf8').trimEnd().split('\n').slice(-CONSOLE_TAIL_LINES).join('\n')}`);
}

type PodJson = PodRecord & { status: string };

function vmctrPods(setup: Setup, all: boolean): PodJson[] {
  return JSON.parse(vmctr(setup, ['ps', ...(all ? ['-a'] : []), '--format', 'json'])) as PodJson[];
}

/** The containers runc or crun knows of. */
function containerIds(rt: OciRuntime): string[] {
  return execFileSync(rt, ['list', '-q'], { encoding: 'utf8' }).split('\n').filter(Boolean);
}

/** The pods of this run that exist, whatever their state. */
function existing(rt: Runtime, setup: Setup, names: string[]): string[] {
  const known = rt === 'vmctr' ? vmctrPods(setup, true).map((p) => p.name) : containerIds(rt);
  return names.filter((name) => known.includes(name));
}

/** The user processes of `pids` (deduplicated, in order) and the names of the kernel threads among them. */
function userProcesses(pids: number[]): { user: number[]; kernelThreads: string[] } {
  const user: number[] = [];
  const kernelThreads: string[] = [];
  for (const pid of new Set(pids)) {
    if (isKernelThread(pid)) kernelThreads.push(readFileSync(`/proc/${pid}/comm`, 'utf8').trim());
    else user.push(pid);
  }
  return { user, kernelThreads };
}

/** Each pod's processes and memory; throws unless every one of `names` is up. */
function samplePods(rt: Runtime, setup: Setup, options: Options, names: string[]): PodSample[] {
  if (rt === 'vmctr') {
    const pods = new Map(vmctrPods(setup, false).map((p) => [p.name, p]));
    return names.map((name) => {
      const pod = pods.get(name);
      if (!pod?.status.startsWith('running') || !pod.monitor) throw new Error(`vmctr pod ${name} is not up: ${pod?.status ?? 'not in vmctr ps'}`);
      const monitor = pod.monitor.pid;
      const { user, kernelThreads } = userProcesses([...processTree(monitor), ...(pod.cgroup ? cgroupProcesses(pod.cgroup) : [])]);
      const processes = user.map((pid) => processMemory(pid, pid === monitor ? options.memoryMiB : undefined));
      return { name, cgroup: pod.cgroup, kernelThreads, processes, charged: pod.cgroup ? cgroupMemory(pod.cgroup) : undefined };
    });
  }
  return names.map((name) => {
    const state = containerState(rt, name);
    if (state.status !== 'running') throw new Error(`${rt} container ${name} is not up: ${state.status}`);
    const { user, kernelThreads } = userProcesses(state.cgroup ? cgroupProcesses(state.cgroup) : [state.pid]);
    const processes = user.map((pid) => processMemory(pid));
    return { name, cgroup: state.cgroup, kernelThreads, processes, charged: state.cgroup ? cgroupMemory(state.cgroup) : undefined };
  });
}

/** Removes the pods named; runc and crun one after the other (each is a few ms), vmctr in one `rm -f`, which ends them concurrently. */
function removePods(rt: Runtime, setup: Setup, names: string[]): void {
  if (names.length === 0) return;
  if (rt === 'vmctr') vmctr(setup, ['rm', '-f', ...names], REMOVE_TIMEOUT_MS);
  else for (const name of names) execFileSync(rt, ['delete', '--force', name], { stdio: ['ignore', 'ignore', 'pipe'] });
}

/** Throws unless nothing of the pods is left: no process measured, no cgroup, nothing listed by the runtime. */
function checkGone(rt: Runtime, setup: Setup, pods: PodSample[], identities: ProcessIdentity[]): void {
  const listed = existing(rt, setup, pods.map((p) => p.name));
  if (listed.length) throw new Error(`${rt}: still listed after removal: ${listed.join(', ')}`);
  const cgroups = pods.flatMap((p) => (p.cgroup && existsSync(p.cgroup) ? [p.cgroup] : []));
  if (cgroups.length) throw new Error(`${rt}: cgroups left after removal: ${cgroups.join(', ')}`);
  const alive = identities.filter(isAlive);
  if (alive.length) throw new Error(`${rt}: processes alive after removal: ${alive.map((p) => p.pid).join(', ')}`);
}

/** One round of one runtime: N pods started at once, measured, removed. */
async function round(rt: Runtime, setup: Setup, options: Options, n: number, settleS: number): Promise<Round> {
  const names = Array.from({ length: n }, () => `density-${process.pid}-${started++}`);
  let removed = false;
  try {
    // The settle time before the baseline too: memory the previous round's teardown frees late must not count for this one.
    await sleep(settleS * 1000);
    const memAvailableBeforeKiB = memAvailableKiB();
    const t0 = performance.now();
    const results = await Promise.allSettled(names.map(async (name) => {
      const out = await startPod(rt, setup, options, name);
      if (rt === 'vmctr' && !/^[0-9a-f]{32}\n$/.test(out)) throw new Error(`vmctr run -d printed ${JSON.stringify(out)}, not a pod ID`);
      return performance.now() - t0;
    }));
    const startMs = performance.now() - t0;
    const failure = results.find((r) => r.status === 'rejected');
    if (failure) throw failure.reason;
    const startEachMs = results.map((r) => (r as PromiseFulfilledResult<number>).value);
    samplePods(rt, setup, options, names); // every pod up before the settle time starts
    await sleep(settleS * 1000);
    const memAvailableUpKiB = memAvailableKiB();
    const pods = samplePods(rt, setup, options, names);
    const identities = pods.flatMap((p) => p.processes.flatMap((m) => identify(m.pid) ?? []));
    const t1 = performance.now();
    removePods(rt, setup, names);
    removed = true;
    const removeMs = performance.now() - t1;
    checkGone(rt, setup, pods, identities);
    return { startMs, startEachMs, removeMs, memAvailableBeforeKiB, memAvailableUpKiB, memAvailableRemovedKiB: memAvailableKiB(), pods };
  } finally {
    if (!removed) {
      try {
        removePods(rt, setup, existing(rt, setup, names));
      } catch (err) {
        log(`cleaning up after a failure: ${(err as Error).message.split('\n')[0]}`);
      }
    }
  }
}

/** The measuring half: runs here, on a host with real KVM (or without vmctr). */
async function measure(options: Options): Promise<Measurement> {
  const setup = await prepare();
  try {
    const m: Measurement = {
      where: '',
      hostLoad: { start: '', end: '' },
      date: new Date().toISOString(),
      options,
      rounds: Object.fromEntries(options.runtimes.map((r) => [r, []])),
      host: {
        node: process.version,
        kernel: execFileSync('uname', ['-r'], { encoding: 'utf8' }).trim(),
        memTotalKiB: /^MemTotal:\s+(\d+) kB$/m.exec(readFileSync('/proc/meminfo', 'utf8'))?.[1] ?? '?',
        cpus: String(cpus().length),
        cgroup: execFileSync('stat', ['-f', '-c', '%T', '/sys/fs/cgroup'], { encoding: 'utf8' }).trim(),
        thp: thpSetting('enabled'),
        thpDefrag: thpSetting('defrag'),
        ...Object.fromEntries(options.runtimes.flatMap((r) => (r === 'vmctr' ? [] : [[r, runtimeVersion(r)]]))),
      },
    };
    // One pod of each first (page cache, V8's compile cache), then rounds in alternating order.
    for (const r of options.runtimes) {
      const warm = await round(r, setup, options, 1, 0);
      log(`warm-up ${r}: started in ${(warm.startMs / 1000).toFixed(2)} s`);
    }
    for (let i = 0; i < options.rounds; i++) {
      const order = i % 2 === 0 ? options.runtimes : [...options.runtimes].reverse();
      for (const r of order) {
        log(`round ${i + 1}/${options.rounds}: ${options.pods} pods of ${r}...`);
        const s = await round(r, setup, options, options.pods, options.settleS);
        m.rounds[r]!.push(s);
        const d = derive(s);
        log(`round ${i + 1}/${options.rounds} ${r}: started in ${(s.startMs / 1000).toFixed(1)} s; per pod ${mib(d.hostKiB).toFixed(1)} MiB MemAvailable, ${mib(d.pssKiB).toFixed(1)} MiB PSS, ${mib(d.rssKiB).toFixed(1)} MiB RSS`);
      }
    }
    return m;
  } finally {
    await rm(setup.work, { recursive: true, force: true });
  }
}

const mib = (kiB: number) => kiB / 1024;
const loadAverage = () => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
const sum = (values: number[]) => values.reduce((a, v) => a + v, 0);

/** A round's figures per pod (KiB) and its times (s). */
function derive(s: Round) {
  const n = s.pods.length;
  const all = s.pods.flatMap((p) => p.processes);
  const vmms = all.flatMap((p) => (p.vmm ? [p.vmm] : []));
  return {
    hostKiB: (s.memAvailableBeforeKiB - s.memAvailableUpKiB) / n,
    pssKiB: sum(all.map((p) => p.pssKiB)) / n,
    rssKiB: sum(all.map((p) => p.rssKiB)) / n,
    guestKiB: sum(vmms.map((v) => v.guestRssKiB)) / n,
    guestHugeKiB: sum(vmms.map((v) => v.guestAnonHugeKiB)) / n,
    otherAnonKiB: sum(vmms.map((v) => v.otherAnonKiB)) / n,
    fileAndSharedKiB: sum(vmms.map((v) => v.fileAndSharedKiB)) / n,
    vmmPssKiB: sum(all.filter((p) => p.vmm).map((p) => p.pssKiB)) / n,
    chargedKiB: sum(s.pods.map((p) => p.charged?.currentKiB ?? NaN)) / n,
    chargedKernelKiB: sum(s.pods.map((p) => p.charged?.statKiB.kernel ?? NaN)) / n,
    /** The monitors' anonymous memory (guest RAM and the rest) that their pods' cgroups are not charged for. */
    unchargedAnonKiB: (sum(vmms.map((v) => v.guestRssKiB + v.otherAnonKiB)) - sum(s.pods.map((p) => p.charged?.statKiB.anon ?? NaN))) / n,
    /** MemAvailable not back after removal, for all N pods: a check of the method (drift, memory freed late). */
    notReturnedKiB: s.memAvailableBeforeKiB - s.memAvailableRemovedKiB,
    startS: s.startMs / 1000,
    removeS: s.removeMs / 1000,
  };
}
type Derived = ReturnType<typeof derive>;
type Figure = keyof Derived;

/** A figure as reported: MiB, or seconds for the times. */
function shown(d: Derived, key: Figure): number {
  return key === 'startS' || key === 'removeS' ? d[key] : mib(d[key]);
}

async function report(m: Measurement): Promise<void> {
  const { options: o } = m;
  const rts = o.runtimes;
  const values = (r: Runtime, key: Figure) => m.rounds[r]!.map((s) => shown(derive(s), key));
  const series = (key: Figure): Series[] => rts.map((r) => ({ name: r, values: values(r, key) }));
  const med = (r: Runtime, key: Figure) => median(values(r, key));
  const peers = rts.filter((r) => r !== 'vmctr');
  const names = (r: Runtime) => [...new Set(m.rounds[r]!.flatMap((s) => s.pods.flatMap((p) => p.processes.map((q) => q.comm))))].join(', ') || 'none';
  // KVM names its worker after the VMM's pid (kvm-nx-lpage-recovery-479): one name for all of them.
  const threads = (r: Runtime) => [...new Set(m.rounds[r]!.flatMap((s) => s.pods.flatMap((p) => p.kernelThreads.map((t) => t.replace(/-\d+$/, '-<pid>')))))].join(', ') || 'none';
  const summaryColumns: [string, Figure, number][] = [
    ['host memory per pod (MemAvailable drop / N, MiB)', 'hostKiB', 1],
    ['PSS per pod (MiB)', 'pssKiB', 1],
    ['RSS per pod (MiB)', 'rssKiB', 1],
    ['charged to its cgroup per pod (memory.current, MiB)', 'chargedKiB', 1],
    ['of which kernel (MiB)', 'chargedKernelKiB', 2],
    ['guest RAM touched per pod (MiB)', 'guestKiB', 1],
    [`\`run -d\` of ${o.pods} at once (s)`, 'startS', 2],
    [`removal of ${o.pods} (s)`, 'removeS', 2],
  ];
  const cell = (r: Runtime, key: Figure, digits: number) => (key === 'guestKiB' && r !== 'vmctr' ? '—' : med(r, key).toFixed(digits));
  const ratioColumns: [string, Figure][] = [['host memory per pod', 'hostKiB'], ['PSS per pod', 'pssKiB'], ['RSS per pod', 'rssKiB'], ['charged to its cgroup', 'chargedKiB'], [`\`run -d\` of ${o.pods}`, 'startS']];
  // MemAvailable moves by itself too: the most it was off after a round with every pod gone, per pod, is what it can tell apart;
  // a ratio over a figure less than twice that would be off by more than half.
  const resolution = Math.max(...rts.flatMap((r) => values(r, 'notReturnedKiB').map(Math.abs))) / o.pods;
  const ratio = (p: Runtime, key: Figure) => (key === 'hostKiB' && med(p, key) < 2 * resolution ? `— (${p} below ${(2 * resolution).toFixed(1)})` : (med('vmctr', key) / med(p, key)).toFixed(1));
  const where = m.where.startsWith('inside the nested lab') ? 'in the nested lab' : 'on this host';
  const md = [
    '# Host memory per idle detached pod: vmctr against runc and crun',
    '',
    `Measured ${m.date.slice(0, 10)} (${m.date.slice(11, 16)} UTC) ${m.where}: ${(Number(m.host.memTotalKiB) / 1024 / 1024).toFixed(1)} GiB of memory, ${m.host.cpus} CPUs, kernel ${m.host.kernel}, /sys/fs/cgroup is ${m.host.cgroup}, transparent huge pages ${m.host.thp} (defrag ${m.host.thpDefrag}); Node ${m.host.node}; ${peers.map((r) => m.host[r]).join('; ')}. Load average of the host that ran it${where === 'in the nested lab' ? ' (outside the lab, which is a QEMU process on it)' : ''}, 1, 5 and 15 min: ${m.hostLoad.start} at the start, ${m.hostLoad.end} at the end; the times below grow with it, the memory figures do not.`,
    '',
    `Each round, for each runtime in turn (alternating order from round to round, after one warm-up pod of each): after ${o.settleS} s of quiet (so that memory the previous round's teardown frees late is not counted here), MemAvailable of /proc/meminfo is read; ${o.pods} pods of \`${COMMAND.join(' ')}\` are started at once (\`vmctr run -d --memory ${o.memoryMiB} default -- ${COMMAND.join(' ')}\`, one microVM each with 1 vCPU and ${o.memoryMiB} MiB; \`runc run -d\` / \`crun run -d\` of an OCI bundle over the same busybox files, the default image's ext4 dumped with \`debugfs rdump\`, read-only root, \`runc spec\`'s namespaces and a cgroup each); once every start has returned, each pod is checked up (vmctr: running in \`vmctr ps\`; runc/crun: \`running\` in \`state\`) and left ${o.settleS} s; then MemAvailable is read again and every process of each pod from /proc. Then the pods are removed (\`vmctr rm -f\` of all of them; \`delete --force\` of each) and checked gone: no process measured alive, no cgroup, nothing in \`vmctr ps -a\` / \`list\`.`,
    '',
    `- **Host memory per pod**: the drop in MemAvailable over the ${o.pods} pods. It counts what the processes cannot show: kernel memory (page tables, KVM's structures for each VM, cgroups, namespaces, kernel stacks) and page cache that cannot be reclaimed; the page cache of files read or mapped (the pods' disk images, the Node binary and libraries the monitors map, busybox) stays available, as reclaimable, and is not counted: so for vmctr it is about the monitors' anonymous memory (guest RAM and the VMM's own) plus kernel memory, and can be less than PSS, which counts a share of the mapped files. It is the host-wide figure, so anything else on the host moving its memory in that time is in it too (in the lab there is little else: the lab agent and this bench): after the removal, with no pod left, MemAvailable was up to ${(resolution * o.pods).toFixed(1)} MiB off its reading before the start (the last table of rounds), so ±${resolution.toFixed(1)} MiB per pod is what it tells apart, and a ratio against a figure less than twice that (which it would get wrong by more than half) is not given.`,
    `- **Charged to its cgroup per pod**: memory.current of the pod's cgroup (vmctr's /sys/fs/cgroup/vmctr/<id>, runc's and crun's container cgroup), the kernel's own account of the pod, with memory.stat's \`kernel\` part (kernel stacks, page tables, slab, KVM's accounted allocations for the VM); a page is charged to the cgroup of the process that first touched it, so page cache already read by an earlier pod (the Node binary, the disk images, busybox) is not in it; how much of vmctr's monitors' anonymous memory is charged elsewhere is in the monitor's table below.`,
    `- **PSS / RSS per pod**: the sum of smaps_rollup's Pss and Rss over the pod's processes, over ${o.pods}. vmctr: the pod's monitor (\`node <bundle> __monitor <pod dir>\`, the VMM; a Node process, so its name is that of its main thread, MainThread) and anything else in its cgroup /sys/fs/cgroup/vmctr/<id>; runc/crun: the container's cgroup, which is the \`sleep\` alone (a detached container has no runtime process left behind it; no shim such as containerd-shim or conmon is part of this). PSS shares the mapped Node binary and libraries among the ${o.pods} monitors; RSS counts them in each. Processes seen, by name: ${rts.map((r) => `${r}: ${names(r)}`).join('; ')}. Kernel threads in the pods' cgroups (no memory of their own, not counted): ${rts.map((r) => `${r}: ${threads(r)}`).join('; ')}.`,
    `- **Guest RAM touched per pod** (vmctr): the Rss of the monitor's guest RAM mapping (found in /proc/PID/smaps as bench/run does, bench/proc-memory.ts): the host memory behind the guest pages the guest kernel, its page cache and the guest agent have touched; on transparent huge pages, a touch anywhere in 2 MiB counts all of it. A part of vmctr's RSS and PSS.`,
    `- **\`run -d\` of ${o.pods} at once**: from launching the ${o.pods} start commands together to the last one's return (vmctr: once its container runs in the guest).`,
    '',
    '## Medians over the rounds',
    '',
    `| runtime | ${summaryColumns.map(([h]) => h).join(' | ')} |`,
    `| --- | ${summaryColumns.map(() => '---:').join(' | ')} |`,
    ...rts.map((r) => `| ${r} | ${summaryColumns.map(([, key, digits]) => cell(r, key, digits)).join(' | ')} |`),
    '',
    ...(rts.includes('vmctr') && peers.length ? [
      '## Ratios of the medians (vmctr over the other; above 1 means vmctr uses more or is slower)',
      '',
      `| | ${ratioColumns.map(([h]) => h).join(' | ')} |`,
      `| --- | ${ratioColumns.map(() => '---:').join(' | ')} |`,
      ...peers.map((p) => `| vmctr / ${p} | ${ratioColumns.map(([, key]) => ratio(p, key)).join(' | ')} |`),
      '',
    ] : []),
    '## Rounds',
    '',
    roundsTable(series('hostKiB'), 'MiB host memory per pod', 1),
    '',
    roundsTable(series('pssKiB'), 'MiB PSS per pod', 1),
    '',
    roundsTable(series('rssKiB'), 'MiB RSS per pod', 1),
    '',
    roundsTable(series('chargedKiB'), 'MiB charged to its cgroup per pod', 1),
    '',
    roundsTable(series('chargedKernelKiB'), 'MiB of it kernel', 2),
    '',
    roundsTable(series('startS'), `s for ${o.pods} run -d`, 2),
    '',
    `MemAvailable not back after the removal (MiB, for all ${o.pods} pods; a check of the method: memory freed late, or the host's drift over the round):`,
    '',
    roundsTable(series('notReturnedKiB'), 'MiB', 1),
    '',
    ...(rts.includes('vmctr') ? [
      "## vmctr's monitor, per pod",
      '',
      `From one read of /proc/PID/smaps of each monitor (MiB per pod, the mean over the round's ${o.pods}): guest RAM, and of it what the host backed with transparent huge pages; other anonymous memory (Node's heap, the VMM's buffers, malloc, thread stacks); file and shared (the mapped Node binary, the addon, libraries: page cache shared by every monitor, which RSS counts in each and PSS divides). They add up to the monitor's RSS. Anonymous not charged to the pod: guest RAM and other anonymous less memory.stat's \`anon\` of the pod's cgroup (memory charged to another cgroup, where the monitor was when it touched it).`,
      '',
      roundsTable([
        { name: 'guest RAM', values: values('vmctr', 'guestKiB') },
        { name: 'of which AnonHugePages', values: values('vmctr', 'guestHugeKiB') },
        { name: 'other anonymous', values: values('vmctr', 'otherAnonKiB') },
        { name: 'file and shared', values: values('vmctr', 'fileAndSharedKiB') },
        { name: 'monitor PSS', values: values('vmctr', 'vmmPssKiB') },
        { name: 'anonymous not charged to the pod', values: values('vmctr', 'unchargedAnonKiB') },
      ], 'MiB', 1),
      '',
    ] : []),
    `Plot: [density.png](density.png) (the medians above). Data: [density.json](density.json). Measured ${where} with \`npm run bench:density -- --rounds ${o.rounds} --pods ${o.pods} --memory ${o.memoryMiB} --settle ${o.settleS} --runtimes ${rts.join(',')}\`.`,
    '',
  ].join('\n');
  await writeFile(join(RESULTS_DIR, 'density.md'), md);
  await writeFile(join(RESULTS_DIR, 'density.json'), JSON.stringify(m, null, 2));
  await plotBars(join(RESULTS_DIR, 'density.png'), `Host memory per idle detached pod, ${o.pods} pods at once, medians of ${o.rounds} rounds, ${where}`, 'MiB per pod',
    ['host memory (MemAvailable drop / N)', 'PSS', 'RSS', 'charged to its cgroup'],
    rts.map((r) => ({ name: r, values: (['hostKiB', 'pssKiB', 'rssKiB', 'chargedKiB'] as const).map((key) => med(r, key)) })));
  process.stdout.write(md);
}

function parseOptions(): Options & { measure: boolean; report: boolean } {
  const { values } = parseArgs({
    options: {
      rounds: { type: 'string', default: '3' },
      pods: { type: 'string', default: '8' },
      memory: { type: 'string', default: '64' },
      settle: { type: 'string', default: '10' },
      runtimes: { type: 'string', default: RUNTIMES.join(',') },
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
  return {
    rounds: integer('rounds', values.rounds, 1),
    pods: integer('pods', values.pods, 1),
    memoryMiB: integer('memory', values.memory, MIN_MEMORY_MIB),
    settleS: integer('settle', values.settle, 0),
    runtimes: runtimes as Runtime[],
    measure: values.measure,
    report: values.report,
  };
}

try {
  const { measure: measureOnly, report: reportOnly, ...options } = parseOptions();
  const start = loadAverage();
  const args = ['--rounds', String(options.rounds), '--pods', String(options.pods), '--memory', String(options.memoryMiB), '--settle', String(options.settleS), '--runtimes', options.runtimes.join(',')];
  if (reportOnly) {
    // The report again from the last run's data (its wording or rules changed, not the measurement).
    await report(JSON.parse(readFileSync(join(RESULTS_DIR, 'density.json'), 'utf8')) as Measurement);
  } else if (measureOnly) {
    process.stdout.write(JSON.stringify(await measure(options)));
  } else if (checkHostSupport().ok || !options.runtimes.includes('vmctr')) {
    const m = await measure(options);
    await report({ ...m, where: 'natively on this host', hostLoad: { start, end: loadAverage() } });
  } else {
    process.stderr.write('bench/density: this host has no VT-x/AMD-V: measuring inside the nested lab (QEMU TCG with emulated SVM; memory is what compares, times are slow for every runtime)\n');
    const t0 = Date.now();
    const { measurement, where } = await measureInLab<Measurement>('bench/density/density-bench.js', args);
    await writeFile(join(RESULTS_DIR, 'density.json'), JSON.stringify(measurement, null, 2)); // the data, before anything else can fail
    await report({ ...measurement, where, hostLoad: { start, end: loadAverage() } });
    process.stderr.write(`bench/density: ${((Date.now() - t0) / 1000).toFixed(0)} s in all, lab boot included\n`);
  }
} catch (err) {
  process.stderr.write(`bench/density: ${(err as Error).message}\n`);
  process.exitCode = 1;
}
