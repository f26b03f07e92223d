// Where a cached build artifact is (the guest kernel, the demo initramfs,
// the agent image, the default container image):
// its build script answers `--path` after hashing its inputs, package
// versions included (dpkg-query, sha256sum), which costs 1-2.6 s in the
// nested lab, on every `vmctr boot` or `vmctr run` without explicit files.
// So the answer is remembered in vmctr's cache, stamped with the name, size
// and modification time of everything the script's hash reads: the script,
// its input files, and dpkg's status file (which changes with any package
// install or upgrade). A different stamp, or a remembered path that is gone,
// asks the script again. The record is optional: without it, lookups are
// only slower.
import { mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

/** dpkg's database of installed packages: the scripts' package versions come from it. */
export const DPKG_STATUS = '/var/lib/dpkg/status';

export interface ArtifactLookup {
  /** The build script; `script --path` prints the artifact's path last, or fails if it is not built. */
  script: string;
  /** Every file the script's cache key reads besides itself. */
  inputs: readonly string[];
  /** The JSON file where answers are remembered. */
  recordFile: string;
}

type Records = Record<string, { stamp: string; path: string }>;

function stamp(files: readonly string[]): string {
  return files.map((f) => {
    const s = statSync(f);
    return `${f} ${s.size} ${s.mtimeMs}`;
  }).join('\n');
}

function readRecords(file: string): Records {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as Records;
  } catch {
    return {};
  }
}

function exists(path: string): boolean {
  try {
    statSync(path);
    return true;
  } catch {
    return false;
  }
}

/** Runs `script --path`: the artifact's path (the last line printed); throws if the script fails. */
export function askScript(script: string): string {
  // Loaded only here: node:child_process takes tens of ms to load in the lab.
  const { execFileSync } = process.getBuiltinModule('node:child_process');
  return execFileSync(script, ['--path'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim().split('\n').pop()!;
}

/** The stamp of everything the script's key reads; undefined when an input is missing (the script then says what is wrong). */
function currentStamp(lookup: ArtifactLookup): string | undefined {
  try {
    return stamp([lookup.script, ...lookup.inputs]);
  } catch {
    return undefined;
  }
}

/** Remembers `path` as the script's answer while its inputs keep their current stamp; a failure only makes lookups slower. */
export function rememberArtifact(lookup: ArtifactLookup, path: string, current = currentStamp(lookup)): void {
  if (current === undefined) return;
  try {
    const records = readRecords(lookup.recordFile);
    records[lookup.script] = { stamp: current, path };
    mkdirSync(dirname(lookup.recordFile), { recursive: true });
    const tmp = `${lookup.recordFile}.${process.pid}.tmp`;
    writeFileSync(tmp, JSON.stringify(records, null, 1));
    renameSync(tmp, lookup.recordFile);
  } catch {
    // not remembered: the next lookup asks the script again
  }
}

/** The artifact's path: remembered, or from the script (which throws if it fails). */
export function lookupArtifact(lookup: ArtifactLookup): string {
  const current = currentStamp(lookup);
  const known = readRecords(lookup.recordFile)[lookup.script];
  if (current !== undefined && known?.stamp === current && exists(known.path)) return known.path;
  const path = askScript(lookup.script);
  rememberArtifact(lookup, path, current);
  return path;
}
