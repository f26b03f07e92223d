import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FileImage } from '../vmm/boot/boot-image.js';
import { DPKG_STATUS, lookupArtifact, type ArtifactLookup } from './artifact-lookup.js';
import { cacheDir } from './cache-dir.js';
import { UserError } from './user-error.js';

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

function notBuilt(script: string, what: string): UserError {
  return new UserError(`the ${what} is not built: run setup/install.sh (or ${script})`);
}

/**
 * How a cached-artifact script's answer is found (artifact-lookup.ts): its
 * `inputs`, relative to the repository, besides the script itself and dpkg's
 * status (package versions, ldd's libraries).
 */
function artifactLookup(script: string, inputs: readonly string[]): ArtifactLookup {
  return { script: join(repoRoot, script), inputs: [...inputs.map((i) => join(repoRoot, i)), DPKG_STATUS], recordFile: join(cacheDir(), 'artifact-paths.json') };
}

/** Asks a cached-artifact script for its path (it fails if the artifact is not built), remembered while its inputs are unchanged. */
function rememberedArtifact(lookup: ArtifactLookup, what: string): string {
  try {
    return lookupArtifact(lookup);
  } catch {
    throw notBuilt(lookup.script.slice(repoRoot.length + 1), what);
  }
}

/** The project's guest kernel (kernel-config/), built at set-up; its key: the config fragment and linux-source's version. */
export function kernelLookup(): ArtifactLookup {
  return artifactLookup('kernel-config/build-kernel.sh', ['kernel-config/vmctr.config']);
}

export function defaultKernelPath(): string {
  return rememberedArtifact(kernelLookup(), 'guest kernel');
}

/** The demo guest's initramfs (setup/build-demo-initramfs.sh); its key: the script and busybox-static's version. */
export function demoInitramfsLookup(): ArtifactLookup {
  return artifactLookup('setup/build-demo-initramfs.sh', []);
}

export function demoInitramfsPath(): string {
  return rememberedArtifact(demoInitramfsLookup(), 'demo initramfs');
}

/** Every file under guest-agent/ (the agent's sources, QuickJS, vmctr-exec, the build scripts), relative to the repository. */
function agentSources(dir = 'guest-agent'): string[] {
  return readdirSync(join(repoRoot, dir), { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory() ? agentSources(`${dir}/${entry.name}`) : [`${dir}/${entry.name}`],
  ).sort();
}

/** The guest agent's read-only disk image (guest-agent/build-agent-image.sh); its key: the agent's sources, QuickJS, vmctr-exec and esbuild. */
export function agentImageLookup(): ArtifactLookup {
  const inputs = [...agentSources().filter((f) => f !== 'guest-agent/build-agent-image.sh'), 'node_modules/esbuild/package.json'];
  return artifactLookup('guest-agent/build-agent-image.sh', inputs);
}

export function agentImagePath(): string {
  return rememberedArtifact(agentImageLookup(), 'guest agent image');
}

/** The built-in `default` container image (setup/build-default-image.sh); its key: the script, the disk builder and busybox-static's version. */
export function defaultImagePath(): string {
  return rememberedArtifact(artifactLookup('setup/build-default-image.sh', ['pod/rootfs-disk.ts']), 'default image');
}

/** A file named on the command line that cannot be read, as a one-line user error. */
function inputFileError(e: unknown, path: string, what: string): UserError {
  const code = (e as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return new UserError(`${what} not found: ${path}`);
  if (code === 'EISDIR') return new UserError(`${what} is a directory: ${path}`);
  if (code === 'EACCES') return new UserError(`${what} is not readable: ${path}`);
  return new UserError(`cannot read ${what} ${path}: ${code ?? (e as Error).message}`);
}

/** Reads a file named on the command line, turning I/O errors into one-line user errors. */
export function readInputFile(path: string, what: string): Uint8Array {
  try {
    return readFileSync(path);
  } catch (e) {
    throw inputFileError(e, path, what);
  }
}

/** Opens a file named on the command line for loading into guest memory (read later, in pieces); errors as readInputFile's. */
export function openInputFile(path: string, what: string): FileImage {
  try {
    return FileImage.open(path);
  } catch (e) {
    throw inputFileError(e, path, what);
  }
}
