// The check before a boot: the artifact vmctr is about to boot is the one
// set-up signed. Its manifest (manifest.ts) must be signed by the stage1 key
// (key.ts), be for this kind of artifact at this path, and give the
// artifact's size and SHA-256 (digest.ts); a check that passed is
// remembered by the stamps of the files it read (verification-cache.ts).
// Every refusal is one line naming the file, the reason and what to do;
// --insecure-options=image skips the check (rkt's flag, for development).
import { statSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileDigest } from './digest.js';
import { readStamped } from './files.js';
import { KeyError, loadPublicKey, publicKeyPath } from './key.js';
import { KIND_NAMES, type Stage1Artifact } from './kind.js';
import { ManifestError, manifestPath, openManifest } from './manifest.js';
import { isRemembered, remember, stampOf } from './verification-cache.js';

/** The flag, and its value, that boots without the check. */
export const INSECURE_FLAG = '--insecure-options=image';

const REMEDY = `rebuild it with setup/install.sh, or pass ${INSECURE_FLAG}`;

/** A stage1 artifact that may not boot: its message is the one line to print. */
export class Stage1Error extends Error {}

/** What a check found: whether it was remembered (verification-cache.ts) or made in full (for measurements). */
export interface Verified {
  readonly path: string;
  readonly cached: boolean;
}

/** Checks `artifact` against its signed manifest; throws a Stage1Error saying why it may not boot. */
export function verifyArtifact(artifact: Stage1Artifact): Verified {
  const what = KIND_NAMES[artifact.kind];
  // The path as given, not resolved: a symbolic link planted where an artifact lives, to an older signed one, must not pass.
  const path = resolve(artifact.path);
  try {
    statSync(path);
  } catch (e) {
    throw new Stage1Error(`${what} ${path} cannot be read (${(e as NodeJS.ErrnoException).code}): run setup/install.sh`);
  }
  const checked = { kind: artifact.kind, path };
  const manifestFile = manifestPath(path);
  if (isRemembered(checked, [path, manifestFile, publicKeyPath()])) return { path, cached: true };

  let publicKey;
  try {
    publicKey = loadPublicKey();
  } catch (e) {
    if (e instanceof KeyError) throw new Stage1Error(`cannot verify ${what} ${path}: ${e.message}, or pass ${INSECURE_FLAG}`);
    throw e;
  }
  let file;
  try {
    file = readStamped(manifestFile);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new Stage1Error(`${what} ${path} has no signed stage1 manifest (${manifestFile}): run setup/install.sh, which signs what it builds, or pass ${INSECURE_FLAG}`);
    throw new Stage1Error(`${what} ${path}: cannot read its stage1 manifest ${manifestFile} (${code}): ${REMEDY}`);
  }
  let manifest;
  try {
    manifest = openManifest(file.text, publicKey.key);
  } catch (e) {
    if (e instanceof ManifestError) throw new Stage1Error(`the stage1 manifest ${manifestFile} of ${what} ${path} ${e.message}: ${REMEDY}`);
    throw e;
  }
  if (manifest.kind !== artifact.kind || manifest.path !== path) {
    throw new Stage1Error(`the stage1 manifest ${manifestFile} is for ${KIND_NAMES[manifest.kind]} ${manifest.path}, not ${what} ${path}: ${REMEDY}`);
  }
  let digest;
  try {
    digest = fileDigest(path);
  } catch (e) {
    throw new Stage1Error(`${what} ${path} cannot be read (${(e as NodeJS.ErrnoException).code}): ${REMEDY}`);
  }
  if (digest.size !== manifest.size || digest.sha256 !== manifest.sha256) {
    throw new Stage1Error(`${what} ${path} does not match its signed digest (stage1 manifest ${manifestFile}): ${REMEDY}`);
  }
  // Remembered only if the artifact did not change while it was read.
  if (stampOf(digest.before) === stampOf(digest.after)) remember(checked, [digest.before, file.stats, publicKey.stats]);
  return { path, cached: false };
}

/** Checks each artifact in turn unless `insecure` (--insecure-options=image) says not to. */
export function verifyStage1(artifacts: readonly Stage1Artifact[], insecure: boolean): void {
  if (insecure) return;
  for (const artifact of artifacts) verifyArtifact(artifact);
}
