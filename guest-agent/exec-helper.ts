/**
 * The agent's side of the vmctr-exec contract (see exec/vmctr-exec.c): the
 * command line for one container process, the control lines the agent
 * writes to fd 3 and the status lines it reads from fd 4.
 */
import type { ContainerSpec, ExitStatus } from './protocol.js';
import type { ResolvedUser } from './users.js';

export const CONTROL_FD = 3;
export const STATUS_FD = 4;
/** A process joining a running container gets that container's UTS namespace open on this fd. */
export const UTS_FD = 5;

/** `cgroup`: the app's cgroup directory in the guest, which the helper joins before it forks the process. */
export function helperArgs(spec: ContainerSpec, user: ResolvedUser, root: string, cgroup?: string): string[] {
  const args = ['--root', root, '--cwd', spec.cwd ?? '/', '--uid', String(user.uid), '--gid', String(user.gid)];
  if (cgroup !== undefined) args.push('--cgroup', cgroup);
  args.push('--groups', user.groups.join(','));
  if (spec.hostname) args.push('--hostname', spec.hostname);
  if ('container' in spec.rootfs) args.push('--join-uts', String(UTS_FD));
  for (const limit of spec.rlimits ?? []) args.push('--rlimit', `${limit.type}=${limit.soft}:${limit.hard}`);
  if (spec.tty) args.push('--tty', String(spec.tty.rows), String(spec.tty.cols));
  return [...args, '--', ...spec.args];
}

export type HelperStatus =
  | { kind: 'started'; pid: number }
  | { kind: 'error'; code: number; message: string }
  | { kind: 'exit'; status: ExitStatus };

export function parseStatusLine(line: string): HelperStatus | undefined {
  const [word, value = '', ...rest] = line.split(' ');
  const n = Number(value);
  if (!Number.isInteger(n)) return undefined;
  switch (word) {
    case 'started': return { kind: 'started', pid: n };
    case 'error': return { kind: 'error', code: n, message: rest.join(' ') };
    case 'exit': return { kind: 'exit', status: { code: n } };
    case 'signal': return { kind: 'exit', status: { signal: n } };
    default: return undefined;
  }
}

export const controlLine = {
  signal: (signal: number): string => `signal ${signal}\n`,
  resize: (rows: number, cols: number): string => `resize ${rows} ${cols}\n`,
};
