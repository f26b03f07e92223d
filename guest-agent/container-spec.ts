/**
 * Checks a start message from the host field by field, so a malformed request
 * fails that one container with a one-line reason instead of the agent.
 */
import type { ContainerSpec, JoinedRootfs, LayerSpec, Rlimit, RootfsSpec, StartMessage, VolumeMount } from './protocol.js';
import { encodeUtf8 } from './utf8.js';

export class SpecError extends Error {
  override name = 'SpecError';
}

type Fields = Record<string, unknown>;

const isString = (v: unknown): v is string => typeof v === 'string';
const isCleanString = (v: unknown): v is string => isString(v) && !v.includes('\0');
const isDimension = (v: unknown): v is number => Number.isInteger(v) && (v as number) > 0 && (v as number) <= 0xffff;
/** A process id chosen by the host. */
const isId = (v: unknown): v is number => Number.isInteger(v) && (v as number) > 0 && (v as number) <= 0xffffffff;

/** Bounds on list lengths, below the exec helper's own (its argv, MAX_GROUPS, MAX_RLIMITS). */
const MAX_STRINGS = 2048;
const MAX_GROUPS = 200;
const MAX_RLIMITS = 16;
/** /etc/resolv.conf and /etc/hosts of a networked pod: a few lines each. */
const MAX_ETC_FILE_BYTES = 64 * 1024;
/** The host's bound on a container's volume mounts (pod/volume-spec.ts). */
const MAX_VOLUMES = 16;
/** A volume's name: a directory of the pod's virtio-fs device, as the host names volumes. */
const VOLUME_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$/;
const MAX_PATH_BYTES = 4096;

function stringList(value: unknown, field: string, max = MAX_STRINGS): string[] {
  if (!Array.isArray(value) || !value.every(isCleanString)) throw new SpecError(`${field} must be a list of strings`);
  if (value.length > max) throw new SpecError(`${field} has ${value.length} items, at most ${max} allowed`);
  return value;
}

function rootfs(value: unknown): RootfsSpec | JoinedRootfs {
  const v = (value ?? {}) as Fields;
  if (v.container !== undefined) {
    if (!isId(v.container)) throw new SpecError('rootfs container must be a process id from 1 to 2^32-1');
    return { container: v.container };
  }
  if (isCleanString(v.device) && isCleanString(v.fstype) && v.device.startsWith('/')) {
    return { device: v.device, fstype: v.fstype, ...(v.layer === undefined ? {} : { layer: layer(v.layer) }) };
  }
  if (isString(v.share)) {
    if (!SHARE_NAME.test(v.share)) throw new SpecError('rootfs share must be a directory name of letters, digits, "_", "." or "-"');
    return { share: v.share, ...(v.layer === undefined ? {} : { layer: layer(v.layer) }) };
  }
  // A directory becomes overlayfs's lowerdir option: its separators would smuggle in other options.
  if (isCleanString(v.directory) && v.directory.startsWith('/') && !/[,:\\]/.test(v.directory)) return { directory: v.directory };
  throw new SpecError('rootfs must be {device, fstype}, {share} or {directory} with absolute paths (a directory without , : or \\), or {container}');
}

/** A directory of the layer disk: one name, so it stays on the layer. */
const LAYER_DIRECTORY = /^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,62}$/;
/** A directory of the pod's virtio-fs device: one name, so it stays on the device (and out of overlayfs's options). */
const SHARE_NAME = LAYER_DIRECTORY;

function layer(value: unknown): LayerSpec {
  const v = (value ?? {}) as Fields;
  if (!isCleanString(v.device) || !v.device.startsWith('/') || !isCleanString(v.fstype) || !isString(v.directory) || !LAYER_DIRECTORY.test(v.directory)) {
    throw new SpecError('rootfs layer must be {device, fstype, directory}: an absolute device path and a directory name of letters, digits, "_", "." or "-"');
  }
  return { device: v.device, fstype: v.fstype, directory: v.directory };
}

function limit(value: unknown): number | 'unlimited' {
  if (value === 'unlimited' || (Number.isSafeInteger(value) && (value as number) >= 0)) return value as number | 'unlimited';
  throw new SpecError(`rlimit value must be a non-negative integer or "unlimited"`);
}

function rlimits(value: unknown): Rlimit[] {
  if (!Array.isArray(value)) throw new SpecError('rlimits must be a list');
  if (value.length > MAX_RLIMITS) throw new SpecError(`rlimits has ${value.length} items, at most ${MAX_RLIMITS} allowed`);
  return value.map((item: Fields) => {
    if (!isString(item?.type) || !/^[a-z]+$/.test(item.type)) throw new SpecError('rlimit type must be a name like "nofile"');
    return { type: item.type, soft: limit(item.soft), hard: limit(item.hard) };
  });
}

/** An absolute path without "." or ".." components: it cannot leave the container's root by its own spelling. */
const isTarget = (v: unknown): v is string =>
  isCleanString(v) && v.startsWith('/') && v !== '/' && encodeUtf8(v).byteLength <= MAX_PATH_BYTES && !v.split('/').some((c) => c === '.' || c === '..');

function volumes(value: unknown): VolumeMount[] {
  if (!Array.isArray(value)) throw new SpecError('volumes must be a list');
  if (value.length > MAX_VOLUMES) throw new SpecError(`volumes has ${value.length} items, at most ${MAX_VOLUMES} allowed`);
  return value.map((item: Fields) => {
    if (!isString(item?.name) || !VOLUME_NAME.test(item.name)) throw new SpecError('volume name must be 1 to 63 letters, digits, "_", "." or "-", starting with a letter or digit');
    if (!isTarget(item.target)) throw new SpecError('volume target must be an absolute path other than / without . or .. components');
    if (typeof item.readOnly !== 'boolean') throw new SpecError('volume readOnly must be true or false');
    return { name: item.name, target: item.target, readOnly: item.readOnly };
  });
}

export function parseStart(body: Fields): StartMessage {
  if (!isId(body.id)) throw new SpecError('id must be an integer from 1 to 2^32-1');
  const args = stringList(body.args, 'args');
  if (args.length === 0 || args[0] === '') throw new SpecError('args must name a command');
  const spec: ContainerSpec = { rootfs: rootfs(body.rootfs), args };
  if (body.env !== undefined) spec.env = stringList(body.env, 'env');
  if (body.cwd !== undefined) {
    if (!isCleanString(body.cwd) || !body.cwd.startsWith('/')) throw new SpecError('cwd must be an absolute path');
    spec.cwd = body.cwd;
  }
  if (body.hostname !== undefined) {
    // The kernel's limit; the agent passes it on a command line.
    if (!isString(body.hostname) || !/^[A-Za-z0-9][A-Za-z0-9.-]{0,63}$/.test(body.hostname)) throw new SpecError('hostname must be a host name of up to 64 characters');
    if ('container' in spec.rootfs) throw new SpecError('hostname cannot be set when joining a container: the process has the container\'s');
    spec.hostname = body.hostname;
  }
  if (body.network !== undefined) {
    const network = body.network as Fields;
    const file = (v: unknown): v is string => isCleanString(v) && encodeUtf8(v).byteLength <= MAX_ETC_FILE_BYTES;
    if (typeof network !== 'object' || network === null || !file(network.resolvConf) || !file(network.hosts)) {
      throw new SpecError(`network must be {resolvConf, hosts}: texts of at most ${MAX_ETC_FILE_BYTES} bytes`);
    }
    if ('container' in spec.rootfs) throw new SpecError('network cannot be set when joining a container: the process has the container\'s');
    spec.network = { resolvConf: network.resolvConf, hosts: network.hosts };
  }
  if (body.volumes !== undefined) {
    if ('container' in spec.rootfs) throw new SpecError('volumes cannot be set when joining a container: the process has the container\'s');
    spec.volumes = volumes(body.volumes);
  }
  if (body.user !== undefined) {
    if (!isCleanString(body.user) || body.user.includes('\n')) throw new SpecError('user must be a string');
    spec.user = body.user;
  }
  if (body.additionalGroups !== undefined) spec.additionalGroups = stringList(body.additionalGroups, 'additionalGroups', MAX_GROUPS);
  if (body.stdin !== undefined) {
    if (typeof body.stdin !== 'boolean') throw new SpecError('stdin must be true or false');
    spec.stdin = body.stdin;
  }
  if (body.tty !== undefined) {
    const tty = body.tty as Fields;
    if (!isDimension(tty?.rows) || !isDimension(tty?.cols)) throw new SpecError('tty must be {rows, cols} from 1 to 65535');
    spec.tty = { rows: tty.rows, cols: tty.cols };
  }
  if (body.rlimits !== undefined) spec.rlimits = rlimits(body.rlimits);
  return { id: body.id, ...spec };
}
