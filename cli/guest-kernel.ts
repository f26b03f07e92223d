import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { UserError } from './user-error.js';

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** Asks a cached-artifact script for its path (it fails if the artifact is not built). */
function cachedArtifact(script: string, what: string): string {
  try {
    return execFileSync(join(repoRoot, script), ['--path'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim().split('\n').pop()!;
  } catch {
    throw new UserError(`the ${what} is not built: run setup/install.sh (or ${script})`);
  }
}

/** The project's guest kernel (kernel-config/), built at set-up. */
export function defaultKernelPath(): string {
  return cachedArtifact('kernel-config/build-kernel.sh', 'guest kernel');
}

/** The demo guest's initramfs (setup/build-demo-initramfs.sh). */
export function demoInitramfsPath(): string {
  return cachedArtifact('setup/build-demo-initramfs.sh', 'demo initramfs');
}

/** The guest agent's read-only disk image (guest-agent/build-agent-image.sh). */
export function agentImagePath(): string {
  return cachedArtifact('guest-agent/build-agent-image.sh', 'guest agent image');
}

/** The built-in `default` container image (setup/build-default-image.sh). */
export function defaultImagePath(): string {
  return cachedArtifact('setup/build-default-image.sh', 'default image');
}

/** Reads a file named on the command line, turning I/O errors into one-line user errors. */
export function readInputFile(path: string, what: string): Uint8Array {
  try {
    return readFileSync(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new UserError(`${what} not found: ${path}`);
    if (code === 'EISDIR') throw new UserError(`${what} is a directory: ${path}`);
    if (code === 'EACCES') throw new UserError(`${what} is not readable: ${path}`);
    throw new UserError(`cannot read ${what} ${path}: ${code ?? (e as Error).message}`);
  }
}
