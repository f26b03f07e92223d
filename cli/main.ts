// The `vmctr` entry point. Start-up is a large part of a short command, and
// of `vmctr boot` before the guest runs, so two caches, both under the
// user's cache directory and both optional (an unwritable cache only makes
// start-up slower):
//  - V8's compile cache (Node's module.enableCompileCache), so the modules
//    below are not parsed and compiled again on every run;
//  - oclif's command manifest (command-manifest.ts), so a run imports only
//    the command it runs, not every command with its dependencies.
// And `vmctr boot` and `vmctr run` start without oclif at all unless help
// is asked for (fastStart below).
// bin/vmctr runs this module bundled with everything it imports but oclif
// (dist/cli/vmctr.js, `npm run build:bundle`), split where it imports on
// demand: a command reads a few files instead of about fifty, each a path
// lookup and a read, and only the code and Node built-ins it needs (one
// bundle would make `boot` load run's and the image side's built-ins too).
// Everything else is imported after the compile cache is on. oclif's check
// of its own engines range loads all of semver (47 modules) to compare
// against the Node that bin/vmctr ships: it is turned off.
import { enableCompileCache } from 'node:module';
import { join } from 'node:path';
import { cacheDir } from './cache-dir.js';
import { MONITOR_COMMAND } from './monitor-command.js';
import type { PodCommandName } from './pod-commands.js';

try {
  enableCompileCache(join(cacheDir(), 'node-compile-cache')); // reports failure in its result, ignored
} catch {
  // no compile cache: slower, not wrong
}

/** pod-commands.ts's commands, named here so that this module loads none of their code. */
const POD_COMMANDS = ['ps', 'status', 'attach', 'logs', 'exec', 'stop', 'kill', 'rm', 'gc', 'update'] as const satisfies readonly PodCommandName[];

/**
 * The commands that start without oclif (about a hundred modules, most of
 * the start-up): each reads its command line with flag-spec.ts, from the
 * definitions its oclif command shows in help, and reports usage errors
 * itself. Each loader returns what to run, or 'help' for oclif to show.
 */
const fastCommands: Record<string, (argv: readonly string[]) => Promise<(() => Promise<void>) | 'help'>> = {
  boot: async (argv) => {
    const { boot, parseBootArgv } = await import('./boot-command.js');
    const flags = parseBootArgv(argv);
    return flags === 'help' ? flags : () => boot(flags);
  },
  // The pod's monitor (monitor/monitor.ts), spawned by `vmctr run`: not a user command, and not in help.
  [MONITOR_COMMAND]: async (argv) => {
    const { Monitor } = await import('../monitor/monitor.js');
    return () => Monitor.main(argv[0]!);
  },
  // The pod commands (pod-commands.ts): scripts run them in loops.
  ...Object.fromEntries(POD_COMMANDS.map((name) => [name, async (argv: readonly string[]) => {
    const { parsePodCommand } = await import('./pod-commands.js');
    return parsePodCommand(name, argv);
  }])),
  // vmctr network create|ls|inspect|rm (network-commands.ts).
  network: async (argv) => {
    const { parseNetworkCommand } = await import('./network-commands.js');
    return parseNetworkCommand(argv);
  },
  run: async (argv) => {
    const [{ parseRunApps }, { run }] = await Promise.all([import('./run-apps.js'), import('./run-command.js')]);
    const request = parseRunApps(argv);
    return request === 'help' ? request : () => run(request);
  },
};

/** Runs a command of fastCommands without oclif; false when oclif is needed (another command, or help). */
async function fastStart(argv: string[]): Promise<boolean> {
  const [name, ...rest] = argv;
  const load = name !== undefined && Object.hasOwn(fastCommands, name) ? fastCommands[name] : undefined;
  if (!load) return false;
  const { exitWithError } = await import('./user-error.js');
  try {
    const start = await load(rest);
    if (start === 'help') return false;
    await start();
  } catch (e) {
    exitWithError(e as Error);
  }
  return true;
}

if (!(await fastStart(process.argv.slice(2)))) {
  process.env.OCLIF_DISABLE_ENGINE_WARNING ??= '1';
  const { execute } = await import('@oclif/core');
  const { loadOptions } = await import('./command-manifest.js');
  await execute({ dir: import.meta.url, loadOptions: await loadOptions(import.meta.url) });
}
