// What the benchmarks against runc and crun (bench/run, bench/density, bench/fs) give
// those runtimes: vmctr's built-in busybox `default` image as a directory (its
// ext4 dumped with debugfs) and OCI bundles over it made with `runc spec`;
// and where a running container's processes are.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { chmod, mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { repoRoot } from '../test/lab/exec.js';
import { cgroupOf, cgroupProcesses } from './proc-memory.js';

export const OCI_RUNTIMES = ['runc', 'crun'] as const;
export type OciRuntime = (typeof OCI_RUNTIMES)[number];

/** debugfs and runc live in sbin, which a user's PATH may lack. */
process.env.PATH = `${process.env.PATH}:/usr/sbin:/sbin`;

/** The path a cached-artifact script (`setup/build-default-image.sh`...) prints last for `--path`. */
export function artifact(script: string): string {
  return execFileSync(join(repoRoot, script), ['--path'], { encoding: 'utf8' }).trim().split('\n').pop()!;
}

/** The default image's files in `dir` (created). */
export async function dumpDefaultImage(dir: string): Promise<void> {
  await mkdir(dir);
  execFileSync('debugfs', ['-R', `rdump / ${dir}`, artifact('setup/build-default-image.sh')], { stdio: ['ignore', 'ignore', 'pipe'] });
  await chmod(join(dir, 'tmp'), 0o1777); // rdump drops the sticky bit
  await rm(join(dir, 'lost+found'), { recursive: true, force: true });
}

/** A mount of an OCI bundle's config.json. */
export interface OciMount { destination: string; type: string; source: string; options: string[] }

/** An OCI bundle at `bundle` (created) running `args` over `rootfs`: read-only root, no terminal, `runc spec`'s namespaces and mounts, and `mounts`. */
export async function makeBundle(bundle: string, rootfs: string, args: readonly string[], mounts: readonly OciMount[] = []): Promise<void> {
  await mkdir(bundle);
  execFileSync('runc', ['spec', '--bundle', bundle]);
  const spec = JSON.parse(readFileSync(join(bundle, 'config.json'), 'utf8'));
  spec.process.args = args;
  spec.process.terminal = false;
  spec.root = { path: rootfs, readonly: true };
  spec.mounts.push(...mounts);
  await writeFile(join(bundle, 'config.json'), JSON.stringify(spec, null, 2));
}

/** The first line of `<runtime> --version`. */
export function runtimeVersion(rt: OciRuntime): string {
  return execFileSync(rt, ['--version'], { encoding: 'utf8' }).split('\n')[0]!;
}

/** A container's init process and cgroup, from `<rt> state`. */
export function containerState(rt: OciRuntime, id: string): { pid: number; status: string; cgroup: string | undefined } {
  const state = JSON.parse(execFileSync(rt, ['state', id], { encoding: 'utf8' })) as { pid: number; status: string };
  return { pid: state.pid, status: state.status, cgroup: state.pid > 0 ? cgroupOf(state.pid) : undefined };
}

/** The processes in a running container's cgroup (its init alone without cgroup v2). */
export function containerProcesses(rt: OciRuntime, id: string): number[] {
  const { pid, cgroup } = containerState(rt, id);
  return cgroup ? cgroupProcesses(cgroup) : [pid];
}
