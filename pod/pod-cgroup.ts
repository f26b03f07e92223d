// A pod's host cgroup (cgroup v2): /sys/fs/cgroup/vmctr/<pod id>, holding
// its monitor (the VMM: vCPU threads, device emulation) and whatever the
// monitor starts, so the pod as a whole has a memory limit covering guest
// RAM and the VMM, a CPU quota from --cpus and a pids limit. `vmctr run`
// makes it and starts the monitor in it (before Node loads, so all of the
// monitor's memory is charged to the pod). It is removed once the monitor has exited (KVM's
// worker thread for the VM stays in it until then): by `vmctr run --rm`,
// `rm` and `gc` (cgroup.kill first, for anything still in it).
import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const CGROUP_ROOT = '/sys/fs/cgroup';
/** vmctr's own subtree: its pods' cgroups, nothing of the host's. */
const VMCTR_GROUP = 'vmctr';
const CONTROLLERS = ['cpu', 'memory', 'pids'] as const;
/** Host memory a pod's VMM needs besides guest RAM: the monitor's Node heap and code, page tables, device buffers. */
export const VMM_OVERHEAD_MIB = 160;
/** Threads and processes: the monitor's, its vCPUs', and helpers such as mke2fs. */
const PIDS_MAX = 512;
/** How long a cgroup may stay busy after its last process died (cgroup.kill is asynchronous too). */
const EMPTY_WAIT_MS = 5_000;
const EMPTY_POLL_MS = 10;
/** cpu.max's period, in microseconds (the kernel's default). */
const CPU_PERIOD_US = 100_000;

export interface CgroupLimits {
  /** memory.max, in MiB. */
  memoryMiB: number;
  /** cpu.max as a number of CPUs. */
  cpus: number;
}

export class CgroupError extends Error {}

/** The limits for a pod of `guestMemoryMiB` and `cpus`: guest RAM plus the VMM's overhead, and one CPU per vCPU. */
export function podLimits(guestMemoryMiB: number, cpus: number): CgroupLimits {
  return { memoryMiB: guestMemoryMiB + VMM_OVERHEAD_MIB, cpus };
}

/** Why pods cannot get cgroups on this host, or undefined if they can. */
export function cgroupUnavailable(root = CGROUP_ROOT): string | undefined {
  let controllers: string;
  try {
    controllers = readFileSync(join(root, 'cgroup.controllers'), 'utf8');
  } catch {
    return `cgroup v2 is not mounted at ${root}`;
  }
  const missing = CONTROLLERS.filter((c) => !controllers.split(/\s+/).includes(c));
  return missing.length ? `the cgroup v2 controllers ${missing.join(', ')} are not available at ${root}` : undefined;
}

export class PodCgroup {
  private constructor(readonly path: string) {}

  /** The ids of every pod cgroup on the host. */
  static ids(root = CGROUP_ROOT): string[] {
    try {
      return readdirSync(join(root, VMCTR_GROUP), { withFileTypes: true }).filter((e) => e.isDirectory() && /^[0-9a-f]{32}$/.test(e.name)).map((e) => e.name);
    } catch {
      return [];
    }
  }

  static of(podId: string, root = CGROUP_ROOT): PodCgroup {
    if (!/^[0-9a-f]{32}$/.test(podId)) throw new CgroupError(`bad pod id ${podId}`);
    return new PodCgroup(join(root, VMCTR_GROUP, podId));
  }

  /** Creates the pod's cgroup with `limits`, empty: `procsPath` is where its monitor is put. */
  static create(podId: string, limits: CgroupLimits, root = CGROUP_ROOT): PodCgroup {
    const group = PodCgroup.of(podId, root);
    const parent = join(root, VMCTR_GROUP);
    try {
      // The controllers must be enabled on the way down: the root's subtree, then vmctr's (which holds no process of its own).
      write(join(root, 'cgroup.subtree_control'), CONTROLLERS.map((c) => `+${c}`).join(' '));
      mkdirIfMissing(parent);
      write(join(parent, 'cgroup.subtree_control'), CONTROLLERS.map((c) => `+${c}`).join(' '));
      mkdirIfMissing(group.path);
      group.update(limits);
      write(join(group.path, 'pids.max'), String(PIDS_MAX));
    } catch (err) {
      throw new CgroupError(`cannot set up the pod's cgroup ${group.path}: ${(err as Error).message}`);
    }
    return group;
  }

  /** Writing a pid here moves that process in. */
  get procsPath(): string {
    return join(this.path, 'cgroup.procs');
  }

  /** The pod cgroup `pid` is in, if it is in one (from /proc/PID/cgroup's v2 line). */
  static ofProcess(pid: number | 'self', root = CGROUP_ROOT): PodCgroup | undefined {
    let lines: string;
    try {
      lines = readFileSync(`/proc/${pid}/cgroup`, 'utf8');
    } catch {
      return undefined;
    }
    const path = /^0::(.*)$/m.exec(lines)?.[1];
    const id = path?.match(/^\/vmctr\/([0-9a-f]{32})$/)?.[1];
    return id ? PodCgroup.of(id, root) : undefined;
  }

  exists(): boolean {
    return existsSync(this.path);
  }

  update(limits: Partial<CgroupLimits>): void {
    if (limits.memoryMiB !== undefined) write(join(this.path, 'memory.max'), String(limits.memoryMiB * 1024 * 1024));
    if (limits.cpus !== undefined) write(join(this.path, 'cpu.max'), `${Math.round(limits.cpus * CPU_PERIOD_US)} ${CPU_PERIOD_US}`);
  }

  limits(): { memoryMiB: number | 'max'; cpus: number | 'max' } {
    const memory = readFileSync(join(this.path, 'memory.max'), 'utf8').trim();
    const [quota, period] = readFileSync(join(this.path, 'cpu.max'), 'utf8').trim().split(' ');
    return {
      memoryMiB: memory === 'max' ? 'max' : Number(memory) / (1024 * 1024),
      cpus: quota === 'max' ? 'max' : Number(quota) / Number(period),
    };
  }

  /** How many processes the kernel's OOM killer has killed in it for its memory.max (memory.events); 0 if unreadable. */
  oomKills(): number {
    try {
      return Number(/^oom_kill (\d+)$/m.exec(readFileSync(join(this.path, 'memory.events'), 'utf8'))?.[1] ?? 0);
    } catch {
      return 0;
    }
  }

  /** The pids in it. */
  processes(): number[] {
    return readFileSync(join(this.path, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean).map(Number);
  }

  /**
   * Kills whatever is left in it and removes it; a cgroup that is already
   * gone is fine. A process that has just exited can still count for a few
   * milliseconds after it has closed its files (its pod lock): rmdir's EBUSY
   * is retried meanwhile.
   */
  remove(): void {
    if (!this.exists()) return;
    if (this.processes().length) write(join(this.path, 'cgroup.kill'), '1');
    const deadline = Date.now() + EMPTY_WAIT_MS;
    for (;;) {
      try {
        rmdirSync(this.path);
        return;
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'ENOENT') return;
        if (code !== 'EBUSY' || Date.now() > deadline) throw new CgroupError(`cannot remove the pod's cgroup ${this.path}: ${(err as Error).message}`);
      }
      sleep(EMPTY_POLL_MS);
    }
  }
}

function write(path: string, value: string): void {
  writeFileSync(path, value);
}

/** mkdir that tolerates another vmctr having made it first. */
function mkdirIfMissing(path: string): void {
  try {
    mkdirSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
}

/** A short synchronous pause: cgroup removal is a few ms of waiting, not worth an async API through rm and gc. */
function sleep(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}
