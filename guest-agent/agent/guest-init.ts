/**
 * What an init does before the agent can serve, when the agent is PID 1 of
 * the guest (the agent image's /init): the kernel's filesystems, devpts for
 * ttys, the /dev links shells expect, tmpfs on /run and /tmp, and the
 * loopback interface up (a pod's apps share the guest's network, so they
 * talk over localhost), and cgroup v2 with a subtree for the apps. The root stays read-only; every write goes to tmpfs.
 */
import { MS } from '../rootfs.js';
import { encodeUtf8 } from '../utf8.js';
import type { Platform } from './platform.js';

export function initGuest(platform: Platform): void {
  const mount = (source: string, target: string, fstype: string, flags: number, data = '') =>
    platform.mount({ source, target, fstype, flags, data });
  mount('proc', '/proc', 'proc', MS.NOSUID | MS.NODEV | MS.NOEXEC);
  mount('sysfs', '/sys', 'sysfs', MS.NOSUID | MS.NODEV | MS.NOEXEC);
  // The kernel mounts devtmpfs itself (DEVTMPFS_MOUNT) for a disk root, not for an initramfs.
  if (!platform.exists('/dev/null')) mount('devtmpfs', '/dev', 'devtmpfs', 0);
  platform.makeDirectory('/dev/pts');
  mount('devpts', '/dev/pts', 'devpts', 0, 'ptmxmode=0666,mode=0620,gid=5');
  // devtmpfs lacks these; containers bind /dev and shells expect them.
  for (const [target, path] of [['/proc/self/fd', '/dev/fd'], ['/proc/self/fd/0', '/dev/stdin'], ['/proc/self/fd/1', '/dev/stdout'], ['/proc/self/fd/2', '/dev/stderr']] as const) {
    if (!platform.exists(path)) platform.symlink(target, path);
  }
  mount('tmpfs', '/run', 'tmpfs', MS.NOSUID | MS.NODEV, 'mode=0755');
  mount('tmpfs', '/tmp', 'tmpfs', MS.NOSUID | MS.NODEV, 'mode=1777');
  platform.interfaceUp('lo');
  // cgroup v2, with vmctr's subtree for the apps (agent.ts: one cgroup each); memory, cpu and pids for them where the kernel has them.
  mount('cgroup2', '/sys/fs/cgroup', 'cgroup2', MS.NOSUID | MS.NODEV | MS.NOEXEC);
  platform.makeDirectory(APP_CGROUPS);
  for (const dir of ['/sys/fs/cgroup', APP_CGROUPS]) {
    for (const controller of ['memory', 'cpu', 'pids']) {
      try {
        platform.writeFile(`${dir}/cgroup.subtree_control`, encodeUtf8(`+${controller}`));
      } catch {
        // a kernel without that controller: the apps still get their own cgroups
      }
    }
  }
}

/** The apps' cgroups live below this one (/sys/fs/cgroup/vmctr/<id>). */
export const APP_CGROUPS = '/sys/fs/cgroup/vmctr';
