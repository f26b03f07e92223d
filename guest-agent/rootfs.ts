/**
 * The container's root, as a list of mount(2) calls: the image (a read-only
 * block device, a directory of the pod's virtio-fs device, or a directory)
 * under an overlay whose upper layer is on the
 * pod's writable layer disk (a directory per app) or a tmpfs, so the source
 * is never written; then /proc, /sys, /dev, /dev/pts
 * bound in and a fresh tmpfs /tmp, as a container expects; then the pod's
 * volumes the container mounts: the pod's one virtio-fs device (tag
 * VOLUMES_TAG: a directory per volume, served by virtiofsd on the host) is
 * mounted in the container's state directory, and each volume's directory
 * bound onto its target, read-only by a bind remount where asked. The agent
 * (agent/mounted-rootfs.ts) makes them and undoes them in reverse order.
 */
import { joinPath } from './path.js';
import type { RootfsSpec, VolumeMount } from './protocol.js';

/** mount(2) flags, as Linux numbers them. */
export const MS = { RDONLY: 0x1, NOSUID: 0x2, NODEV: 0x4, NOEXEC: 0x8, REMOUNT: 0x20, BIND: 0x1000 } as const;

/** The virtio-fs tag of the pod's volumes (vmm/devices/fs/device.ts on the host). */
export const VOLUMES_TAG = 'vmctr-volumes';

export interface MountCall {
  source: string;
  target: string;
  /** Empty for a bind mount. */
  fstype: string;
  flags: number;
  data: string;
}

export interface MountStep {
  /** Directories to create before the mount, target last (none for a remount). */
  mkdir: string[];
  mount: MountCall;
  target: string;
  /** How errors name the mount point: the container's path for a volume, the agent's own otherwise. */
  label: string;
}

const FLAG_NAMES: Array<[number, string]> = [[MS.REMOUNT, 'remount'], [MS.RDONLY, 'ro'], [MS.NOSUID, 'nosuid'], [MS.NODEV, 'nodev'], [MS.NOEXEC, 'noexec'], [MS.BIND, 'bind']];

/** The mount(8) command line that makes the same call: how errors and tests name a mount. */
export function describeMount(m: MountCall): string {
  const options = [m.data, ...FLAG_NAMES.filter(([flag]) => m.flags & flag).map(([, name]) => name)].filter(Boolean);
  return ['mount', ...(m.fstype ? ['-t', m.fstype] : []), ...(options.length ? ['-o', options.join(',')] : []), ...(m.source ? [m.source] : []), m.target].join(' ');
}

function step(mkdir: string[], source: string, target: string, fstype: string, flags: number, data = '', label = target): MountStep {
  return { mkdir, mount: { source, target, fstype, flags, data }, target, label };
}

/** The mount steps for one container whose state lives under `dir`; `root` is where the container sees "/". */
export function planRootfs(spec: RootfsSpec, dir: string, volumes: readonly VolumeMount[] = []): { root: string; steps: MountStep[] } {
  const shared = joinPath(dir, 'volumes');
  const lower = 'device' in spec ? joinPath(dir, 'lower') : 'share' in spec ? joinPath(shared, spec.share) : spec.directory;
  const scratch = joinPath(dir, 'scratch');
  const layer = 'directory' in spec ? undefined : spec.layer;
  // On the pod's layer disk each app has its own directory; a tmpfs is the container's alone.
  const own = layer ? joinPath(scratch, layer.directory) : scratch;
  const upper = joinPath(own, 'upper'), work = joinPath(own, 'work');
  const root = joinPath(dir, 'root');
  const steps: MountStep[] = [];
  // The virtio-fs device first: an image served on it is the overlay's lower layer.
  if ('share' in spec || volumes.length > 0) steps.push(step([shared], VOLUMES_TAG, shared, 'virtiofs', 0));
  if ('device' in spec) steps.push(step([lower], spec.device, lower, spec.fstype, MS.RDONLY));
  if (layer) steps.push(step([scratch], layer.device, scratch, layer.fstype, 0));
  else steps.push(step([scratch], 'tmpfs', scratch, 'tmpfs', 0, 'mode=0755'));
  steps.push(step([upper, work, root], 'overlay', root, 'overlay', 0, `lowerdir=${lower},upperdir=${upper},workdir=${work}`));
  for (const path of ['/proc', '/sys', '/dev', '/dev/pts']) {
    const target = joinPath(root, path);
    steps.push(step([target], path, target, '', MS.BIND));
  }
  const tmp = joinPath(root, 'tmp');
  steps.push(step([tmp], 'tmpfs', tmp, 'tmpfs', MS.NOSUID | MS.NODEV, 'mode=1777'));
  if (volumes.length === 0) return { root, steps };
  // Shallower targets first: a volume at /data/cache lands inside the one at /data, not under it.
  const depth = (path: string) => path.split('/').filter(Boolean).length;
  for (const volume of [...volumes].sort((a, b) => depth(a.target) - depth(b.target))) {
    const target = joinPath(root, volume.target);
    const label = `volume ${volume.name}'s target ${volume.target}`;
    steps.push(step([target], joinPath(shared, volume.name), target, '', MS.BIND, '', label));
    if (volume.readOnly) steps.push(step([], '', target, '', MS.REMOUNT | MS.BIND | MS.RDONLY, '', label));
  }
  return { root, steps };
}
