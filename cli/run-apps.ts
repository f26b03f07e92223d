// `vmctr run` with several apps in the pod, from the command line,
//   vmctr run [FLAGS] ROOTFS [--] [COMMAND...] --- [APP FLAGS] ROOTFS [--] [COMMAND...] --- ...
// or from a pod manifest, `vmctr run [FLAGS] --pod FILE` (docs/pod-manifest.md).
// `---`, exactly, separates the apps, as in rkt, wherever it stands: no
// command can have it as an argument. The first part is read as
// run's single-app syntax (runSyntax) reads it: the pod's flags, app
// 1's own (-e, -w, -u, --app-name, --mount, -v), ROOTFS, then app 1's
// command, flags and all. Each later part takes an app's flags only, then
// its ROOTFS and command; a pod flag there is refused by name. The pod's
// volumes (--volume, -v) are checked here, their host directories included,
// so that a mistake is one line before anything starts.
import { readFileSync } from 'node:fs';
import {
  APP_NAME, APP_NAME_EXPECTED, manifestVolumeOrigin, MAX_APPS, MAX_POD_DEVICES, nameApps, parsePodManifest, podDevices, PodSpecError,
  type AppDraft, type AppSpec, type PodManifest, type PodSpec,
} from '../pod/pod-spec.js';
import { resolveVolumeSources } from '../pod/volume-source.js';
import { VolumeSpecError, type MountSpec, type Origin, type VolumeSpec } from '../pod/volume-spec.js';
import { parseCommandLine, shown, type CommandSyntax, type FlagSpec, type FlagSpecs, type FlagValues } from './flag-spec.js';
import { RunExitCode, runFlags, runSyntax } from './run-command.js';
import { UserError } from './user-error.js';
import { BIND_SYNTAX, commandLineVolumes, MOUNT_SYNTAX } from './volume-flags.js';

export const APP_SEPARATOR = '---';

// run's flags and those of pods: apps, volumes, manifests. They are not in run-command.ts's runFlags, run's single-app syntax.
const { root: rootFlag, ...runOwnFlags } = runFlags;
export const runAppsFlags = {
  ...runOwnFlags,
  'app-name': { type: 'string', format: { pattern: APP_NAME, expected: APP_NAME_EXPECTED }, description: 'name the app (default: from its image; unique in the pod)' },
  mount: { type: 'string', multiple: true, description: `mount a --volume in this app: ${MOUNT_SYNTAX}; repeatable` },
  'mount-host': { type: 'string', char: 'v', multiple: true, description: `mount a host directory in this app, as docker's -v: ${BIND_SYNTAX} (HOST-DIR relative to the working directory); repeatable` },
  volume: { type: 'string', multiple: true, description: 'a volume of the pod, as rkt\'s: NAME,kind=host,source=DIR (a host directory, relative to the working directory) or NAME,kind=empty, either with ,readOnly=true; repeatable; apps mount it with --mount' },
  'exit-on-first': { type: 'boolean', description: 'end the pod when its first app fails' },
  pod: { type: 'string', description: 'run the apps of a pod manifest (docs/pod-manifest.md): no ROOTFS, no app flags, no ---' },
  root: rootFlag,
} as const;

/** The first part of the command line, as help shows it. */
export const runAppsSyntax = { ...runSyntax, flags: runAppsFlags } as const satisfies CommandSyntax;

/** The flags each app has its own of; the rest are the pod's. */
const appFlags = {
  env: runAppsFlags.env,
  workdir: runAppsFlags.workdir,
  user: runAppsFlags.user,
  'app-name': runAppsFlags['app-name'],
  mount: runAppsFlags.mount,
  'mount-host': runAppsFlags['mount-host'],
} as const;
type AppFlagName = keyof typeof appFlags;
/** Each app flag's field in a manifest, for the error that sends it there. */
const manifestField: Readonly<Record<AppFlagName, keyof AppSpec>> = { env: 'env', workdir: 'workdir', user: 'user', 'app-name': 'name', mount: 'mounts', 'mount-host': 'mounts' };

const podOnlyFlags: FlagSpecs = Object.fromEntries(Object.entries(runAppsFlags).filter(([name]) => !Object.hasOwn(appFlags, name)));

// A manifest may also give cpus and memory: the first part reads them without defaults, so that a flag given wins over
// the manifest, and the manifest over the default.
const { default: defaultCpus, ...cpusFlag } = runAppsFlags.cpus;
const { default: defaultMemory, ...memoryFlag } = runAppsFlags.memory;
const firstSyntax = {
  ...runAppsSyntax,
  flags: { ...runAppsFlags, cpus: cpusFlag, memory: memoryFlag },
  operand: { ...runSyntax.operand, optional: true },
} as const satisfies CommandSyntax;

const appSyntax = {
  command: `run ... ${APP_SEPARATOR}`,
  flags: appFlags,
  usageExitCode: RunExitCode.error,
  operand: runSyntax.operand,
  elsewhere: { flags: podOnlyFlags, why: 'applies to the pod: put it before the first image' },
} as const satisfies CommandSyntax;

/** The pod-wide flags of `vmctr run`, as RunFlags without those the PodSpec holds (the apps' own, the volumes); -i and -t are the first app's. */
export type PodFlags = Omit<FlagValues<typeof runAppsFlags>, AppFlagName | 'volume' | 'pod' | 'exit-on-first'>;

/** A pod to run, as the command line (and the manifest it names) says it. */
export interface RunApps {
  request: { flags: PodFlags };
  pod: PodSpec;
}

/** Reads a manifest named by --pod as UTF-8 text. */
export type ManifestReader = (path: string) => string;

const usage = (message: string) => new UserError(message, RunExitCode.error);

/** How a flag is written in help and messages: `-e/--env`, `--app-name`. */
function written(name: keyof typeof runAppsFlags): string {
  const spec: FlagSpec = runAppsFlags[name];
  return spec.char ? `-${spec.char}/--${name}` : `--${name}`;
}

/** The arguments of each app, split at every APP_SEPARATOR. */
function splitApps(argv: readonly string[]): string[][] {
  const parts: string[][] = [[]];
  for (const arg of argv) {
    if (arg === APP_SEPARATOR) parts.push([]);
    else parts.at(-1)!.push(arg);
  }
  return parts;
}

/** An app as its part of the command line gives it. */
interface AppLine {
  flags: FlagValues<typeof appFlags>;
  operand: string;
  rest: string[];
}

function appDraft({ flags, operand, rest }: AppLine, mounts: MountSpec[]): AppDraft {
  const { env, workdir, user, 'app-name': name } = flags;
  return { ...(name === undefined ? {} : { name }), image: operand, command: rest, env, ...(workdir === undefined ? {} : { workdir }), ...(user === undefined ? {} : { user }), mounts };
}

/** `parse()`'s result, or its usage error: every part is read before any error is thrown, as help wins over a mistake. */
function attempt<T>(parse: () => T | 'help'): T | 'help' | UserError {
  try {
    return parse();
  } catch (err) {
    if (err instanceof UserError) return err;
    throw err;
  }
}

const parsed = <T>(outcome: T | 'help' | UserError): outcome is T => outcome !== 'help' && !(outcome instanceof UserError);

/**
 * `vmctr run`'s pod from its arguments, or 'help' (`-h` among any app's
 * flags, even after a mistake); `readManifest` reads the file --pod names.
 * Every mistake, the manifest's included, is a one-line UserError with exit
 * status 125. With --pod, the manifest gives the apps (no ROOTFS, no app
 * flags, no `---` on the command line), and --cpus, --memory and
 * --hostname, when given, win over its values; --exit-on-first, or the
 * manifest's exitOnFirst, ends the pod on its first failed app. Each
 * host volume's source must be a directory on this host, and is given as
 * its real path.
 */
export function parseRunApps(argv: readonly string[], readManifest: ManifestReader = (path) => readFileSync(path, 'utf8')): RunApps | 'help' {
  const [firstPart, ...laterParts] = splitApps(argv);
  const first = attempt(() => parseCommandLine(firstSyntax, firstPart));
  const later = laterParts.map((part, i) =>
    attempt(() => {
      try {
        return parseCommandLine(appSyntax, part);
      } catch (err) {
        if (err instanceof UserError) throw usage(`app ${i + 2}: ${err.message}`);
        throw err;
      }
    }),
  );
  if (!parsed(first) || !later.every(parsed)) {
    const outcomes = [first, ...later];
    if (outcomes.includes('help')) return 'help';
    throw outcomes.find((o) => o instanceof UserError);
  }

  const { env, workdir, user, 'app-name': appName, mount, 'mount-host': mountHost, volume, pod: manifestPath, 'exit-on-first': exitOnFirst, cpus, memory, ...podFlags } = first.flags;
  let manifest: PodManifest | undefined;
  let apps: AppSpec[];
  let volumes: VolumeSpec[];
  /** Where volume `index` was given, for the errors about its host directory. */
  let originOf: (index: number) => Origin;
  if (manifestPath !== undefined) {
    if (first.operand !== undefined) throw usage(`--pod ${shown(manifestPath)} gives the apps: no ROOTFS after the flags, got ${shown(first.operand)}`);
    if (later.length > 0) throw usage(`--pod ${shown(manifestPath)} gives the apps: no ${APP_SEPARATOR} after the flags`);
    const given = (Object.keys(appFlags) as AppFlagName[]).find((name) => {
      const value = first.flags[name];
      return Array.isArray(value) ? value.length > 0 : value !== undefined;
    });
    if (given) throw usage(`${written(given)} cannot be used with --pod: give each app's "${manifestField[given]}" in ${shown(manifestPath)}`);
    if (volume.length > 0) throw usage(`--volume cannot be used with --pod: give the pod's "volumes" in ${shown(manifestPath)}`);
    manifest = readPodManifest(manifestPath, readManifest);
    ({ apps, volumes } = manifest);
    originOf = (i) => manifestVolumeOrigin(manifestPath, i);
  } else {
    if (first.operand === undefined) throw usage(`${runSyntax.operand.name} is missing: ${runSyntax.operand.description}`);
    const lines: AppLine[] = [{ flags: { env, workdir, user, 'app-name': appName, mount, 'mount-host': mountHost }, operand: first.operand, rest: first.rest }, ...later];
    const given = volumeUsage(() => commandLineVolumes(volume, lines.map((line) => line.flags), process.cwd()));
    apps = nameCommandLineApps(lines.map((line, i) => appDraft(line, given.mounts[i]!)));
    volumes = given.volumes;
    originOf = (i) => given.origins[i]!;
  }
  const declared: PodSpec = { apps, volumes, exitOnFirst: exitOnFirst || (manifest?.exitOnFirst ?? false) };
  checkDevices(declared, podFlags.net);
  // Last: the only check that depends on the host.
  const pod: PodSpec = { ...declared, volumes: volumeUsage(() => resolveVolumeSources(volumes, originOf)) };

  return {
    request: {
      flags: {
        ...podFlags,
        hostname: podFlags.hostname ?? manifest?.hostname,
        cpus: cpus ?? manifest?.cpus ?? defaultCpus,
        memory: memory ?? manifest?.memory ?? defaultMemory,
      },
    },
    pod,
  };
}

/** `check()`'s result, its VolumeSpecError (a flag's, or a manifest's field's) as a usage error. */
function volumeUsage<T>(check: () => T): T {
  try {
    return check();
  } catch (err) {
    if (err instanceof VolumeSpecError) throw usage(err.message);
    throw err;
  }
}

/** Refuses a pod whose apps, volumes and network (`net`, as --net gives it) need more devices than a pod has. */
function checkDevices(pod: PodSpec, net: string | undefined): void {
  const networked = net !== undefined && net !== 'none';
  const devices = podDevices(pod, networked);
  if (devices <= MAX_POD_DEVICES) return;
  const needs = [`${pod.apps.length} apps (a disk each)`, ...(pod.volumes.length > 0 ? ['volumes (one device for all)'] : []), ...(networked ? [`--net ${shown(net!)} (one)`] : [])];
  const listed = needs.length > 1 ? `${needs.slice(0, -1).join(', ')} and ${needs.at(-1)}` : needs[0];
  throw usage(`a pod has ${MAX_POD_DEVICES} devices for its apps, volumes and network: ${listed} need ${devices}`);
}

function nameCommandLineApps(drafts: AppDraft[]): AppSpec[] {
  if (drafts.length > MAX_APPS) throw usage(`a pod has at most ${MAX_APPS} apps (each has its own disk), got ${drafts.length}`);
  try {
    return nameApps(drafts, { app: (i) => `app ${i + 1}`, name: (i) => `app ${i + 1}: --app-name` });
  } catch (err) {
    if (err instanceof PodSpecError) throw usage(err.message);
    throw err;
  }
}

/** The manifest at `path`; a file that cannot be read or is not a pod is one UserError line. */
function readPodManifest(path: string, read: ManifestReader): PodManifest {
  let text: string;
  try {
    text = read(path);
  } catch (err) {
    throw usage(`cannot read the pod manifest: ${(err as Error).message}`);
  }
  try {
    return parsePodManifest(text, path);
  } catch (err) {
    if (err instanceof PodSpecError) throw usage(err.message);
    throw err;
  }
}
