import { randomBytes } from 'node:crypto';
import { readFileSync, unlinkSync } from 'node:fs';
import { link, readFile, unlink, writeFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { currentHolder, holderAlive, holderTag, type Holder } from './holder.js';
import { onExit } from './exit-cleanup.js';

interface LockContent extends Holder {
  readonly nonce: string;
}

function parseContent(text: string): LockContent | undefined {
  try {
    const value = JSON.parse(text) as LockContent;
    return typeof value.pid === 'number' && typeof value.start === 'string' ? value : undefined;
  } catch {
    return undefined;
  }
}

async function readText(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

// Creates `path` holding `text`, atomically and only if it does not exist:
// the content is written to a private file first and hard-linked into place,
// so nobody ever reads a lock file that is half written.
async function createExclusive(path: string, text: string): Promise<boolean> {
  const staging = `${path}.${holderTag()}-${randomBytes(4).toString('hex')}`;
  await writeFile(staging, text);
  try {
    await link(staging, path);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw error;
  } finally {
    await unlink(staging);
  }
}

async function removeIfUnchanged(path: string, text: string): Promise<void> {
  if ((await readText(path)) === text) await unlink(path).catch(() => undefined);
}

export interface LockWait {
  /** Called once, when the lock is found held by another live process. */
  readonly onWait?: (holder: Holder) => void;
}

/**
 * An exclusive lock between processes on one host, as a file created
 * atomically. The file names its holder (pid and start time); a lock whose
 * holder has died is broken by the next process that wants it.
 */
export class FileLock {
  readonly #path: string;
  readonly #text: string;
  readonly #dispose: () => void;

  private constructor(path: string, text: string) {
    this.#path = path;
    this.#text = text;
    this.#dispose = onExit(() => {
      if (readFileSync(path, 'utf8') === text) unlinkSync(path);
    });
  }

  static async acquire(path: string, options: LockWait = {}): Promise<FileLock> {
    const text = JSON.stringify({ ...currentHolder(), nonce: randomBytes(8).toString('hex') } satisfies LockContent);
    let delay = 5;
    let told = false;
    for (;;) {
      if (await createExclusive(path, text)) return new FileLock(path, text);
      const existing = await readText(path);
      if (existing === undefined) continue;
      const holder = parseContent(existing);
      if (holder === undefined || !holderAlive(holder)) {
        await FileLock.#breakStale(path, existing);
        continue;
      }
      if (!told) {
        told = true;
        options.onWait?.(holder);
      }
      await sleep(delay + Math.random() * delay);
      delay = Math.min(delay * 2, 200);
    }
  }

  // Only one process may break a given stale lock: otherwise a slow breaker
  // could delete the fresh lock a faster one has just taken. The breaker
  // claims `<lock>.breaking` first and re-checks the content under that claim.
  static async #breakStale(path: string, staleText: string): Promise<void> {
    const breaking = `${path}.breaking`;
    const claim = JSON.stringify({ ...currentHolder(), nonce: randomBytes(8).toString('hex') } satisfies LockContent);
    if (!(await createExclusive(breaking, claim))) {
      const other = await readText(breaking);
      const breaker = other === undefined ? undefined : parseContent(other);
      if (other !== undefined && (breaker === undefined || !holderAlive(breaker))) await removeIfUnchanged(breaking, other);
      await sleep(5);
      return;
    }
    try {
      await removeIfUnchanged(path, staleText);
    } finally {
      await unlink(breaking);
    }
  }

  async release(): Promise<void> {
    this.#dispose();
    await removeIfUnchanged(this.#path, this.#text);
  }
}

/** Runs `work` holding the lock at `path`. */
export async function withLock<T>(path: string, work: () => Promise<T>, options: LockWait = {}): Promise<T> {
  const lock = await FileLock.acquire(path, options);
  try {
    return await work();
  } finally {
    await lock.release();
  }
}
