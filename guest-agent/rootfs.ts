/**
 * The container's root: the image (a read-only block device, or a directory)
 * under an overlay whose upper layer is a tmpfs, so the source is never
 * written; then /proc, /sys, /dev, /dev/pts bound in and a fresh tmpfs /tmp,
 * as a container expects. Mounts are undone in reverse order.
 */
import { lstat, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { runCommand } from './command.js';
import type { RootfsSpec } from './protocol.js';

export interface MountStep {
  /** Directories to create before the mount, target last. */
  mkdir: string[];
  argv: string[];
  target: string;
}

/** The mount steps for one container whose state lives under `dir`; `root` is where the container sees "/". */
export function planRootfs(spec: RootfsSpec, dir: string): { root: string; steps: MountStep[] } {
  const lower = 'device' in spec ? join(dir, 'lower') : spec.directory;
  const scratch = join(dir, 'scratch');
  const upper = join(scratch, 'upper'), work = join(scratch, 'work');
  const root = join(dir, 'root');
  const steps: MountStep[] = [];
  if ('device' in spec) {
    steps.push({ mkdir: [lower], argv: ['mount', '-t', spec.fstype, '-o', 'ro', spec.device, lower], target: lower });
  }
  steps.push({ mkdir: [scratch], argv: ['mount', '-t', 'tmpfs', '-o', 'mode=0755', 'tmpfs', scratch], target: scratch });
  steps.push({
    mkdir: [upper, work, root],
    argv: ['mount', '-t', 'overlay', '-o', `lowerdir=${lower},upperdir=${upper},workdir=${work}`, 'overlay', root],
    target: root,
  });
  for (const path of ['/proc', '/sys', '/dev', '/dev/pts']) {
    const target = join(root, path);
    steps.push({ mkdir: [target], argv: ['mount', '-o', 'bind', path, target], target });
  }
  const tmp = join(root, 'tmp');
  steps.push({ mkdir: [tmp], argv: ['mount', '-t', 'tmpfs', '-o', 'mode=1777,nosuid,nodev', 'tmpfs', tmp], target: tmp });
  return { root, steps };
}

export class MountedRootfs {
  private constructor(
    readonly root: string,
    private readonly targets: string[],
  ) {}

  static async mount(spec: RootfsSpec, dir: string): Promise<MountedRootfs> {
    const { root, steps } = planRootfs(spec, dir);
    const done: string[] = [];
    try {
      for (const step of steps) {
        for (const path of step.mkdir) await mkdir(path, { recursive: true });
        // mount follows symlinks outside the container: an image's /proc -> /run would cover the agent's own /run.
        if (!(await lstat(step.target)).isDirectory()) throw new Error(`${step.target} is not a directory`);
        await runCommand(step.argv);
        done.push(step.target);
      }
    } catch (err) {
      await new MountedRootfs(root, done).unmount().catch(() => {});
      throw err;
    }
    return new MountedRootfs(root, done);
  }

  /** Unmounts in reverse; a busy mount is detached lazily so shutdown is never stuck on it. */
  async unmount(): Promise<void> {
    for (const target of this.targets.reverse()) {
      await runCommand(['umount', target]).catch(() => runCommand(['umount', '-l', target]));
    }
    this.targets.length = 0;
  }
}
