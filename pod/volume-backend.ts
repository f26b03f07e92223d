// A pod's volumes on the host: one directory (PodDir.volumesDir) with a
// directory per volume, served to the guest by one virtiofsd over the pod's
// one virtio-fs device. An empty volume is that directory itself (it lives
// and dies with the pod's directory); a host volume is its source bound onto
// it in a mount namespace of virtiofsd's own, read-only there when the
// volume is, so the host's mount table never changes and the backend itself
// refuses writes to a read-only volume, whatever the guest does.
//
// virtiofsd (QEMU's, the one Debian 12 packages) runs sandboxed: its own
// mount, PID and network namespaces with the volumes directory as its root
// (sandbox=namespace), and its built-in seccomp filter. Settings, chosen:
// cache=auto, close-to-open consistency with 1 s attribute and entry
// timeouts (as NFS), so a pod keeps its page cache and two pods sharing a
// volume, or the host and a pod, see each other's files within a second;
// writes go through to the host as they are made (no writeback cache), so
// nothing written is lost when the pod ends. xattr on (capabilities and
// labels of files survive); POSIX ACLs off (the guest kernel has no FUSE
// ACL support). No announce_submounts: with it each host volume is an
// automount in the guest, and Linux 6.1 fails (ENOENT) the second app that
// binds one; without it the volumes are one filesystem to the guest, whose
// inode numbers may repeat across volumes (FUSE keeps files apart by node
// id, so only tools that compare st_ino across volumes can be misled).
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, closeSync, constants, existsSync, mkdirSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { PodDir } from './pod-dir.js';

export const VIRTIOFSD = '/usr/lib/qemu/virtiofsd';
/** How long virtiofsd has to create its socket. */
const START_TIMEOUT_MS = 10_000;
const SOCKET_POLL_MS = 10;
/** How long virtiofsd has to exit once asked (it also exits by itself when the VMM closes its socket). */
const STOP_TIMEOUT_MS = 2_000;
/** How much of virtiofsd's log an error quotes. */
const LOG_TAIL_BYTES = 4096;

/** A volume as the backend serves it: `source` for a host volume, none for an empty one. */
export interface BackendVolume {
  name: string;
  source?: string | undefined;
  readOnly: boolean;
}

/** The directory of the backend's root that serves app `index`'s image (--rootfs fs): no volume's name starts with "_" (SAFE_NAME). */
export function rootfsShareName(index: number): string {
  return `_rootfs-${index}`;
}

export class VolumeBackendError extends Error {
  override name = 'VolumeBackendError';
}

// Binds each host volume in a private mount namespace, then becomes virtiofsd:
//   sh -c SCRIPT sh ROOT [NAME SOURCE ro|rw]... -- VIRTIOFSD ARGS...
// virtiofsd's pid file (/run/virtiofsd/<socket path>.pid) goes to a tmpfs of
// that namespace, so it never outlives the process on the host.
const BIND_SCRIPT = `root=$1; shift
mkdir -p /run/virtiofsd && mount -t tmpfs -o size=1m,mode=0700 vmctr-virtiofsd /run/virtiofsd || exit 125
while [ "$1" != -- ]; do
  mount --bind "$2" "$root/$1" || exit 125
  if [ "$3" = ro ]; then mount -o remount,bind,ro "$root/$1" || exit 125; fi
  shift 3
done
shift; exec "$@"`;

export class VolumeBackend {
  /** Resolves with a one-line reason once virtiofsd has exited, whenever that is. */
  readonly exited: Promise<string>;
  private running = true;

  private constructor(
    private readonly child: ChildProcess,
    readonly socket: string,
    log: string,
  ) {
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        this.running = false;
        const how = signal ? `was killed by ${signal}` : `exited with status ${code}`;
        const said = lastLine(log);
        resolve(`the volume backend (virtiofsd) ${how}${said ? `: ${said}` : ''}`);
      });
    });
  }

  /** Lays out `dir`'s volumes directory and starts virtiofsd on it; resolves once its socket is there. */
  static async start(dir: PodDir, volumes: readonly BackendVolume[]): Promise<VolumeBackend> {
    try {
      accessSync(VIRTIOFSD, constants.X_OK);
    } catch {
      throw new VolumeBackendError(`volumes need virtiofsd, which is not installed at ${VIRTIOFSD} (Debian's qemu-system-common has it)`);
    }
    const root = dir.volumesDir;
    mkdirSync(root, { recursive: true });
    const binds: string[] = [];
    for (const v of volumes) {
      mkdirSync(join(root, v.name), { recursive: true });
      if (v.source !== undefined) binds.push(v.name, v.source, v.readOnly ? 'ro' : 'rw');
    }
    const args = [
      `--socket-path=${dir.volumesSocket}`, '-o', `source=${root}`, '-o', 'sandbox=namespace', '-o', 'cache=auto',
      '-o', 'xattr', '-o', 'no_posix_acl', '-o', 'log_level=warn',
    ];
    const logFd = openSync(dir.volumesLog, 'a');
    let child: ChildProcess;
    try {
      child = spawn('unshare', ['--mount', '--propagation', 'private', '--', '/bin/sh', '-c', BIND_SCRIPT, 'sh', root, ...binds, '--', VIRTIOFSD, ...args], {
        stdio: ['ignore', logFd, logFd],
      });
    } finally {
      closeSync(logFd);
    }
    const backend = new VolumeBackend(child, dir.volumesSocket, dir.volumesLog);
    child.once('error', () => {}); // reported through `exited`
    const deadline = performance.now() + START_TIMEOUT_MS;
    while (!existsSync(dir.volumesSocket)) {
      const early = await Promise.race([backend.exited, delay(SOCKET_POLL_MS)]);
      if (typeof early === 'string') throw new VolumeBackendError(early.replace('the volume backend (virtiofsd)', 'the volume backend (virtiofsd) did not start: it'));
      if (performance.now() > deadline) {
        backend.kill();
        throw new VolumeBackendError(`the volume backend (virtiofsd) did not create its socket within ${START_TIMEOUT_MS / 1000} s`);
      }
    }
    return backend;
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  /** Ends virtiofsd (SIGTERM, then SIGKILL) and waits for it. */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.kill(), STOP_TIMEOUT_MS);
    await this.exited;
    clearTimeout(timer);
  }

  private kill(): void {
    if (this.running) this.child.kill('SIGKILL');
  }
}

const delay = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** The last non-empty line of a log, without virtiofsd's "[timestamp] [ID: pid]" prefix. */
function lastLine(path: string): string {
  let text: string;
  try {
    const all = readFileSync(path);
    text = all.subarray(Math.max(0, all.length - LOG_TAIL_BYTES)).toString('utf8');
  } catch {
    return '';
  }
  const line = text.split('\n').map((l) => l.trim()).filter(Boolean).at(-1) ?? '';
  return line.replace(/^\[[^\]]*\] \[ID: \d+\] /, '');
}
