// The check before a boot: the artifact vmctr is about to boot is the one
// set-up signed. Its manifest (manifest.ts) must be signed by the stage1 key
// (key.ts), be for this kind of artifact at this real path, and give the
// artifact's size and SHA-256 (file-digest.ts). Every refusal is one line
// naming the file, the reason and what to do; --insecure-options=image
// skips the check (rkt's flag, for development).
import { readFileSync, realpathSync } from 'node:fs';
import { digestCachePath, fileDigest } from './file-digest.js';
import { KeyError, loadPublicKey } from './key.js';
import { KIND_NAMES, type Stage1Artifact } from './kind.js';
import { ManifestError, manifestPath, openManifest } from './manifest.js';

/** The flag, and its value, that boots without the check. */
export const INSECURE_FLAG = '--insecure-options=image';

const REMEDY = `rebuild it with setup/install.sh, or pass ${INSECURE_FLAG}`;

/** A stage1 artifact that may not boot: its message is the one line to print. */
export class Stage1Error extends Error {}

/** What a check found: the digest came from the cache or was computed (for measurements). */
export interface Verified {
  readonly path: string;
  readonly cached: boolean;
}

/** Checks `artifact` against its signed manifest; throws a Stage1Error saying why it may not boot. */
export function verifyArtifact(artifact: Stage1Artifact): Verified {
  const what = KIND_NAMES[artifact.kind];
  let path: string;
  try {
    path = realpathSync(artifact.path);
  } catch (e) {
    throw new Stage1Error(`${what} ${artifact.path} cannot be read (${(e as NodeJS.ErrnoException).code}): run setup/install.sh`);
  }
  let publicKey;
  try {
    publicKey = loadPublicKey();
  } catch (e) {
    if (e instanceof KeyError) throw new Stage1Error(`cannot verify ${what} ${path}: ${e.message}, or pass ${INSECURE_FLAG}`);
    throw e;
  }
  const manifestFile = manifestPath(path);
  let text: string;
  try {
    text = readFileSync(manifestFile, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new Stage1Error(`${what} ${path} has no signed stage1 manifest (${manifestFile}): sign it with setup/install.sh, or pass ${INSECURE_FLAG}`);
    throw new Stage1Error(`${what} ${path}: cannot read its stage1 manifest ${manifestFile} (${code}): ${REMEDY}`);
  }
  let manifest;
  try {
    manifest = openManifest(text, publicKey);
  } catch (e) {
    if (e instanceof ManifestError) throw new Stage1Error(`the stage1 manifest ${manifestFile} of ${what} ${path} ${e.message}: ${REMEDY}`);
    throw e;
  }
  if (manifest.kind !== artifact.kind || manifest.path !== path) {
    throw new Stage1Error(`the stage1 manifest ${manifestFile} is for ${KIND_NAMES[manifest.kind]} ${manifest.path}, not ${what} ${path}: ${REMEDY}`);
  }
  let digest;
  try {
    digest = fileDigest(path, digestCachePath());
  } catch (e) {
    throw new Stage1Error(`${what} ${path} cannot be read (${(e as NodeJS.ErrnoException).code}): ${REMEDY}`);
  }
  if (digest.size !== manifest.size || digest.sha256 !== manifest.sha256) {
    throw new Stage1Error(`${what} ${path} does not match its signed digest (stage1 manifest ${manifestFile}): ${REMEDY}`);
  }
  return { path, cached: digest.cached };
}

/** Checks each artifact in turn unless `insecure` (--insecure-options=image) says not to. */
export function verifyStage1(artifacts: readonly Stage1Artifact[], insecure: boolean): void {
  if (insecure) return;
  for (const artifact of artifacts) verifyArtifact(artifact);
}
