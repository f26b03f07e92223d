// A pod's volumes and each app's mounts of them, as pure data, in rkt's
// model: the pod declares each volume once, by name, a host directory
// (kind host) or a directory that starts empty and lasts as long as the pod
// (kind empty), and each app mounts the ones it wants where it wants them.
// All of a pod's volumes reach the guest through one virtio-fs device. Run's
// flags (cli/volume-flags.ts) and a pod manifest (pod-spec.ts) give them as
// drafts, which checkVolumes and checkMounts check with no filesystem;
// volume-source.ts then checks each host source on the host.
import { posix, resolve } from 'node:path';
import { SAFE_NAME, SAFE_NAME_EXPECTED, shown } from './spec-text.js';

export const VOLUME_KINDS = ['host', 'empty'] as const;
export type VolumeKind = (typeof VOLUME_KINDS)[number];

export interface VolumeSpec {
  /** Unique in the pod; matches SAFE_NAME. */
  name: string;
  kind: VolumeKind;
  /** Kind host only: an absolute, resolved host path (volume-source.ts makes it the directory's real path). */
  source?: string;
  /** Read-only in every app that mounts it. */
  readOnly: boolean;
}

export interface MountSpec {
  /** The name of one of the pod's volumes. */
  volume: string;
  /** Where the app sees the volume: absolute and normalised, never `/`, no `..`. */
  target: string;
  /** Read-only in this app: the mount asks for it, or the volume is read-only. */
  readOnly: boolean;
}

/** Volumes of a pod: each gives the guest's virtio-fs device one more shared directory. */
export const MAX_VOLUMES = 8;
/** Mounts of an app, the agent's bound too (guest-agent/container-spec.ts). */
export const MAX_MOUNTS = 16;
/** A host source or a target, in bytes: Linux's PATH_MAX. */
export const MAX_PATH_BYTES = 4096;

export const KIND_EXPECTED = VOLUME_KINDS.map((k) => `"${k}"`).join(' or ');

/** A volume or mount that cannot be: one line, naming where it was given and the field at fault. */
export class VolumeSpecError extends Error {
  override name = 'VolumeSpecError';
}

/** Where a volume or a mount was given, for its errors. */
export interface Origin {
  /** As an error about another one names it: `volumes[0]`, `--volume data,kind=host,source=/srv`. */
  readonly label: string;
  /** Where its field `name` was given, as an error about it starts: `pod.json: volumes[1].source`, `--volume data,kind=host: source`. */
  field(name: keyof VolumeSpec | keyof MountSpec): string;
}

/** A volume as given, before checkVolumes: its kind and source as written. */
export interface VolumeDraft {
  name: string;
  kind: string | undefined;
  source: string | undefined;
  readOnly: boolean;
  origin: Origin;
}

/** A mount as given, before checkMounts. */
export interface MountDraft {
  volume: string;
  target: string;
  readOnly: boolean;
  origin: Origin;
}

/** A path's problem as a string gives it (empty, NUL, too long), if it has one. */
function pathProblem(path: string, expected: string): string | undefined {
  if (path === '') return `expected ${expected}, got ""`;
  if (path.includes('\0')) return `expected a path without NUL characters, got ${shown(path)}`;
  const bytes = Buffer.byteLength(path);
  if (bytes > MAX_PATH_BYTES) return `expected a path of at most ${MAX_PATH_BYTES} bytes, got ${bytes}`;
  return undefined;
}

/**
 * The pod's volumes from their drafts: each name valid and unique, each kind
 * host or empty, a source for kind host only. A relative source is resolved
 * against `base`, the directory it was given from (a manifest's, or the
 * working directory for the command line).
 */
export function checkVolumes(drafts: readonly VolumeDraft[], base: string): VolumeSpec[] {
  const named = new Map<string, Origin>();
  return drafts.map(({ name, kind, source, readOnly, origin }) => {
    const fail = (field: keyof VolumeSpec, problem: string) => new VolumeSpecError(`${origin.field(field)}: ${problem}`);
    if (!SAFE_NAME.test(name)) throw fail('name', `expected ${SAFE_NAME_EXPECTED}, got ${shown(name)}`);
    const other = named.get(name);
    if (other) throw fail('name', `${shown(name)} is already the name of ${other.label}`);
    named.set(name, origin);
    if (kind !== 'host' && kind !== 'empty') throw fail('kind', `expected ${KIND_EXPECTED}, got ${kind === undefined ? 'nothing' : shown(kind)}`);
    if (kind === 'empty') {
      if (source !== undefined) throw fail('source', 'only a volume of kind "host" has a source');
      return { name, kind, readOnly };
    }
    if (source === undefined) throw fail('source', 'expected a host directory (a volume of kind "host" needs one), got nothing');
    const given = pathProblem(source, 'a host directory');
    if (given) throw fail('source', given);
    const absolute = resolve(base, source);
    const resolved = pathProblem(absolute, 'a host directory');
    if (resolved) throw fail('source', resolved);
    return { name, kind, source: absolute, readOnly };
  });
}

/** A mount's target, normalised (`/data//x/` is `/data/x`), or its problem. */
function mountTarget(target: string): { target: string } | { problem: string } {
  const problem = pathProblem(target, 'an absolute path');
  if (problem) return { problem };
  if (!target.startsWith('/')) return { problem: `expected an absolute path, got ${shown(target)}` };
  // Refused rather than resolved: a target says where it goes in so many words.
  if (target.split('/').includes('..')) return { problem: `expected a path without ".." components, got ${shown(target)}` };
  const normalised = posix.normalize(target).replace(/\/$/, '');
  if (normalised === '') return { problem: `expected a directory below /, got ${shown(target)}` };
  return { target: normalised };
}

/**
 * An app's mounts from their drafts: each of one of `volumes` (the ones the
 * app may mount), each target valid and the target of one mount only. A
 * mount of a read-only volume is read-only.
 */
export function checkMounts(drafts: readonly MountDraft[], volumes: readonly VolumeSpec[]): MountSpec[] {
  const targets = new Map<string, Origin>();
  return drafts.map(({ volume, target, readOnly, origin }) => {
    const fail = (field: keyof MountSpec, problem: string) => new VolumeSpecError(`${origin.field(field)}: ${problem}`);
    const declared = volumes.find((v) => v.name === volume);
    if (!declared) throw fail('volume', `no volume ${shown(volume)} in the pod (${volumes.length === 0 ? 'it has none' : `its volumes: ${volumes.map((v) => v.name).join(', ')}`})`);
    const checked = mountTarget(target);
    if ('problem' in checked) throw fail('target', checked.problem);
    const other = targets.get(checked.target);
    if (other) throw fail('target', `${shown(checked.target)} is already the target of ${other.label}`);
    targets.set(checked.target, origin);
    return { volume, target: checked.target, readOnly: readOnly || declared.readOnly };
  });
}
