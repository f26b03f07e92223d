import { randomBytes } from 'node:crypto';
import { unlinkSync } from 'node:fs';
import { readdir, readFile, rename, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { holderAlive, holderFromName, holderTag } from './holder.js';
import { onExit } from './exit-cleanup.js';
import type { Digest } from './digest.js';
import type { ImageStore } from './store.js';

/**
 * Protects blobs and snapshots a live process is using (a pull in progress, a
 * running container) from garbage collection, which otherwise only keeps what
 * images.json names. A pin is a file in pins/ named after its process; the
 * pins of dead processes are ignored and removed.
 */
export class Pin {
  readonly #store: ImageStore;
  readonly #path: string;
  readonly #digests = new Set<Digest>();
  readonly #dispose: () => void;

  constructor(store: ImageStore) {
    this.#store = store;
    this.#path = join(store.pinsDir, `${holderTag()}-${randomBytes(6).toString('hex')}.json`);
    const path = this.#path;
    this.#dispose = onExit(() => unlinkSync(path));
  }

  /**
   * Pins more digests. Done under the store lock and before the content is
   * looked for or written, so a concurrent prune either sees the pin or has
   * finished before the content is checked.
   */
  async add(digests: Iterable<Digest>): Promise<void> {
    for (const digest of digests) this.#digests.add(digest);
    await this.#store.withStoreLock(async () => {
      const tmp = `${this.#path}.tmp`;
      await writeFile(tmp, JSON.stringify([...this.#digests]));
      await rename(tmp, this.#path);
    });
  }

  async release(): Promise<void> {
    this.#dispose();
    await unlink(this.#path).catch(() => undefined);
  }
}

/** Digests pinned by live processes; removes the pins of dead ones. Call under the store lock. */
export async function livePins(store: ImageStore): Promise<Set<Digest>> {
  const pinned = new Set<Digest>();
  for (const name of await readdir(store.pinsDir)) {
    const path = join(store.pinsDir, name);
    const holder = holderFromName(name);
    if (!holder || !holderAlive(holder)) {
      await unlink(path).catch(() => undefined);
      continue;
    }
    if (!name.endsWith('.json')) continue;
    try {
      for (const digest of JSON.parse(await readFile(path, 'utf8')) as Digest[]) pinned.add(digest);
    } catch {
      // a pin being rewritten is replaced by rename; a vanished one is released
    }
  }
  return pinned;
}
