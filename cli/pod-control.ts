// What the pod commands (ps, status, attach, logs, exec, stop, kill, rm, gc)
// share: finding a pod by name or id, its truthful status, and ending a pod
// and removing it without ever deleting a directory a live monitor uses.
import { existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { storeRoot } from '../image/store-root.js';
import { request } from '../monitor/client.js';
import { PodNetworks } from '../net/pod-network.js';
import { PodCgroup } from '../pod/pod-cgroup.js';
import { PodDir, PodNameError } from '../pod/pod-dir.js';
import { PodLock } from '../pod/pod-lock.js';
import { describeStatus, isLiveState, type PodRecord } from '../pod/pod-record.js';
import { isAlive, signalProcess } from '../pod/process-identity.js';
import { UserError } from './user-error.js';

/**
 * How long rm waits for a pod that is ending or killed before it SIGKILLs the
 * monitor, and then again for the monitor to be gone. A VM's teardown is the
 * kernel freeing its memory and page tables: in the nested lab, 20 pods killed
 * at once took more than 15 s for the last.
 */
const END_WAIT_MS = 60_000;
/** How often a pod being ended is asked again (a monitor still starting has no socket yet). */
const END_RETRY_MS = 500;

export interface PodView {
  dir: PodDir;
  record: PodRecord | undefined;
  monitorAlive: boolean;
  status: string;
}

/** The pod's status as `ps` shows it: the record, corrected by whether its monitor and its owner still live. */
export function viewOf(dir: PodDir, record: PodRecord | undefined): PodView {
  const monitorAlive = dir.isLocked();
  if (!record) return { dir, record, monitorAlive, status: monitorAlive ? 'starting' : 'incomplete (vmctr died while creating it)' };
  // A foreground pod ends with its `vmctr run`: once that is gone the monitor is ending the pod, whatever the record says yet.
  const ownerGone = isLiveState(record.state) && record.owner !== undefined && !isAlive(record.owner);
  const oomKilled = !monitorAlive && isLiveState(record.state) && record.cgroup !== undefined && PodCgroup.of(record.id).oomKills() > 0;
  // The OOM killer first: a foreground pod's `vmctr run` exits once its monitor is gone, whoever killed that.
  const status = ownerGone && !oomKilled ? 'dead (its vmctr was killed)' : describeStatus(record, monitorAlive, Date.now(), oomKilled);
  return { dir, record, monitorAlive, status };
}

export async function findPod(rootFlagValue: string | undefined, nameOrId: string): Promise<PodView> {
  let dir: PodDir | undefined;
  try {
    dir = await PodDir.find(storeRoot(rootFlagValue), nameOrId);
  } catch (err) {
    if (err instanceof PodNameError) throw new UserError(err.message);
    throw err;
  }
  if (!dir) throw new UserError(`no pod named "${nameOrId}"`);
  return viewOf(dir, await dir.readRecord());
}

/** A pod that runs, with its control socket; else a one-line error. */
export function requireRunning(pod: PodView): PodView {
  if (!pod.monitorAlive || !pod.record || !isLiveState(pod.record.state)) throw new UserError(`pod "${pod.dir.name}" is not running (${pod.status})`);
  return pod;
}

/**
 * Removes a pod: at once when its monitor is gone; a pod that is ending is
 * waited for; a running one only with `force`, after ending its VM (asking its
 * monitor, then SIGKILL to the monitor process named by pid and start time).
 * The directory is deleted while holding the pod's lock, so no monitor can
 * be using it.
 */
export async function removePod(pod: PodView, force: boolean): Promise<void> {
  let lock = PodLock.tryAcquire(pod.dir.lockPath);
  if (!lock) {
    const ending = !pod.record || !isLiveState(pod.record.state) || pod.record.state === 'stopping' || pod.status.startsWith('dead');
    if (!ending && !force) throw new UserError(`pod "${pod.dir.name}" is running: stop it first or use --force`);
    lock = await endPod(pod.dir, force);
  }
  try {
    await releasePod(pod.dir);
  } finally {
    lock.release();
  }
}

/** Removes the pod in `dir` if its monitor is gone (its lock free); a live one is left alone. */
export async function removeDeadPod(dir: PodDir): Promise<void> {
  const lock = PodLock.tryAcquire(dir.lockPath);
  if (!lock) return;
  try {
    await releasePod(dir);
  } finally {
    lock.release();
  }
}

/** Everything a pod holds on the host, its monitor gone (the caller holds its lock): its network, its cgroup, then its directory. */
async function releasePod(dir: PodDir): Promise<void> {
  const record = await dir.readRecord();
  if (record?.network) await new PodNetworks(dir.root).detach(record.id);
  if (record) PodCgroup.of(record.id).remove();
  await dir.remove();
}

/** Waits for the pod's lock, ending the pod first when `kill`; the lock, or a one-line error. */
async function endPod(dir: PodDir, kill: boolean): Promise<PodLock> {
  const deadline = Date.now() + END_WAIT_MS;
  while (Date.now() < deadline) {
    if (kill) void request(dir.controlSocket, { op: 'kill' }).catch(() => {});
    const lock = await PodLock.acquire(dir.lockPath, END_RETRY_MS);
    if (lock) return lock;
  }
  const monitor = (await dir.readRecord())?.monitor;
  if (kill && monitor && signalProcess(monitor, 'SIGKILL')) {
    const lock = await PodLock.acquire(dir.lockPath, END_WAIT_MS);
    if (lock) return lock;
  }
  throw new UserError(`pod "${dir.name}" did not end within ${END_WAIT_MS / 1000} s${monitor ? `: its monitor is pid ${monitor.pid}` : ''}`);
}

/**
 * `vmctr gc`: pods whose monitor died without a final record (the lock is
 * free but the record says it runs), directories without a record, and
 * staging directories of a vmctr that died creating a pod. Returns what it
 * removed.
 */
export async function collectGarbage(root: string): Promise<string[]> {
  const removed: string[] = [];
  for (const dir of await PodDir.list(root)) {
    let lock: PodLock | undefined;
    try {
      lock = PodLock.tryAcquire(dir.lockPath);
    } catch {
      continue; // removed meanwhile
    }
    if (!lock) continue;
    try {
      const record = await dir.readRecord();
      if (record && !isLiveState(record.state)) continue;
      await releasePod(dir);
      removed.push(dir.name);
    } finally {
      lock.release();
    }
  }
  for (const path of await PodDir.abandonedStaging(root)) {
    await rm(path, { recursive: true, force: true });
    removed.push(path);
  }
  // Cgroups of pods whose directory is gone (a `run --rm` whose CLI was killed): empty ones only, a running VMM keeps its own.
  const known = new Set<string>();
  for (const dir of await PodDir.list(root)) {
    const id = (await dir.readRecord())?.id;
    if (id) known.add(id);
  }
  // Networks' leftovers of pods that are gone (a monitor killed with SIGKILL whose pod was then removed), where pods had networks.
  const networks = new PodNetworks(root);
  if (existsSync(networks.store.dir)) {
    const live = new Set<string>();
    for (const dir of await PodDir.list(root)) if (dir.isLocked()) live.add((await dir.readRecord())?.id ?? '');
    removed.push(...(await networks.gcLeftovers((id) => live.has(id))));
  }
  for (const id of PodCgroup.ids()) {
    const group = PodCgroup.of(id);
    if (known.has(id) || group.processes().length > 0) continue;
    group.remove();
    removed.push(group.path);
  }
  return removed;
}
