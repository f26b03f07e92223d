import { readFileSync } from 'node:fs';

/**
 * A process as lock files and pins name it: its pid plus its start time from
 * /proc, because pids are reused and a bare pid can make a dead holder look alive.
 */
export interface Holder {
  readonly pid: number;
  readonly start: string;
}

// Field 22 of /proc/PID/stat; the command name (field 2) may itself hold spaces and parentheses.
function startTime(pid: number): string | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
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
