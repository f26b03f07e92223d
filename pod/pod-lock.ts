// A pod's lock: an exclusive flock(2) on a file in the pod's directory, held
// by the pod's monitor for its whole life. The CLI takes it, spawns the
// monitor with the lock's fd as one of its stdio entries (the monitor then
// shares the open file description, and a flock belongs to that), and closes
// its own fd. The kernel drops the lock when the monitor's last fd to it
// closes, however the monitor dies, SIGKILL included: the lock is held
// exactly while the monitor lives, with no pid to go stale.
//
// No one else inherits it: Node opens files close-on-exec, spawn clears that
// only in the child it hands the fd to, and Node marks every fd it inherits
// close-on-exec at startup (uv_disable_stdio_inheritance), so the monitor's
// own children do not get it. A monitor that is not Node must do the same.
import { closeSync, constants, openSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { native } from '../vmm/kvm/native.js';

export class PodLock {
  #open = true;

  private constructor(readonly fd: number) {}

  /** Takes the lock at `path` (creating the file) if nobody holds it. */
  static tryAcquire(path: string): PodLock | undefined {
    // 0600: whoever can open the file can flock it, and a shared lock held
    // by another user would keep the pod from being locked.
    const fd = openSync(path, constants.O_RDWR | constants.O_CREAT, 0o600);
    let locked = false;
    try {
      locked = native.flock(fd, 'exclusive', false);
    } finally {
      if (!locked) closeSync(fd);
    }
    return locked ? new PodLock(fd) : undefined;
  }

  /**
   * Takes the lock, waiting up to `timeoutMs` for its holder to let go.
   * Polls: a blocking flock would stop Node's only thread.
   */
  static async acquire(path: string, timeoutMs: number): Promise<PodLock | undefined> {
    const deadline = performance.now() + timeoutMs;
    for (let delay = 2; ; delay = Math.min(delay * 2, 50)) {
      const lock = PodLock.tryAcquire(path);
      if (lock) return lock;
      const left = deadline - performance.now();
      if (left <= 0) return undefined;
      await sleep(Math.min(delay, left));
    }
  }

  /**
   * Closes this process's fd. Never LOCK_UN: that would unlock the open file
   * description, so also a monitor that inherited it.
   */
  release(): void {
    // Once only: the fd number may belong to another file after the close.
    if (!this.#open) return;
    this.#open = false;
    closeSync(this.fd);
  }

  /**
   * Whether some process holds the lock at `path`; a missing file is a lock
   * nobody holds. The probe holds a shared lock for an instant, so a
   * tryAcquire at that instant can fail: acquire() tries again.
   */
  static isHeld(path: string): boolean {
    let fd: number;
    try {
      fd = openSync(path, constants.O_RDONLY);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw err;
    }
    try {
      return !native.flock(fd, 'shared', false);
    } finally {
      closeSync(fd);
    }
  }
}
