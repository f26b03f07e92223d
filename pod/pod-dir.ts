// A pod's state on the host: <root>/pods/<name>/ holds its record
// (pod.json), its lock, its monitor's control socket, the guest console log,
// the apps' logs and the pod's own disk images.
//
// A pod directory appears whole: it is assembled under pods/.staging/, its
// lock taken and its first record written, then renamed into place. So a
// name is claimed atomically (rename fails on a directory that is not
// empty), and no other command ever sees a pod directory without its lock
// and record: `gc` never takes one that is still being created for garbage.
import { randomBytes } from 'node:crypto';
import { mkdir, open, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { PodLock } from './pod-lock.js';
import { parsePodRecord, type PodRecord } from './pod-record.js';

/** A pod's name, and an app's within a pod (monitor/app-log.ts): safe as a file name, never '.' or '..'. */
export const NAME_PATTERN = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$/;
/** A Unix socket's path is at most 107 bytes (sun_path). */
const MAX_SOCKET_PATH = 107;
/** Staging directories older than this belong to a vmctr that died while creating a pod. */
export const STAGING_GRACE_MS = 60_000;

export class PodNameError extends Error {}

export class PodDir {
  private constructor(
    readonly path: string,
    readonly name: string,
  ) {}

  /** The state root the pod is under (`<root>/pods/<name>`). */
  get root(): string {
    return dirname(dirname(this.path));
  }

  get recordPath(): string {
    return join(this.path, 'pod.json');
  }
  get lockPath(): string {
    return join(this.path, 'lock');
  }
  /** The monitor's control socket (monitor/PROTOCOL.md). */
  get controlSocket(): string {
    return join(this.path, 'control.sock');
  }
  /** What the monitor is to run (monitor/launch.ts). */
  get launchPath(): string {
    return join(this.path, 'launch.json');
  }
  /** The monitor's own stderr: its crash, if it crashes. */
  get monitorLog(): string {
    return join(this.path, 'monitor.log');
  }
  get consoleLog(): string {
    return join(this.path, 'console.log');
  }
  /** The pod's volumes as the guest sees them (pod/volume-backend.ts): a directory per volume. */
  get volumesDir(): string {
    return join(this.path, 'volumes');
  }
  /** virtiofsd's vhost-user socket: shorter than the control socket's name, so within sun_path as that one is. */
  get volumesSocket(): string {
    return join(this.path, 'fs.sock');
  }
  get volumesLog(): string {
    return join(this.path, 'virtiofsd.log');
  }
  /** The pod's writable layer, a sparse ext4 disk (pod/layer-disk.ts). */
  get layerDisk(): string {
    return join(this.path, 'layer.ext4');
  }
  get logsDir(): string {
    return join(this.path, 'logs');
  }

  /** Where a disk image private to this pod goes. */
  disk(name: string): string {
    return join(this.path, name);
  }

  /**
   * Creates the pod `record` describes under `root`/pods, named record.name
   * (or pod-<id> when it is empty), with its lock held by the caller and
   * pod.json written, or fails with a PodNameError for a bad or taken name.
   */
  static async create(root: string, record: PodRecord): Promise<{ dir: PodDir; lock: PodLock }> {
    if (record.name && !NAME_PATTERN.test(record.name)) {
      throw new PodNameError(`invalid pod name "${record.name}": use letters, digits, '_', '.' and '-', starting with a letter or digit`);
    }
    const name = record.name || `pod-${record.id.slice(0, 8)}`;
    const pods = join(root, 'pods');
    const target = join(pods, name);
    if (Buffer.byteLength(join(target, 'control.sock')) > MAX_SOCKET_PATH) {
      throw new PodNameError(`the pod's control socket path would be too long (${join(target, 'control.sock')}): use a shorter --root or name`);
    }
    if (await stat(target).then(() => true, () => false)) throw taken(name);
    const staging = join(pods, '.staging', record.id);
    await mkdir(staging, { recursive: true });
    const dir = new PodDir(staging, name);
    const lock = PodLock.tryAcquire(dir.lockPath);
    if (!lock) throw new Error(`cannot lock ${dir.lockPath}`);
    try {
      await dir.writeRecord({ ...record, name });
      try {
        await rename(staging, target);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'ENOTEMPTY' || code === 'EEXIST') throw taken(name);
        throw err;
      }
    } catch (err) {
      lock.release();
      await rm(staging, { recursive: true, force: true });
      throw err;
    }
    return { dir: new PodDir(target, name), lock };
  }

  static open(root: string, name: string): PodDir {
    if (!NAME_PATTERN.test(name)) throw new PodNameError(`invalid pod name "${name}"`);
    return new PodDir(join(root, 'pods', name), name);
  }

  /** The pod directory at `path` (the monitor is given its pod's path). */
  static at(path: string): PodDir {
    return new PodDir(path, basename(path));
  }

  /** The pod named `nameOrId`, or whose id starts with it (at least 4 characters, one match). */
  static async find(root: string, nameOrId: string): Promise<PodDir | undefined> {
    if (NAME_PATTERN.test(nameOrId)) {
      const dir = PodDir.open(root, nameOrId);
      if (await dir.exists()) return dir;
    }
    if (!/^[0-9a-f]{4,32}$/.test(nameOrId)) return undefined;
    const matches: PodDir[] = [];
    for (const dir of await PodDir.list(root)) {
      if ((await dir.readRecord())?.id.startsWith(nameOrId)) matches.push(dir);
    }
    if (matches.length > 1) throw new PodNameError(`"${nameOrId}" names ${matches.length} pods: give more of the id, or the name`);
    return matches[0];
  }

  /** Every pod directory under `root`, by name. */
  static async list(root: string): Promise<PodDir[]> {
    const names = await readdir(join(root, 'pods')).catch(() => [] as string[]);
    return names.filter((n) => NAME_PATTERN.test(n)).sort().map((n) => new PodDir(join(root, 'pods', n), n));
  }

  /** Staging directories left by a vmctr that died while creating a pod (their lock is free and they are old). */
  static async abandonedStaging(root: string, now = Date.now()): Promise<string[]> {
    const staging = join(root, 'pods', '.staging');
    const found: string[] = [];
    for (const entry of await readdir(staging).catch(() => [] as string[])) {
      const path = join(staging, entry);
      const age = now - ((await stat(path).catch(() => undefined))?.mtimeMs ?? now);
      if (age > STAGING_GRACE_MS && !PodLock.isHeld(join(path, 'lock'))) found.push(path);
    }
    return found;
  }

  /** Writes pod.json so that a reader sees the old record or the new one, even after a crash: a temporary file of its own, fsync, rename, fsync of the directory. */
  async writeRecord(record: PodRecord): Promise<void> {
    const tmp = join(this.path, `.pod.json.${process.pid}.${randomBytes(4).toString('hex')}`);
    const file = await open(tmp, 'wx', 0o644);
    try {
      await file.writeFile(JSON.stringify(record, null, 2) + '\n');
      await file.sync();
    } finally {
      await file.close();
    }
    await rename(tmp, this.recordPath);
    const dir = await open(this.path, 'r');
    try {
      await dir.sync();
    } finally {
      await dir.close();
    }
  }

  async readRecord(): Promise<PodRecord | undefined> {
    return parsePodRecord(await readFile(this.recordPath, 'utf8').catch(() => ''));
  }

  async exists(): Promise<boolean> {
    return stat(this.path).then(() => true, () => false);
  }

  /** True while the pod's monitor (or the vmctr creating it) lives. */
  isLocked(): boolean {
    return PodLock.isHeld(this.lockPath);
  }

  async remove(): Promise<void> {
    await rm(this.path, { recursive: true, force: true });
  }
}

function taken(name: string): PodNameError {
  return new PodNameError(`a pod named "${name}" already exists: remove it with vmctr rm ${name}`);
}

export function newPodId(): string {
  return randomBytes(16).toString('hex');
}
