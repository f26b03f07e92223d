// oclif lists commands from a manifest; without one it imports every command
// on every run to build it, which for `vmctr boot` means the whole image side
// (undici, tar) as well. oclif reads a manifest only from the package root,
// written at publish time, which a checkout that is rebuilt in place would
// let go stale. So vmctr keeps the manifest oclif builds in its cache,
// stamped with what it was built from: package.json, the names, sizes and
// times of the command files, and the last TypeScript build. A run whose
// stamp matches imports only the command it runs; any other run rebuilds
// the manifest the usual way (one slow run) and stores it. The manifest
// only lists commands and feeds help: flags are parsed by the command
// class itself, so they have one definition. A run that names its command
// gets a manifest of that command alone.
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, readdirSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Plugin, type Interfaces } from '@oclif/core';
import { cacheDir } from './cache-dir.js';

interface Stored { stamp: string; manifest: Interfaces.Manifest }

/** The package root above dist/cli/command-manifest.js. */
function packageRoot(from: string): string {
  let dir = dirname(from);
  for (;;) {
    try {
      statSync(join(dir, 'package.json'));
      return dir;
    } catch {
      if (dirname(dir) === dir) throw new Error(`no package.json above ${from}`);
      dir = dirname(dir);
    }
  }
}

/** What the manifest depends on; any change gives another stamp. */
function stamp(root: string, pjsonText: string, commandsDir: string): string {
  const h = createHash('sha256').update(root).update('\0').update(pjsonText);
  const files = readdirSync(commandsDir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile() && e.name.endsWith('.js'))
    .map((e) => join(e.parentPath, e.name))
    .sort();
  for (const f of files) {
    const s = statSync(f);
    h.update(`\0${f}\0${s.size}\0${s.mtimeMs}`);
  }
  // Commands' help may use constants from other modules: any rebuild counts.
  try {
    h.update(`\0tsbuildinfo\0${statSync(join(root, 'dist', '.tsbuildinfo')).mtimeMs}`);
  } catch {
    // not built by tsc --incremental: the command files alone
  }
  return h.digest('hex');
}

/**
 * The manifest oclif needs for this run: when the arguments name a command
 * (`boot ...`, `image prune ...`) and ask for no help, that command alone.
 * Listing is for help; and oclif sorts its commands with localeCompare,
 * whose first call sets up an ICU collator (tens of milliseconds natively,
 * about half a second in the nested lab).
 */
function onlyTheCommandRun(manifest: Interfaces.Manifest, argv: string[]): Interfaces.Manifest {
  if (argv.some((a) => a === '--help' || a === '-h' || a === '--')) return manifest;
  const firstFlag = argv.findIndex((a) => a.startsWith('-'));
  const words = firstFlag === -1 ? argv : argv.slice(0, firstFlag);
  for (let n = words.length; n > 0; n--) {
    const id = words.slice(0, n).join(':');
    const command = manifest.commands[id];
    if (command) return { ...manifest, commands: { [id]: command } };
  }
  return manifest;
}

/**
 * oclif load options for the CLI at `mainUrl` with the cached manifest, or
 * `mainUrl` itself (oclif's own loading) if anything here goes wrong.
 */
export async function loadOptions(mainUrl: string): Promise<Interfaces.LoadOptions | string> {
  let plugin: Plugin;
  let file: string;
  let current: string;
  let stored: Stored | undefined;
  try {
    const root = packageRoot(fileURLToPath(mainUrl));
    const pjsonText = readFileSync(join(root, 'package.json'), 'utf8');
    const pjson = JSON.parse(pjsonText) as Interfaces.PJSON;
    const commands = pjson.oclif?.commands;
    if (typeof commands !== 'string') return mainUrl;
    current = stamp(root, pjsonText, join(root, commands));
    file = join(cacheDir(), `oclif-manifest-${createHash('sha256').update(root).digest('hex').slice(0, 16)}.json`);
    try {
      const s = JSON.parse(readFileSync(file, 'utf8')) as Stored;
      if (s.stamp === current && s.manifest?.commands) stored = s;
    } catch {
      // none yet, or unreadable: rebuild
    }
    plugin = new Plugin({ root, isRoot: true, pjson });
    if (stored) {
      const manifest = onlyTheCommandRun(stored.manifest, process.argv.slice(2));
      // Plugin.load() calls _manifest() for the manifest (oclif 5); were it
      // renamed, oclif would just build the manifest itself again.
      const p = plugin as unknown as { _manifest: () => Promise<Interfaces.Manifest>; commandIDs: string[]; hasManifest: boolean };
      p._manifest = async () => {
        p.commandIDs = Object.keys(manifest.commands);
        p.hasManifest = true;
        return manifest;
      };
    }
    await plugin.load();
  } catch {
    return mainUrl;
  }
  if (!stored) {
    try {
      mkdirSync(dirname(file), { recursive: true });
      const tmp = `${file}.${process.pid}.tmp`;
      writeFileSync(tmp, JSON.stringify({ stamp: current, manifest: plugin.manifest } satisfies Stored));
      renameSync(tmp, file);
    } catch {
      // not writable: the next run builds it again
    }
  }
  return { root: plugin.root, plugins: new Map([[plugin.name, plugin]]) };
}
