// Which modules a vmctr command loads (test/cli/module-trace.ts as a
// preload), and which package sources they hold: a module of the bundle
// (dist/cli/vmctr.js and its chunks) holds what esbuild's metafile says.
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { repoRoot } from '../lab/exec.js';

const exec = promisify(execFile);
const tracer = pathToFileURL(join(repoRoot, 'dist/test/cli/module-trace.js')).href;

export interface Traced {
  code: number;
  stderr: string;
  /** Every file loaded (as paths relative to the repository, a package's from node_modules/ on: it may be a symlink), builtins as node:*. */
  modules: string[];
}

function repoPath(path: string): string {
  const inPackage = path.indexOf('/node_modules/');
  if (inPackage !== -1) return path.slice(inPackage + 1);
  return path.startsWith(`${repoRoot}/`) ? path.slice(repoRoot.length + 1) : path;
}

/** Runs `argv` (bin/vmctr or node and a script) with the module trace; `env` added to the environment. */
export async function traceModules(argv: string[], env: NodeJS.ProcessEnv = {}): Promise<Traced> {
  const file = join(mkdtempSync(join(tmpdir(), 'vmctr-module-trace-')), 'modules.txt');
  const childEnv = { ...process.env, ...env, VMCTR_MODULE_TRACE: file, NODE_OPTIONS: `--import=${tracer}` };
  let code = 0;
  let stderr = '';
  try {
    ({ stderr } = await exec(argv[0]!, argv.slice(1), { env: childEnv, timeout: 60_000 }));
  } catch (e) {
    ({ code, stderr } = e as { code: number; stderr: string });
  }
  const urls = readFileSync(file, 'utf8').split('\n').filter(Boolean);
  const modules = urls.map((u) => (u.startsWith('file:') ? repoPath(fileURLToPath(u)) : u));
  return { code, stderr, modules };
}

/** The sources behind each loaded module: a bundle file's inputs (esbuild's metafile), else the module itself. */
export function sourcesOf(modules: readonly string[]): string[] {
  const meta = JSON.parse(readFileSync(join(repoRoot, 'dist/cli/vmctr.meta.json'), 'utf8')) as { outputs: Record<string, { inputs: Record<string, unknown> }> };
  return modules.flatMap((m) => (meta.outputs[m] ? Object.keys(meta.outputs[m].inputs) : [m]));
}
