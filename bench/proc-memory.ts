// Host memory as the memory benchmarks (bench/run, bench/density) read it
// from /proc and /sys/fs/cgroup: a process's RSS and PSS, a VMM process's
// guest RAM apart from the rest, a cgroup's processes and memory charge, the
// host's MemAvailable.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ramRanges } from '../vmm/boot/layout.js';

const MiB = 1024 * 1024;
/** Private guest RAM starts on a 2 MiB boundary (native/src/memory.cc), so KVM can map it with huge pages. */
const HUGE_PAGE = 2 * MiB;
/** PF_KTHREAD in the flags of /proc/PID/stat (include/linux/sched.h). */
const PF_KTHREAD = 0x00200000;

/**
 * KiB per process. From /proc/PID/status: VmRSS and its RssAnon/RssFile/RssShmem
 * split, which kernels before 6.2 keep in per-thread caches synced every 64
 * page faults (SPLIT_RSS_COUNTING), so a small process can read low (4 kB for
 * a fresh `sleep`). From /proc/PID/smaps_rollup, a page-table walk: Rss, and
 * Pss with its anon/file/shmem split.
 */
export interface ProcessMemory {
  pid: number; comm: string;
  vmRssKiB: number; anonKiB: number; fileKiB: number; shmemKiB: number;
  rssKiB: number; pssKiB: number; pssAnonKiB: number; pssFileKiB: number; pssShmemKiB: number;
  /** smaps_rollup's Anonymous (anonymous pages, private copies of file pages included) and AnonHugePages. */
  anonymousKiB: number; anonHugeKiB: number;
  /** The VMM process only: its guest RAM and the rest, from one read of /proc/PID/smaps. */
  vmm?: VmmSplit;
}

/**
 * The VMM process's memory from /proc/PID/smaps (KiB): the guest RAM
 * mapping(s), allocated by vmm/memory/guest-memory.ts (private anonymous,
 * 2 MiB-aligned, MADV_HUGEPAGE and MADV_DONTFORK), and everything else.
 * guestRss + otherAnon + fileAndShared = rss, all from the same read.
 */
export interface VmmSplit {
  /** Sizes and VmFlags of the mappings taken for guest RAM. */
  guestMappings: { sizeKiB: number; vmFlags: string }[];
  /** Guest RAM backed by host memory: the pages the guest has touched (whole 2 MiB pages where THP gave one). */
  guestRssKiB: number; guestPssKiB: number; guestAnonHugeKiB: number;
  /** Anonymous memory outside guest RAM: Node's heap, the VMM's own buffers, malloc, thread stacks. */
  otherAnonKiB: number;
  /** Rss − Anonymous outside guest RAM: the mapped Node binary, addon and libraries (page cache), and any shared memory. */
  fileAndSharedKiB: number;
  rssKiB: number;
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

interface Mapping { start: number; end: number; perms: string; inode: number; path: string; kiB: Record<string, number>; vmFlags: string[] }

/** /proc/PID/smaps: one entry per mapping, its `kB` fields and VmFlags. */
function smaps(pid: number): Mapping[] {
  const maps: Mapping[] = [];
  for (const line of readFileSync(`/proc/${pid}/smaps`, 'utf8').split('\n')) {
    const header = /^([0-9a-f]+)-([0-9a-f]+) (\S+) \S+ \S+ (\d+)\s*(.*)$/.exec(line);
    if (header) {
      maps.push({ start: parseInt(header[1]!, 16), end: parseInt(header[2]!, 16), perms: header[3]!, inode: Number(header[4]), path: header[5]!, kiB: {}, vmFlags: [] });
      continue;
    }
    const m = maps.at(-1);
    const field = /^(\w+):\s+(\d+) kB$/.exec(line);
    if (m && field) m.kiB[field[1]!] = Number(field[2]);
    else if (m && line.startsWith('VmFlags:')) m.vmFlags = line.slice(8).trim().split(/\s+/);
  }
  return maps;
}

/**
 * Splits a VMM's memory into guest RAM and the rest. Guest RAM is the
 * anonymous read-write private mapping per RAM range of the VM (one up to
 * the MMIO gap: vmm/boot/layout.ts ramRanges) whose size is that range's and
 * which starts on a 2 MiB boundary; if Node happened to have another such
 * mapping, only the one with MADV_DONTFORK (VmFlags `dc`) is guest RAM.
 * Anything but exactly one match per range is an error, not a guess.
 */
export function vmmSplit(pid: number, guestMemoryMiB: number): VmmSplit {
  const maps = smaps(pid);
  const guest = new Set<Mapping>();
  for (const range of ramRanges(guestMemoryMiB * MiB)) {
    let found = maps.filter((m) => !guest.has(m) && m.inode === 0 && m.path === '' && m.perms === 'rw-p' && m.end - m.start === range.size && m.start % HUGE_PAGE === 0);
    if (found.length > 1) found = found.filter((m) => m.vmFlags.includes('dc'));
    if (found.length !== 1) {
      throw new Error(`process ${pid}: ${found.length} candidate mappings for a guest RAM range of ${range.size / MiB} MiB (anonymous, rw-p, 2 MiB-aligned${found.length ? `, VmFlags dc: ${found.map((m) => m.start.toString(16)).join(', ')}` : ''})`);
    }
    guest.add(found[0]!);
  }
  const total = (ms: Iterable<Mapping>, key: string) => [...ms].reduce((a, m) => a + (m.kiB[key] ?? 0), 0);
  const rest = maps.filter((m) => !guest.has(m));
  return {
    guestMappings: [...guest].map((m) => ({ sizeKiB: (m.end - m.start) / 1024, vmFlags: m.vmFlags.join(' ') })),
    guestRssKiB: total(guest, 'Rss'),
    guestPssKiB: total(guest, 'Pss'),
    guestAnonHugeKiB: total(guest, 'AnonHugePages'),
    otherAnonKiB: total(rest, 'Anonymous'),
    fileAndSharedKiB: total(rest, 'Rss') - total(rest, 'Anonymous'),
    rssKiB: total(maps, 'Rss'),
  };
}

/** A process's memory; given the VM's guest memory size it is read as a VMM, its guest RAM apart. */
export function processMemory(pid: number, vmmGuestMemoryMiB?: number): ProcessMemory {
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
    anonymousKiB: field('Anonymous'),
    anonHugeKiB: field('AnonHugePages'),
    ...(vmmGuestMemoryMiB === undefined ? {} : { vmm: vmmSplit(pid, vmmGuestMemoryMiB) }),
  };
}

/** `pid` and every process below it. */
export function processTree(pid: number): number[] {
  const children: number[] = [];
  for (const task of readdirSync(`/proc/${pid}/task`)) {
    const text = readFileSync(`/proc/${pid}/task/${task}/children`, 'utf8').trim();
    if (text) children.push(...text.split(/\s+/).map(Number));
  }
  return [pid, ...children.flatMap(processTree)];
}

/** A kernel thread has no memory of its own (KVM's per-VM worker, for one, is put in the VMM's cgroup). */
export function isKernelThread(pid: number): boolean {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the comm's closing parenthesis: state is field 3, flags field 9.
  const flags = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[6]);
  return (flags & PF_KTHREAD) !== 0;
}

/** The cgroup v2 directory of a process: at /sys/fs/cgroup (the lab), or the hybrid layout's unified hierarchy. */
export function cgroupOf(pid: number): string | undefined {
  const cgroup = /^0::(.*)$/m.exec(readFileSync(`/proc/${pid}/cgroup`, 'utf8'))?.[1];
  if (cgroup === undefined) return undefined;
  return ['/sys/fs/cgroup', '/sys/fs/cgroup/unified'].map((mount) => join(mount, cgroup)).find((dir) => existsSync(join(dir, 'cgroup.procs')));
}

/** The processes in a cgroup v2 directory. */
export function cgroupProcesses(dir: string): number[] {
  return readFileSync(join(dir, 'cgroup.procs'), 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
}

/** What a cgroup v2 is charged (memory.current) and memory.stat's split of it, in KiB; undefined without the memory controller. */
export function cgroupMemory(dir: string): { currentKiB: number; statKiB: Record<string, number> } | undefined {
  if (!existsSync(join(dir, 'memory.current'))) return undefined;
  const statKiB: Record<string, number> = {};
  for (const line of readFileSync(join(dir, 'memory.stat'), 'utf8').trim().split('\n')) {
    const [key, bytes] = line.split(' ');
    statKiB[key!] = Number(bytes) / 1024;
  }
  return { currentKiB: Number(readFileSync(join(dir, 'memory.current'), 'utf8')) / 1024, statKiB };
}

/** MemAvailable of /proc/meminfo: the kernel's estimate of what could be allocated without swapping. */
export function memAvailableKiB(): number {
  const value = /^MemAvailable:\s+(\d+) kB$/m.exec(readFileSync('/proc/meminfo', 'utf8'))?.[1];
  if (value === undefined) throw new Error('/proc/meminfo has no MemAvailable');
  return Number(value);
}

/** The host's transparent huge page setting (the bracketed choice), or why there is none. */
export function thpSetting(file: 'enabled' | 'defrag'): string {
  try {
    const text = readFileSync(`/sys/kernel/mm/transparent_hugepage/${file}`, 'utf8');
    return /\[(\w[\w+]*)\]/.exec(text)?.[1] ?? text.trim();
  } catch {
    return 'not available';
  }
}
