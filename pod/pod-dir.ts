// A pod's state on the host: <root>/pods/<name>/ holds pod.json, the guest
// console log and the pod's own disk images. Creating the directory claims
// the name (mkdir is atomic), so two `vmctr run --name x` cannot both win.
// A vmctr killed with SIGKILL leaves a record whose pid is gone: `vmctr ps`
// shows it as such and `vmctr rm` removes it.
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';

export interface PodRecord {
  name: string;
  /** What the root filesystem came from, as given on the command line. */
  rootfs: string;
  command: string[];
  /** The vmctr process that runs the VM. */
  pid: number;
  created: string;
  state: 'running' | 'exited';
  exitCode?: number;
  /** Why the pod ended, if not by its container's exit. */
  error?: string;
}

export type PodStatus = PodRecord & { status: string };

/** A pod's name, and an app's within a pod (monitor/app-log.ts): safe as a file name, never '.' or '..'. */
export const NAME_PATTERN = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$/;

export class PodNameError extends Error {}

export class PodDir {
  private constructor(
    readonly path: string,
    readonly name: string,
  ) {}

  get consoleLog(): string {
    return join(this.path, 'console.log');
  }

  /** Where a disk image private to this pod goes. */
  disk(name: string): string {
    return join(this.path, name);
  }

  /** Claims `name` (or a generated one) under `root`/pods. */
  static async create(root: string, name?: string): Promise<PodDir> {
    if (name !== undefined && !NAME_PATTERN.test(name)) {
      throw new PodNameError(`invalid pod name "${name}": use letters, digits, '_', '.' and '-', starting with a letter or digit`);
    }
    const pods = join(root, 'pods');
    await mkdir(pods, { recursive: true });
    const chosen = name ?? `pod-${randomBytes(4).toString('hex')}`;
    const path = join(pods, chosen);
    try {
      await mkdir(path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw new PodNameError(`a pod named "${chosen}" already exists: remove it with vmctr rm ${chosen}`);
      throw err;
    }
    return new PodDir(path, chosen);
  }

  static open(root: string, name: string): PodDir {
    if (!NAME_PATTERN.test(name)) throw new PodNameError(`invalid pod name "${name}"`);
    return new PodDir(join(root, 'pods', name), name);
  }

  /** Writes pod.json atomically. */
  async write(record: PodRecord): Promise<void> {
    const tmp = join(this.path, 'pod.json.tmp');
    await writeFile(tmp, JSON.stringify(record, null, 2) + '\n');
    await rename(tmp, join(this.path, 'pod.json'));
  }

  async read(): Promise<PodRecord | undefined> {
    try {
      return JSON.parse(await readFile(join(this.path, 'pod.json'), 'utf8')) as PodRecord;
    } catch {
      return undefined;
    }
  }

  async exists(): Promise<boolean> {
    return stat(this.path).then(() => true, () => false);
  }

  async remove(): Promise<void> {
    await rm(this.path, { recursive: true, force: true });
  }

  /** Every pod under `root`, with a status that accounts for a vmctr that died. */
  static async list(root: string): Promise<PodStatus[]> {
    const names = await readdir(join(root, 'pods')).catch(() => [] as string[]);
    const pods: PodStatus[] = [];
    for (const name of names.sort()) {
      const record = await PodDir.open(root, name).read();
      if (record) pods.push({ ...record, status: statusOf(record) });
      else pods.push({ name, rootfs: '?', command: [], pid: 0, created: '', state: 'exited', status: 'incomplete (vmctr died while creating it)' });
    }
    return pods;
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export function isRunning(record: PodRecord): boolean {
  return record.state === 'running' && alive(record.pid);
}

function statusOf(record: PodRecord): string {
  if (record.state === 'running') return alive(record.pid) ? 'running' : 'dead (its vmctr was killed)';
  if (record.error) return `failed (${record.error})`;
  return `exited (${record.exitCode})`;
}
