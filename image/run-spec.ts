import { posix } from 'node:path';
import { ImageError } from './image-error.js';
import { NO_ACCOUNTS, type Accounts, type PasswdEntry } from './accounts.js';
import type { ImageConfig } from './image-config.js';

/** What `vmctr run` flags can change, with docker's meaning. */
export interface SpecOverrides {
  /** `--entrypoint`: replaces the image's and drops its Cmd; an empty list clears it. */
  readonly entrypoint?: readonly string[];
  /** Arguments after the image name: replace the image's Cmd when not empty. */
  readonly command?: readonly string[];
  /** `-e KEY=VALUE`, applied over the image's Env. */
  readonly env?: readonly string[];
  /** `-w`: must be absolute. */
  readonly workdir?: string;
  /** `-u user[:group]`, by name or number. */
  readonly user?: string;
  /** `--group-add`, by name or number. */
  readonly groupAdd?: readonly string[];
}

export interface ExposedPort {
  readonly port: number;
  readonly protocol: string;
}

/** How to start the container's process, as the VM's agent needs it. */
export interface ContainerSpec {
  readonly args: string[];
  readonly env: string[];
  readonly cwd: string;
  readonly user: { readonly uid: number; readonly gid: number; readonly additionalGids: number[] };
  readonly exposedPorts: ExposedPort[];
  readonly volumes: string[];
  readonly labels: Record<string, string>;
  readonly stopSignal?: string;
}

export const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

function numeric(text: string): number | undefined {
  return /^\d+$/.test(text) && Number(text) <= 0xffffffff ? Number(text) : undefined;
}

interface ResolvedUser {
  readonly uid: number;
  readonly gid: number;
  readonly additionalGids: number[];
  readonly home: string;
}

// runc's rules (libcontainer/user.GetExecUser), which docker follows.
function resolveUser(spec: string, groupAdd: readonly string[], accounts: Accounts): ResolvedUser {
  const colon = spec.indexOf(':');
  const userPart = colon < 0 ? spec : spec.slice(0, colon);
  const groupPart = colon < 0 ? '' : spec.slice(colon + 1);
  const uidArg = numeric(userPart);
  let entry: PasswdEntry | undefined;
  if (userPart === '') entry = accounts.passwd.find((candidate) => candidate.uid === 0);
  else entry = accounts.passwd.find((candidate) => candidate.name === userPart || (uidArg !== undefined && candidate.uid === uidArg));
  if (userPart !== '' && entry === undefined && uidArg === undefined) {
    throw new ImageError(`unable to find user ${userPart}: no matching entries in the image's /etc/passwd`);
  }
  const uid = entry?.uid ?? uidArg ?? 0;
  let gid = entry?.gid ?? 0;
  const additional: number[] = [];

  const findGroup = (name: string) => {
    const gidArg = numeric(name);
    const group = accounts.group.find((candidate) => candidate.name === name || (gidArg !== undefined && candidate.gid === gidArg));
    if (group) return group.gid;
    if (gidArg !== undefined) return gidArg;
    throw new ImageError(`unable to find group ${name}: no matching entries in the image's /etc/group`);
  };
  if (groupPart !== '') gid = findGroup(groupPart);
  else if (entry) {
    // Without an explicit group, the user's memberships are its supplementary groups.
    for (const group of accounts.group) if (group.members.includes(entry.name)) additional.push(group.gid);
  }
  for (const name of groupAdd) additional.push(findGroup(name));
  return { uid, gid, additionalGids: [...new Set(additional)], home: entry?.home ?? '/' };
}

function mergeEnv(image: readonly string[], overrides: readonly string[]): string[] {
  const env = new Map<string, string>();
  for (const item of image) {
    const eq = item.indexOf('=');
    env.set(eq < 0 ? item : item.slice(0, eq), eq < 0 ? '' : item.slice(eq + 1));
  }
  for (const item of overrides) {
    const eq = item.indexOf('=');
    if (eq <= 0) throw new ImageError(`invalid environment variable "${item}": expected KEY=VALUE`);
    env.set(item.slice(0, eq), item.slice(eq + 1));
  }
  return [...env].map(([key, value]) => `${key}=${value}`);
}

function exposedPorts(ports: Readonly<Record<string, unknown>> | undefined): ExposedPort[] {
  return Object.keys(ports ?? {}).flatMap((key) => {
    const match = /^(\d+)(?:-(\d+))?(?:\/([a-z]+))?$/i.exec(key);
    if (!match) throw new ImageError(`invalid exposed port "${key}" in the image config`);
    const first = Number(match[1]);
    const last = match[2] === undefined ? first : Number(match[2]);
    if (first < 1 || last > 65535 || last < first) throw new ImageError(`invalid exposed port "${key}" in the image config`);
    const protocol = (match[3] ?? 'tcp').toLowerCase();
    return Array.from({ length: last - first + 1 }, (_, i) => ({ port: first + i, protocol }));
  });
}

/**
 * The process to start for an image, as `docker run` computes it: entrypoint
 * and command, environment, working directory and user (names resolved in the
 * image's accounts), plus the ports and volumes the image declares. Pure:
 * the caller reads `accounts` from the unpacked image (readAccounts).
 */
export function containerSpec(image: ImageConfig, overrides: SpecOverrides = {}, accounts: Accounts = NO_ACCOUNTS): ContainerSpec {
  const config = image.config ?? {};
  const entrypoint = overrides.entrypoint ?? config.Entrypoint ?? [];
  const command = overrides.command?.length ? overrides.command : overrides.entrypoint !== undefined ? [] : (config.Cmd ?? []);
  const args = [...entrypoint, ...command];
  if (args.length === 0) throw new ImageError('no command specified: the image has no Entrypoint or Cmd, so give one');

  if (overrides.workdir !== undefined && !posix.isAbsolute(overrides.workdir)) {
    throw new ImageError(`the working directory "${overrides.workdir}" is invalid: it needs to be an absolute path`);
  }
  const cwd = posix.normalize(posix.join('/', overrides.workdir ?? config.WorkingDir ?? '/')).replace(/(?<=.)\/+$/, '');

  const user = resolveUser(overrides.user ?? config.User ?? '', overrides.groupAdd ?? [], accounts);
  const env = mergeEnv(config.Env ?? [], overrides.env ?? []);
  if (!env.some((item) => item.startsWith('PATH='))) env.unshift(`PATH=${DEFAULT_PATH}`);
  if (!env.some((item) => item.startsWith('HOME='))) env.push(`HOME=${user.home}`);

  return {
    args,
    env,
    cwd,
    user: { uid: user.uid, gid: user.gid, additionalGids: user.additionalGids },
    exposedPorts: exposedPorts(config.ExposedPorts),
    volumes: Object.keys(config.Volumes ?? {}).sort(),
    labels: { ...(config.Labels ?? {}) },
    ...(config.StopSignal ? { stopSignal: config.StopSignal } : {}),
  };
}
