/** A container's root filesystem, mounted as rootfs.ts plans it; unmounted in reverse order. */
import { MS, describeMount, planRootfs } from '../rootfs.js';
import type { RootfsSpec, VolumeMount } from '../protocol.js';
import type { Platform } from './platform.js';

export class MountedRootfs {
  private constructor(
    private readonly platform: Platform,
    readonly root: string,
    private readonly targets: string[],
  ) {}

  static mount(platform: Platform, spec: RootfsSpec, dir: string, volumes: readonly VolumeMount[] = []): MountedRootfs {
    const { root, steps } = planRootfs(spec, dir, volumes);
    const done: string[] = [];
    try {
      for (const step of steps) {
        for (const path of step.mkdir) platform.makeDirectory(path);
        // mount follows symlinks outside the container: an image's /proc -> /run would cover the agent's own /run.
        if (!platform.isDirectory(step.target)) throw new Error(`${step.label} is not a directory`);
        try {
          platform.mount(step.mount);
        } catch (err) {
          throw new Error(`${describeMount(step.mount)}: ${(err as Error).message.replace(/^mount [^:]*: /, '')}`);
        }
        // A remount changes a mount already counted: one unmount undoes both.
        if (!(step.mount.flags & MS.REMOUNT)) done.push(step.target);
      }
    } catch (err) {
      new MountedRootfs(platform, root, done).unmount();
      throw err;
    }
    return new MountedRootfs(platform, root, done);
  }

  /** Unmounts in reverse; a busy mount is detached lazily so shutdown is never stuck on it. */
  unmount(): void {
    for (const target of this.targets.reverse()) {
      try {
        this.platform.unmount(target, false);
      } catch {
        try {
          this.platform.unmount(target, true);
        } catch (err) {
          this.platform.log((err as Error).message);
        }
      }
    }
    this.targets.length = 0;
  }
}
