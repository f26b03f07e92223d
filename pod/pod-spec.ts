// What a pod runs, as pure data: its apps (containers, as rkt calls them),
// each with its own root filesystem, command, environment, user, working
// directory and mounts of the pod's volumes (volume-spec.ts), all in the
// pod's one microVM. Two parsers produce it: run's
// command line (cli/run-apps.ts) and a pod manifest (parsePodManifest
// below, docs/pod-manifest.md). The pod-wide settings (cpus, memory, name,
// hostname, ...) stay run's flags; a manifest may give cpus, memory and
// hostname too, and the command line's win (cli/run-apps.ts merges them).
import { basename, dirname } from 'node:path';
import { MAX_CPUS, MAX_MEMORY_MIB, MIN_MEMORY_MIB } from '../vmm/vm.js';
import { JsonSyntaxError, readJson, type JsonValue } from './json-reader.js';
import { DEFAULT_IMAGE } from './rootfs-source.js';
import { SAFE_NAME, SAFE_NAME_EXPECTED, SAFE_NAME_MAX, shown } from './spec-text.js';
import {
  checkMounts, checkVolumes, KIND_EXPECTED, MAX_MOUNTS, MAX_VOLUMES, VolumeSpecError,
  type MountDraft, type MountSpec, type Origin, type VolumeDraft, type VolumeSpec,
} from './volume-spec.js';

export interface AppSpec {
  /** Unique in the pod; matches APP_NAME. */
  name: string;
  /** As run's ROOTFS: "default", a root filesystem directory or tar, or an image name. */
  image: string;
  /** argv; empty means the image's command. */
  command: string[];
  /** "KEY=VALUE" entries, over the image's. */
  env: string[];
  /** Absolute; default: the image's. */
  workdir?: string;
  /** USER[:GROUP], by name or id; default: the image's. */
  user?: string;
  /** The pod's volumes this app sees, in the order given; at most MAX_MOUNTS. */
  mounts: MountSpec[];
}

export interface PodSpec {
  /** 1 to MAX_APPS, in the order given. */
  apps: AppSpec[];
  /** At most MAX_VOLUMES, each mounted by any number of apps (none included). */
  volumes: VolumeSpec[];
  /** The pod ends when its first app fails, rather than when all have ended. */
  exitOnFirst: boolean;
}

/** A pod manifest: the pod, and the pod-wide settings it may give (the command line's flags win over them). */
export interface PodManifest extends PodSpec {
  cpus?: number;
  /** MiB. */
  memory?: number;
  hostname?: string;
}

/** An app before naming: the name, if given, is checked by nameApps. */
export type AppDraft = Omit<AppSpec, 'name'> & { name?: string | undefined };

/**
 * Each virtio device has its own interrupt line: the VMM has 19 (GSI 5 to
 * 23) and a pod's agent disk, console, agent port, rng and writable layer
 * disk take 5. The rest
 * are the pod's: a disk (virtio-blk) per app, one virtio-fs device for all
 * its volumes, one virtio-net device on a network. A pod is a few apps, not
 * a cluster.
 */
export const MAX_POD_DEVICES = 19 - 5;
/** Apps in a pod: as many as its devices allow, without volumes or a network. */
export const MAX_APPS = MAX_POD_DEVICES;

/** The devices of `pod`'s own (of MAX_POD_DEVICES), on a network or not. */
export function podDevices(pod: PodSpec, networked: boolean): number {
  return pod.apps.length + (pod.volumes.length > 0 ? 1 : 0) + (networked ? 1 : 0);
}

/** An app's name, by the rule of every name in a pod (spec-text.ts). */
export const APP_NAME = SAFE_NAME;
export const APP_NAME_EXPECTED = SAFE_NAME_EXPECTED;
/** The name of an app whose image gives nothing usable (`/`, `.tar`). */
const FALLBACK_APP_NAME = 'app';
/** What a tar rootfs's file name ends with (rootfs-disk.ts reads the file's content, not its name: these are for naming only). */
const TAR_SUFFIXES = ['.tar.gz', '.tar.zst', '.tgz', '.tar'];
/** An image named by its id (image/image-lookup.ts), which docker shows by its first 12 digits. */
const IMAGE_ID = /^sha256:([a-f0-9]+)$/;
const SHORT_ID_DIGITS = 12;

/** An environment entry as run's -e takes it: a name, "=", then the value (which may be empty). */
export const ENV_ENTRY = /^[^=]+=/;
/** A working directory as run's -w takes it. */
export const ABSOLUTE_PATH = /^\//;
/** The agent's check of a host name (guest-agent/container-spec.ts), the kernel's limit: refused here with the field's path. */
const HOST_NAME = /^[A-Za-z0-9][A-Za-z0-9.-]{0,63}$/;
const NOT_EMPTY = /./s;
/** The agent's bound on a command's or an environment's entries (guest-agent/container-spec.ts). */
export const MAX_LIST_ENTRIES = 2048;
export const MAX_STRING_BYTES = 64 * 1024;

/** A pod description that cannot be: one line, naming the file and the field when it comes from a manifest. */
export class PodSpecError extends Error {
  override name = 'PodSpecError';
}

/**
 * An app's name from its image: `default`; a path's file name without its
 * tar suffix (`/srv/web.tar.gz` -> `web`); an image reference's last path
 * component without tag or digest (`localhost:5000/x/busybox@sha256:...`
 * -> `busybox`); an image id's first 12 digits (`sha256:3f4b...`); then
 * made to match APP_NAME (`my rootfs` -> `my-rootfs`, `/` -> `app`).
 */
export function defaultAppName(image: string): string {
  let name: string;
  const id = IMAGE_ID.exec(image);
  if (id) {
    name = id[1]!.slice(0, SHORT_ID_DIGITS);
  } else if (/^[/.]|\/$/.test(image) || TAR_SUFFIXES.some((s) => image.endsWith(s))) {
    // Only a path can start with "/" or "." or end with "/" or a tar suffix: no image reference does.
    name = basename(image);
    const suffix = TAR_SUFFIXES.find((s) => name.endsWith(s));
    if (suffix) name = name.slice(0, -suffix.length);
  } else {
    // The digest first (it holds a ":"), then the path: a registry's port is in its first component.
    name = image.split('@')[0]!.split('/').at(-1)!.split(':')[0]!;
  }
  name = name.replace(/[^a-zA-Z0-9_.-]+/g, '-').replace(/^[^a-zA-Z0-9]+/, '').slice(0, SAFE_NAME_MAX);
  return name === '' ? FALLBACK_APP_NAME : name;
}

/** How a parser refers to its apps in errors. */
export interface AppLabels {
  /** App `index`: `apps[2]`, `app 3`. */
  app(index: number): string;
  /** Where app `index`'s name was given: `pod.json: apps[2].name`, `app 3: --app-name`. */
  name(index: number): string;
}

/**
 * The apps with their names. A given name must match APP_NAME and be unique;
 * the others come from their images (defaultAppName), and yield to the given
 * ones: a repeated name gets `-2`, `-3`, ... (`alpine`, `alpine-2`).
 */
export function nameApps(drafts: readonly AppDraft[], labels: AppLabels): AppSpec[] {
  const taken = new Map<string, number>();
  drafts.forEach((draft, index) => {
    if (draft.name === undefined) return;
    if (!APP_NAME.test(draft.name)) throw new PodSpecError(`${labels.name(index)}: expected ${APP_NAME_EXPECTED}, got ${shown(draft.name)}`);
    const other = taken.get(draft.name);
    if (other !== undefined) throw new PodSpecError(`${labels.name(index)}: ${shown(draft.name)} is already the name of ${labels.app(other)}`);
    taken.set(draft.name, index);
  });
  return drafts.map(({ name: given, ...app }, index) => {
    let name = given;
    if (name === undefined) {
      const base = defaultAppName(app.image);
      name = base;
      for (let n = 2; taken.has(name); n++) name = `${base.slice(0, SAFE_NAME_MAX - `-${n}`.length)}-${n}`;
      taken.set(name, index);
    }
    return { name, ...app };
  });
}

/** A JSON value as "got ..." shows it. */
function got(value: JsonValue | undefined): string {
  if (value === undefined) return 'nothing';
  if (Array.isArray(value)) return 'an array';
  if (value instanceof Map) return 'an object';
  return typeof value === 'string' ? shown(value) : String(value);
}

const POD_FIELDS = ['apps', 'volumes', 'exitOnFirst', 'cpus', 'memory', 'hostname'] as const;
const APP_FIELDS = ['name', 'image', 'command', 'env', 'workdir', 'user', 'mounts'] as const;
const VOLUME_FIELDS = ['name', 'kind', 'source', 'readOnly'] as const;
const MOUNT_FIELDS = ['volume', 'target', 'readOnly'] as const;
/** How far a misspelt field may be from a known one to be suggested. */
const MAX_SUGGESTION_DISTANCE = 2;

/** Levenshtein distance, on names compared without case, "-" or "_" (`exit_on_first` is `exitOnFirst`). */
function distance(a: string, b: string): number {
  const norm = (s: string) => s.toLowerCase().replace(/[-_]/g, '');
  const [x, y] = [norm(a), norm(b)];
  let previous = Array.from({ length: y.length + 1 }, (_, j) => j);
  for (let i = 1; i <= x.length; i++) {
    const current = [i];
    for (let j = 1; j <= y.length; j++) current[j] = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + (x[i - 1] === y[j - 1] ? 0 : 1));
    previous = current;
  }
  return previous[y.length]!;
}

/** Why `key` is not one of `fields`: the nearest known name when one is close (`readonly`: `did you mean "readOnly"?`), or all of them. */
export function unknownFieldHint(key: string, fields: readonly string[]): string {
  const [nearest] = [...fields].sort((a, b) => distance(key, a) - distance(key, b));
  return nearest !== undefined && distance(key, nearest) <= MAX_SUGGESTION_DISTANCE ? `did you mean "${nearest}"?` : `expected one of ${fields.join(', ')}`;
}

/** A field's path: `apps[0].env`, or `apps[0]["odd key"]` for a key that is no identifier. */
function fieldPath(parent: string, key: string): string {
  if (!/^[A-Za-z_$][\w$]*$/.test(key)) return `${parent}[${JSON.stringify(key)}]`;
  return parent === '' ? key : `${parent}.${key}`;
}

/** Checks a manifest's values field by field; every error names `source` and the field's path. */
class ManifestReader {
  constructor(private readonly source: string) {}

  error(path: string, problem: string): PodSpecError {
    return new PodSpecError(`${this.source}: ${path === '' ? '' : `${path}: `}${problem}`);
  }

  expected(path: string, what: string, value: JsonValue | undefined): PodSpecError {
    return this.error(path, `expected ${what}, got ${got(value)}`);
  }

  /** An object of `fields` only: an unknown one is an error, with the nearest known name when one is close. */
  object<K extends string>(value: JsonValue | undefined, path: string, what: string, fields: readonly K[]): Map<K, JsonValue> {
    if (!(value instanceof Map)) throw this.expected(path, what, value);
    for (const key of value.keys()) {
      if ((fields as readonly string[]).includes(key)) continue;
      throw this.error(fieldPath(path, key), `unknown field (${unknownFieldHint(key, fields)})`);
    }
    return value as Map<K, JsonValue>;
  }

  /** A string within the bounds a command line could pass: no NUL, at most MAX_STRING_BYTES; and `format` if given. */
  string(value: JsonValue | undefined, path: string, what: string, format?: RegExp): string {
    if (typeof value !== 'string') throw this.expected(path, what, value);
    if (value.includes('\0')) throw this.error(path, `expected a string without NUL characters, got ${shown(value)}`);
    const bytes = Buffer.byteLength(value);
    if (bytes > MAX_STRING_BYTES) throw this.error(path, `expected at most ${MAX_STRING_BYTES} bytes, got ${bytes}`);
    if (format && !format.test(value)) throw this.expected(path, what, value);
    return value;
  }

  /** An array of at most MAX_LIST_ENTRIES strings; `what` says what the array is and what each entry is. */
  strings(value: JsonValue | undefined, path: string, what: { array: string; entry: string }, format?: RegExp): string[] {
    if (!Array.isArray(value)) throw this.expected(path, what.array, value);
    if (value.length > MAX_LIST_ENTRIES) throw this.error(path, `expected at most ${MAX_LIST_ENTRIES} entries, got ${value.length}`);
    return value.map((entry, i) => this.string(entry, `${path}[${i}]`, what.entry, format));
  }

  integer(value: JsonValue | undefined, path: string, min: number, max: number, unit = ''): number {
    if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) throw this.expected(path, `an integer from ${min} to ${max}${unit}`, value);
    return value;
  }

  boolean(value: JsonValue | undefined, path: string): boolean {
    if (typeof value !== 'boolean') throw this.expected(path, 'true or false', value);
    return value;
  }

  /** An array of at most `max` entries, `what` they are, each read by `read`. */
  list<T>(value: JsonValue | undefined, path: string, what: string, max: number, read: (entry: JsonValue, path: string) => T): T[] {
    if (!Array.isArray(value)) throw this.expected(path, `an array of ${what}`, value);
    if (value.length > max) throw this.error(path, `expected at most ${max} ${what}, got ${value.length}`);
    return value.map((entry, i) => read(entry, `${path}[${i}]`));
  }

  volume(value: JsonValue, path: string): VolumeDraft {
    const fields = this.object(value, path, 'a volume: an object with "name" and "kind"', VOLUME_FIELDS);
    const source = fields.get('source');
    const readOnly = fields.get('readOnly');
    // checkVolumes checks the name's form and the kind's value; these are the JSON types.
    return {
      name: this.string(fields.get('name'), `${path}.name`, SAFE_NAME_EXPECTED),
      kind: this.string(fields.get('kind'), `${path}.kind`, KIND_EXPECTED),
      source: source === undefined ? undefined : this.string(source, `${path}.source`, 'a host directory'),
      readOnly: readOnly === undefined ? false : this.boolean(readOnly, `${path}.readOnly`),
      origin: manifestOrigin(this.source, path),
    };
  }

  mount(value: JsonValue, path: string): MountDraft {
    const fields = this.object(value, path, 'a mount: an object with "volume" and "target"', MOUNT_FIELDS);
    const readOnly = fields.get('readOnly');
    return {
      volume: this.string(fields.get('volume'), `${path}.volume`, 'the name of one of the pod\'s volumes'),
      target: this.string(fields.get('target'), `${path}.target`, 'an absolute path'),
      readOnly: readOnly === undefined ? false : this.boolean(readOnly, `${path}.readOnly`),
      origin: manifestOrigin(this.source, path),
    };
  }

  /** An app, whose mounts are of `volumes`. */
  app(value: JsonValue, path: string, volumes: readonly VolumeSpec[]): AppDraft {
    const fields = this.object(value, path, `an app: an object with "image"`, APP_FIELDS);
    const optional = <T>(key: (typeof APP_FIELDS)[number], read: (v: JsonValue, p: string) => T): T | undefined => {
      const v = fields.get(key);
      return v === undefined ? undefined : read(v, `${path}.${key}`);
    };
    // nameApps checks the name's form, and that it is the only one.
    const name = optional('name', (v, p) => this.string(v, p, APP_NAME_EXPECTED));
    const image = this.string(fields.get('image'), `${path}.image`, `"${DEFAULT_IMAGE}", a root filesystem directory or tar, or an image name`, NOT_EMPTY);
    const command = optional('command', (v, p) => this.strings(v, p, { array: 'an array of strings', entry: 'a string' })) ?? [];
    const env = optional('env', (v, p) => this.strings(v, p, { array: 'an array of "KEY=VALUE" strings', entry: '"KEY=VALUE"' }, ENV_ENTRY)) ?? [];
    const workdir = optional('workdir', (v, p) => this.string(v, p, 'an absolute path', ABSOLUTE_PATH));
    const user = optional('user', (v, p) => this.string(v, p, 'USER[:GROUP], by name or id', NOT_EMPTY));
    const mountDrafts = optional('mounts', (v, p) => this.list(v, p, 'mounts', MAX_MOUNTS, (m, mp) => this.mount(m, mp))) ?? [];
    const mounts = asPodSpecError(() => checkMounts(mountDrafts, volumes));
    // Absent fields rather than undefined ones: the spec is plain data, compared and serialised as such.
    return { ...(name === undefined ? {} : { name }), image, command, env, ...(workdir === undefined ? {} : { workdir }), ...(user === undefined ? {} : { user }), mounts };
  }
}

/** Where the manifest `source` gives the volume or mount at `path`, for volume-spec.ts's errors. */
function manifestOrigin(source: string, path: string): Origin {
  return { label: path, field: (name) => `${source}: ${path}.${name}` };
}

/** Where the manifest `source` gives its volume `index`: for volume-source.ts's errors about its source. */
export function manifestVolumeOrigin(source: string, index: number): Origin {
  return manifestOrigin(source, `volumes[${index}]`);
}

/** `check()`'s result, its VolumeSpecError (already one line naming the file and the field) as a PodSpecError. */
function asPodSpecError<T>(check: () => T): T {
  try {
    return check();
  } catch (err) {
    if (err instanceof VolumeSpecError) throw new PodSpecError(err.message);
    throw err;
  }
}

/**
 * The pod that manifest `text` describes (docs/pod-manifest.md); `source`
 * (its file name) starts every error, and a volume's relative source is
 * resolved against `directory`, the manifest's. Each mistake is one
 * PodSpecError line: `pod.json: apps[1].env[0]: expected "KEY=VALUE", got
 * "FOO"`, or `pod.json:3:14: ...` for the JSON syntax. A host volume's
 * source is not looked at here (volume-source.ts does).
 */
export function parsePodManifest(text: string, source: string, directory = dirname(source)): PodManifest {
  let json: JsonValue;
  try {
    json = readJson(text);
  } catch (err) {
    if (err instanceof JsonSyntaxError) throw new PodSpecError(`${source}:${err.line}:${err.column}: ${err.reason}`);
    throw err;
  }
  const r = new ManifestReader(source);
  const pod = r.object(json, '', 'an object with "apps"', POD_FIELDS);
  const appsValue = pod.get('apps');
  if (!Array.isArray(appsValue)) throw r.expected('apps', `an array of 1 to ${MAX_APPS} apps`, appsValue);
  if (appsValue.length < 1 || appsValue.length > MAX_APPS) throw r.expected('apps', `1 to ${MAX_APPS} apps`, appsValue.length);
  const volumesValue = pod.get('volumes');
  const volumeDrafts = volumesValue === undefined ? [] : r.list(volumesValue, 'volumes', 'volumes', MAX_VOLUMES, (v, path) => r.volume(v, path));
  const volumes = asPodSpecError(() => checkVolumes(volumeDrafts, directory));
  const drafts = appsValue.map((app, i) => r.app(app, `apps[${i}]`, volumes));
  const apps = nameApps(drafts, { app: (i) => `apps[${i}]`, name: (i) => `${source}: apps[${i}].name` });

  const manifest: PodManifest = { apps, volumes, exitOnFirst: false };
  const set = <K extends 'exitOnFirst' | 'cpus' | 'memory' | 'hostname'>(key: K, read: (v: JsonValue) => PodManifest[K]) => {
    const v = pod.get(key);
    if (v !== undefined) manifest[key] = read(v);
  };
  set('exitOnFirst', (v) => r.boolean(v, 'exitOnFirst'));
  set('cpus', (v) => r.integer(v, 'cpus', 1, MAX_CPUS));
  set('memory', (v) => r.integer(v, 'memory', MIN_MEMORY_MIB, MAX_MEMORY_MIB, ' (MiB)'));
  set('hostname', (v) => r.string(v, 'hostname', 'a host name of 1 to 64 letters, digits, "." or "-", starting with a letter or digit', HOST_NAME));
  return manifest;
}
