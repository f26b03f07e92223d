// run's volume flags, read into the drafts pod/volume-spec.ts checks: the
// pod's --volume, rkt's NAME,kind=host,source=PATH or NAME,kind=empty, with
// readOnly=true|false; each app's --mount, rkt's volume=NAME,target=PATH,
// with a readOnly of its own (docker's :ro is per mount); and each app's -v,
// docker's HOST-DIR:CONTAINER-DIR[:ro|:rw], a host volume of that app's own,
// named v1, v2, ... (never a --volume's name). A --volume's source cannot
// hold a comma, nor -v's paths a colon: a pod manifest can say anything.
// Pure: a relative host path is resolved against the base given.
import { unknownFieldHint } from '../pod/pod-spec.js';
import { shown } from '../pod/spec-text.js';
import {
  checkMounts, checkVolumes, MAX_MOUNTS, MAX_VOLUMES, VolumeSpecError,
  type MountDraft, type MountSpec, type Origin, type VolumeDraft, type VolumeSpec,
} from '../pod/volume-spec.js';
import { shown as flagValue } from './flag-spec.js';

const VOLUME_SYNTAX = 'NAME,kind=host|empty[,source=PATH][,readOnly=true|false]';
export const MOUNT_SYNTAX = 'volume=NAME,target=PATH[,readOnly=true|false]';
export const BIND_SYNTAX = 'HOST-DIR:CONTAINER-DIR[:ro|:rw]';
const VOLUME_KEYS = ['kind', 'source', 'readOnly'] as const;
const MOUNT_KEYS = ['volume', 'target', 'readOnly'] as const;

/** An app's volume flags, as parseCommandLine gives them. */
export interface AppVolumeFlags {
  readonly mount: readonly string[];
  readonly 'mount-host': readonly string[];
}

export interface CommandLineVolumes {
  /** The --volume's, then each app's -v's. */
  volumes: VolumeSpec[];
  /** Where each of `volumes` was given, for volume-source.ts's errors. */
  origins: Origin[];
  /** Each app's mounts, in the order of the apps. */
  mounts: MountSpec[][];
}

/** `items`, each KEY=VALUE with a KEY of `keys`, as a map; `fail` makes the flag's error from a problem. */
function keyValues<K extends string>(items: readonly string[], keys: readonly K[], syntax: string, fail: (problem: string) => VolumeSpecError): Map<K, string> {
  const values = new Map<K, string>();
  for (const item of items) {
    const eq = item.indexOf('=');
    if (eq === -1) throw fail(`expected ${syntax}, got ${shown(item)} where a KEY=VALUE goes`);
    const key = item.slice(0, eq) as K;
    if (!keys.includes(key)) throw fail(`unknown key ${shown(key)} (${unknownFieldHint(key, keys)})`);
    if (values.has(key)) throw fail(`${key} given twice: give it once`);
    values.set(key, item.slice(eq + 1));
  }
  return values;
}

function readOnly(value: string | undefined, origin: Origin): boolean {
  if (value === undefined || value === 'false') return false;
  if (value === 'true') return true;
  throw new VolumeSpecError(`${origin.field('readOnly')}: expected true or false, got ${shown(value)}`);
}

/** The --volume `value`: its NAME first, then KEY=VALUE items. */
function volumeDraft(value: string): VolumeDraft {
  const label = `--volume ${flagValue(value)}`;
  const origin: Origin = { label, field: (name) => `${label}: ${name}` };
  const [name = '', ...items] = value.split(',');
  const keys = keyValues(items, VOLUME_KEYS, VOLUME_SYNTAX, (problem) => new VolumeSpecError(`${label}: ${problem}`));
  return { name, kind: keys.get('kind'), source: keys.get('source'), readOnly: readOnly(keys.get('readOnly'), origin), origin };
}

/** The --mount `value` of the app errors call `app` (`app 2: `, or nothing in a pod of one app). */
function mountDraft(value: string, app: string): MountDraft {
  const label = `--mount ${flagValue(value)}`;
  const origin: Origin = { label, field: (name) => `${app}${label}: ${name}` };
  const keys = keyValues(value.split(','), MOUNT_KEYS, MOUNT_SYNTAX, (problem) => new VolumeSpecError(`${app}${label}: ${problem}`));
  const volume = keys.get('volume');
  if (volume === undefined) throw new VolumeSpecError(`${origin.field('volume')}: expected the name of one of the pod's volumes, got nothing`);
  const target = keys.get('target');
  if (target === undefined) throw new VolumeSpecError(`${origin.field('target')}: expected an absolute path, got nothing`);
  return { volume, target, readOnly: readOnly(keys.get('readOnly'), origin), origin };
}

/** The -v `value` of the app errors call `app`: a host volume named `name` and its mount. */
function bindDrafts(value: string, name: string, app: string): { volume: VolumeDraft; mount: MountDraft } {
  const label = `-v ${flagValue(value)}`;
  // Its errors name the parts as its syntax does.
  const part = (field: string) => (field === 'source' ? 'HOST-DIR' : field === 'target' ? 'CONTAINER-DIR' : field);
  const origin: Origin = { label, field: (field) => `${app}${label}: ${part(field)}` };
  const parts = value.split(':');
  if (parts.length < 2 || parts.length > 3) throw new VolumeSpecError(`${app}${label}: expected ${BIND_SYNTAX}`);
  const [source, target, mode = 'rw'] = parts as [string, string, string?];
  if (mode !== 'ro' && mode !== 'rw') throw new VolumeSpecError(`${app}${label}: expected ro or rw after CONTAINER-DIR, got ${shown(mode)}`);
  const ro = mode === 'ro';
  return { volume: { name, kind: 'host', source, readOnly: ro, origin }, mount: { volume: name, target, readOnly: ro, origin } };
}

/**
 * The pod's volumes and each app's mounts from run's flags: `volumeFlags`,
 * the pod's --volume values, and each app's --mount and -v values (its
 * --mount's first). An app mounts the --volume's, and its own -v's; a
 * relative host path is resolved against `base`. Each mistake is one
 * VolumeSpecError line naming the flag, its value and the part at fault.
 */
export function commandLineVolumes(volumeFlags: readonly string[], apps: readonly AppVolumeFlags[], base: string): CommandLineVolumes {
  const given = volumeFlags.map(volumeDraft);
  const names = new Set(given.map((v) => v.name));
  let n = 0;
  const anonymousName = () => {
    do n++;
    while (names.has(`v${n}`));
    return `v${n}`;
  };
  const perApp = apps.map((flags, i) => {
    const app = apps.length > 1 ? `app ${i + 1}: ` : '';
    const mounts = flags.mount.map((value) => mountDraft(value, app));
    const binds = flags['mount-host'].map((value) => bindDrafts(value, anonymousName(), app));
    return { app, own: binds.map((b) => b.volume), mounts: [...mounts, ...binds.map((b) => b.mount)] };
  });

  const drafts = [...given, ...perApp.flatMap((a) => a.own)];
  if (drafts.length > MAX_VOLUMES) throw new VolumeSpecError(`a pod has at most ${MAX_VOLUMES} volumes (--volume and -v), got ${drafts.length}`);
  const volumes = checkVolumes(drafts, base);
  const declared = volumes.slice(0, given.length);
  let next = given.length;
  const mounts = perApp.map(({ app, own, mounts: appMounts }) => {
    if (appMounts.length > MAX_MOUNTS) throw new VolumeSpecError(`${app}an app has at most ${MAX_MOUNTS} mounts (--mount and -v), got ${appMounts.length}`);
    const mountable = [...declared, ...volumes.slice(next, (next += own.length))];
    return checkMounts(appMounts, mountable);
  });
  return { volumes, origins: drafts.map((d) => d.origin), mounts };
}
