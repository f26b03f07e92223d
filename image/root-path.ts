import { lstatSync, mkdirSync, readlinkSync } from 'node:fs';
import { join, posix } from 'node:path';
import { ImageError } from './image-error.js';

const MAX_SYMLINKS = 255;

/**
 * Normalises a path from a layer or a config to one relative to the root
 * filesystem ('' for the root itself). Absolute paths count from the root, as
 * inside the container; a path that climbs out with `..` is refused.
 */
export function containedPath(path: string, what: string): string {
  const normal = posix.normalize(`./${path}`).replace(/\/+$/, '');
  if (normal === '..' || normal.startsWith('../')) throw new ImageError(`${what}: path "${path}" escapes the root filesystem`);
  if (normal === '.' || normal === '') return '';
  return normal.startsWith('/') ? normal.slice(1) : normal;
}

/**
 * Resolves paths inside a root filesystem as the container will see them:
 * symlinks are followed, but an absolute target or a `..` resolves against
 * the root and never leaves it (the rule of chroot, and of securejoin).
 * Directories found real are remembered until `forget`, which must be called
 * whenever something is removed or replaced. Synchronous: unpacking makes
 * thousands of these tiny calls, and a thread-pool round trip each costs
 * several times the system call.
 */
export class RootResolver {
  readonly #known = new Map<string, string>();

  constructor(readonly root: string) {}

  forget(): void {
    this.#known.clear();
  }

  /** The host path of `relative` (already normalised), following symlinks in every component. */
  resolve(relative: string): string {
    const cached = this.#known.get(relative);
    if (cached !== undefined) return cached;
    const pending = relative === '' ? [] : relative.split('/');
    const resolved: string[] = [];
    let links = 0;
    let missing = false;
    while (pending.length > 0) {
      const component = pending.shift()!;
      if (component === '' || component === '.') continue;
      if (component === '..') {
        resolved.pop();
        continue;
      }
      if (missing) {
        resolved.push(component);
        continue;
      }
      const candidate = join(this.root, ...resolved, component);
      let isLink = false;
      try {
        isLink = lstatSync(candidate).isSymbolicLink();
      } catch {
        missing = true;
      }
      if (!isLink) {
        resolved.push(component);
        continue;
      }
      if (++links > MAX_SYMLINKS) throw new ImageError(`too many levels of symbolic links resolving "${relative}"`);
      const target = readlinkSync(candidate);
      if (target.startsWith('/')) resolved.length = 0;
      pending.unshift(...target.split('/'));
    }
    return join(this.root, ...resolved);
  }

  /** Resolves a directory, creating what is missing (mode 0755, as docker does for implied parents). */
  directory(relative: string): string {
    const cached = this.#known.get(relative);
    if (cached !== undefined) return cached;
    const path = this.resolve(relative);
    mkdirSync(path, { recursive: true, mode: 0o755 });
    this.#known.set(relative, path);
    return path;
  }
}
