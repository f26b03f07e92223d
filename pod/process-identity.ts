// A process named by its pid and its start time, so that a recycled pid is
// never taken for the process it once named: `vmctr ps`, `rm` and `gc` judge
// and signal a pod's monitor through this.
import { closeSync, readFileSync } from 'node:fs';
import { constants } from 'node:os';
import { native } from '../vmm/kvm/native.js';

export interface ProcessIdentity {
  pid: number;
  /** Field 22 of /proc/<pid>/stat, clock ticks after boot; a string so that it survives JSON exactly. */
  startTime: string;
}

/** The fields of a /proc/<pid>/stat line that vmctr needs. */
export interface ProcStat {
  pid: number;
  comm: string;
  /** Field 3: R, S, D, T, Z (zombie), X (dead), ... */
  state: string;
  startTime: string;
}

/** Parses a /proc/<pid>/stat line; undefined if it is not one. */
export function parseProcStat(line: string): ProcStat | undefined {
  // comm (field 2) is up to 15 arbitrary bytes in parentheses, spaces and
  // parentheses included; every later field is a number or the state letter,
  // so the last ')' of the line closes it.
  const open = line.indexOf(' (');
  const close = line.lastIndexOf(')');
  if (open < 0 || close < open + 2 || line[close + 1] !== ' ') return undefined;
  const pid = line.slice(0, open);
  const fields = line.slice(close + 2).trimEnd().split(' ');
  const state = fields[0];
  const startTime = fields[19];
  if (!/^[1-9]\d*$/.test(pid) || state === undefined || !/^[A-Za-z]$/.test(state) || startTime === undefined || !/^\d+$/.test(startTime)) return undefined;
  return { pid: Number(pid), comm: line.slice(open + 2, close), state, startTime };
}

function readStat(pid: number): ProcStat | undefined {
  if (!Number.isSafeInteger(pid) || pid <= 0) return undefined;
  let line: string;
  try {
    // latin1: comm is bytes, not necessarily UTF-8.
    line = readFileSync(`/proc/${pid}/stat`, 'latin1');
  } catch (err) {
    // ESRCH: the process went away while the file was being read.
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ESRCH') return undefined;
    throw err;
  }
  const stat = parseProcStat(line);
  return stat?.pid === pid ? stat : undefined;
}

/** A zombie has exited and only waits to be reaped; X is the instant after. */
function exited(stat: ProcStat): boolean {
  return stat.state === 'Z' || stat.state === 'X';
}

/** The process that has `pid` now, or undefined if none has or it has exited. */
export function identify(pid: number): ProcessIdentity | undefined {
  const stat = readStat(pid);
  return stat === undefined || exited(stat) ? undefined : { pid, startTime: stat.startTime };
}

let own: ProcessIdentity | undefined;

export function self(): ProcessIdentity {
  own ??= identify(process.pid);
  if (own === undefined) throw new Error(`cannot read /proc/${process.pid}/stat`);
  return own;
}

/** True while the process `id` names runs: same pid, same start time, not a zombie. */
export function isAlive(id: ProcessIdentity): boolean {
  const stat = readStat(id.pid);
  return stat !== undefined && stat.startTime === id.startTime && !exited(stat);
}

/** Signals the process `id` names and no other; false if it has exited (and its pid may be another's now). */
export function signalProcess(id: ProcessIdentity, signal: NodeJS.Signals | number): boolean {
  const number = typeof signal === 'number' ? signal : constants.signals[signal];
  if (number === undefined) throw new TypeError(`${signal} is not a signal on this system`);
  let pidfd: number;
  try {
    pidfd = native.pidfdOpen(id.pid);
  } catch (err) {
    // The pid is now a thread's id (threads and processes share one id
    // space), so not the process `id` named: ENOENT on recent kernels
    // (6.18 here), EINVAL on older ones.
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'EINVAL') return false;
    throw err;
  }
  if (pidfd < 0) return false;
  try {
    // The pidfd refers to the process that had the pid when it was opened.
    // If that pid shows our start time now, it has been ours ever since
    // (a pid is not reused while its process lives), so the pidfd is ours
    // and the signal cannot reach a process that took the pid later.
    return isAlive(id) && native.pidfdSendSignal(pidfd, number);
  } finally {
    closeSync(pidfd);
  }
}
