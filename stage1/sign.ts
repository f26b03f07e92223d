// Signing an artifact at set-up: its manifest, with the artifact's path (as
// its build script names it, the path vmctr will look it up at), size,
// digest and build time, signed with the stage1 private key.
import { chmodSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileDigest } from './digest.js';
import { loadPrivateKey } from './key.js';
import type { Stage1Artifact } from './kind.js';
import { manifestPath, signManifest } from './manifest.js';

const MANIFEST_MODE = 0o644;

/** Writes the signed manifest of `artifact` beside it (atomically); returns the manifest's path. */
export function signArtifact(artifact: Stage1Artifact): string {
  const path = resolve(artifact.path);
  const digest = fileDigest(path);
  const builtAt = statSync(path).mtime.toISOString();
  const text = signManifest({ kind: artifact.kind, path, sha256: digest.sha256, size: digest.size, builtAt }, loadPrivateKey());
  const file = manifestPath(path);
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, text);
  chmodSync(tmp, MANIFEST_MODE); // whatever the umask: every user who may boot the artifact reads its manifest
  renameSync(tmp, file);
  return file;
}
