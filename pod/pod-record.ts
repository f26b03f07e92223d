// What pod.json says about a pod, and what `vmctr ps` makes of it. The
// record is written by one process at a time: the CLI that creates the pod,
// then its monitor, then (for a pod whose monitor died) `rm` or `gc` holding
// the pod's lock. Whether the monitor still lives is not in the record but in
// the lock (pod-lock.ts): the kernel drops it when the monitor dies, however.
import type { ProcessIdentity } from './process-identity.js';

export const RECORD_VERSION = 1;

/**
 * starting: the monitor is preparing root filesystems or booting;
 * running: the apps run; stopping: a stop or kill is under way;
 * exited: every app ended (codes in `apps`); failed: the VM or its agent
 * failed, or the pod could not start; dead: the monitor ended the pod
 * because the foreground `vmctr run` that owned it was killed.
 */
export type PodState = 'starting' | 'running' | 'stopping' | 'exited' | 'failed' | 'dead';

export interface AppRecord {
  name: string;
  /** The app's image as given: default, a directory, a tar or an image name. */
  image: string;
  command: string[];
  exitCode?: number;
  /** Why the app did not run or end normally, one line. */
  error?: string;
}

export interface PodRecord {
  version: number;
  id: string;
  name: string;
  created: string;
  /** When its apps started. */
  started?: string;
  ended?: string;
  state: PodState;
  apps: AppRecord[];
  /** The foreground `vmctr run` the pod lives and ends with; none for a detached pod. */
  owner?: ProcessIdentity;
  /** The pod's host cgroup (pod-cgroup.ts), when the host has cgroup v2. */
  cgroup?: string;
  /** The pod's network (net/): its name, the pod's address, and its port forwards as given. */
  network?: { name: string; ip: string; ports: string[] };
  /** The monitor process (the pod's VMM), once it runs. */
  monitor?: ProcessIdentity;
  /** The pod's exit status: `vmctr run`'s, as RunExitCode documents it. */
  exitCode?: number;
  /** Why the pod ended, when not by its apps' exits. */
  error?: string;
}

/** A state in which the monitor is expected to be alive. */
export function isLiveState(state: PodState): boolean {
  return state === 'starting' || state === 'running' || state === 'stopping';
}

/** Why a pod's monitor died when the kernel's OOM killer took it: what ps, status and an attached run say. */
export const OOM_KILLED = 'the out-of-memory killer ended its monitor: the pod reached its memory limit (vmctr update --memory)';

/** The pod's status in words, given whether its monitor holds the pod's lock and, if not, whether its cgroup saw an OOM kill. */
export function describeStatus(record: PodRecord, monitorAlive: boolean, now = Date.now(), oomKilled = false): string {
  if (isLiveState(record.state)) {
    if (!monitorAlive) return `dead (${oomKilled ? OOM_KILLED : 'its monitor was killed'})`;
    if (record.state === 'running' && record.started) return `running (${uptime(now - Date.parse(record.started))})`;
    return record.state;
  }
  if (record.state === 'dead') return `dead (${record.error ?? 'its monitor was killed'})`;
  if (record.state === 'failed') return `failed (${record.error ?? 'unknown'})`;
  return `exited (${record.exitCode ?? '?'})`;
}

/** An uptime as `docker ps` words it, shortest unit first that fits. */
export function uptime(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m`;
  if (s < 86400) return `${Math.floor(s / 3600)}h${Math.floor((s % 3600) / 60)}m`;
  return `${Math.floor(s / 86400)}d${Math.floor((s % 86400) / 3600)}h`;
}

const STATES: readonly PodState[] = ['starting', 'running', 'stopping', 'exited', 'failed', 'dead'];

/** pod.json's text as a record, or undefined if it is not one (a torn or foreign file). */
export function parsePodRecord(text: string): PodRecord | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null) return undefined;
  const r = value as Partial<PodRecord>;
  if (r.version !== RECORD_VERSION || typeof r.id !== 'string' || typeof r.name !== 'string' || typeof r.created !== 'string') return undefined;
  if (!STATES.includes(r.state as PodState) || !Array.isArray(r.apps)) return undefined;
  return r as PodRecord;
}
