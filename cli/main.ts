// The `vmctr` entry point. Start-up is a large part of a short command, and
// of `vmctr boot` before the guest runs, so two caches, both under the
// user's cache directory and both optional (an unwritable cache only makes
// start-up slower):
//  - V8's compile cache (Node's module.enableCompileCache), so the modules
//    below are not parsed and compiled again on every run;
//  - oclif's command manifest (command-manifest.ts), so a run imports only
//    the command it runs, not every command with its dependencies.
// And `vmctr boot` usually starts without oclif at all (fastBoot below).
// bin/vmctr runs this module bundled with everything it imports but oclif
// (dist/cli/vmctr.js, `npm run build:bundle`): one file to read instead of
// about fifty, each a path lookup and a read.
// Everything else is imported after the compile cache is on. oclif's check
// of its own engines range loads all of semver (47 modules) to compare
// against the Node that bin/vmctr ships: it is turned off.
import { enableCompileCache } from 'node:module';
import { join } from 'node:path';
import { cacheDir } from './cache-dir.js';

try {
  enableCompileCache(join(cacheDir(), 'node-compile-cache')); // reports failure in its result, ignored
} catch {
  // no compile cache: slower, not wrong
}

/**
 * `vmctr boot` with plainly valid flags runs without oclif (about a hundred
 * modules, most of the start-up): its flags are parsed from the same
 * definitions the oclif command uses. Help and anything unusual or wrong
 * take the oclif path, which reports errors as always.
 */
async function fastBoot(argv: string[]): Promise<boolean> {
  if (argv[0] !== 'boot') return false;
  const [{ parseFlags }, command, { exitWithError }] = await Promise.all([import('./flag-spec.js'), import('./boot-command.js'), import('./user-error.js')]);
  const flags = parseFlags(command.bootFlags, argv.slice(1));
  if (!flags) return false;
  try {
    await command.boot(flags);
  } catch (e) {
    exitWithError(e as Error);
  }
  return true;
}

if (!(await fastBoot(process.argv.slice(2)))) {
  process.env.OCLIF_DISABLE_ENGINE_WARNING ??= '1';
  const { execute } = await import('@oclif/core');
  const { loadOptions } = await import('./command-manifest.js');
  await execute({ dir: import.meta.url, loadOptions: await loadOptions(import.meta.url) });
}
