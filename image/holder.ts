import { identify } from '../pod/process-identity.js';

/**
 * A process as lock files and pins name it: its pid plus its start time from
 * /proc, because pids are reused and a bare pid can make a dead holder look alive.
 */
export interface Holder {
  readonly pid: number;
  readonly start: string;
}

/** The process's start time, as pod/process-identity.ts reads it (a zombie has none: it holds nothing). */
function startTime(pid: number): string | undefined {
  return identify(pid)?.startTime;
}

let self: Holder | undefined;

export function currentHolder(): Holder {
  self ??= { pid: process.pid, start: startTime(process.pid) ?? '0' };
  return self;
}

export function holderAlive(holder: Holder): boolean {
  return startTime(holder.pid) === holder.start;
}

/** `PID-START`, used in the names of files that belong to one process. */
export function holderTag(holder: Holder = currentHolder()): string {
  return `${holder.pid}-${holder.start}`;
}

/** Reads the holder back from a name that starts with its tag (`PID-START-…`). */
export function holderFromName(name: string): Holder | undefined {
  const match = /^(\d+)-(\d+)(?:-|$)/.exec(name);
  return match ? { pid: Number(match[1]), start: match[2]! } : undefined;
}
