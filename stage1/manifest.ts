// A stage1 manifest: what set-up recorded about one built artifact, signed
// with the stage1 key (ed25519). It lies beside the artifact, in
// `<artifact>.stage1.json`, as one JSON object holding the signed payload as
// a string and its signature: the bytes verified are the bytes parsed, so
// there is no canonical form of JSON to agree on.
//
// The payload names the artifact's kind and its path besides its digest, so
// a manifest is valid for one file only: one moved beside another artifact
// (an agent image's beside the kernel), or an older signed kernel copied or
// linked with its manifest to where the current one lives, does not match.
import type { KeyObject } from 'node:crypto';
import { isStage1Kind, type Stage1Kind } from './kind.js';

/** node:crypto, loaded only when a manifest is signed or opened: it costs a start about 10 ms, which a remembered check (verification-cache.ts) saves. */
function crypto() {
  return process.getBuiltinModule('node:crypto');
}

const MANIFEST_SUFFIX = '.stage1.json';

/** The manifest of `artifact`: `<artifact>.stage1.json`. */
export function manifestPath(artifact: string): string {
  return `${artifact}${MANIFEST_SUFFIX}`;
}

const MANIFEST_VERSION = 1;

/**
 * Signed before the payload: the key signs nothing else today, but with the
 * prefix no signature made for any other purpose can pass as a manifest's.
 */
const SIGNING_CONTEXT = 'vmctr stage1 manifest v1\n';

const SHA256_HEX = /^[0-9a-f]{64}$/;

export interface Stage1Manifest {
  readonly version: typeof MANIFEST_VERSION;
  readonly kind: Stage1Kind;
  /** The artifact's absolute path as its build script names it (links not resolved: see verify.ts). */
  readonly path: string;
  /** SHA-256 of its bytes, lowercase hex. */
  readonly sha256: string;
  readonly size: number;
  /** The artifact's modification time when it was signed: when its build finished. */
  readonly builtAt: string;
}

/** A manifest that is not one: unreadable JSON, wrong fields, a bad signature; the message completes "the stage1 manifest M of ...". */
export class ManifestError extends Error {}

interface ManifestFile {
  payload: string;
  signature: string;
}

function signedBytes(payload: string): Buffer {
  return Buffer.from(SIGNING_CONTEXT + payload, 'utf8');
}

/** The manifest file's text for `manifest`, signed with `privateKey`. */
export function signManifest(manifest: Omit<Stage1Manifest, 'version'>, privateKey: KeyObject): string {
  const payload = JSON.stringify({ version: MANIFEST_VERSION, ...manifest });
  const file: ManifestFile = { payload, signature: crypto().sign(null, signedBytes(payload), privateKey).toString('base64') };
  return JSON.stringify(file, null, 1) + '\n';
}

/** The manifest in `text` if `publicKey` signed it; a ManifestError otherwise. */
export function openManifest(text: string, publicKey: KeyObject): Stage1Manifest {
  let file: unknown;
  try {
    file = JSON.parse(text);
  } catch {
    throw new ManifestError('is not JSON');
  }
  const { payload, signature } = (file ?? {}) as Partial<ManifestFile>;
  if (typeof payload !== 'string' || typeof signature !== 'string') throw new ManifestError('has no payload and signature');
  if (!crypto().verify(null, signedBytes(payload), publicKey, Buffer.from(signature, 'base64'))) {
    throw new ManifestError(`has a bad signature (not made by the stage1 key ${keyFingerprint(publicKey)})`);
  }
  let value: unknown;
  try {
    value = JSON.parse(payload);
  } catch {
    throw new ManifestError('has a payload that is not JSON');
  }
  return checkedPayload(value);
}

/** A signed payload is ours, but its fields are still checked: a manifest from a future version is refused, not misread. */
function checkedPayload(value: unknown): Stage1Manifest {
  const m = (value ?? {}) as Partial<Record<keyof Stage1Manifest, unknown>>;
  if (m.version !== MANIFEST_VERSION) throw new ManifestError(`has version ${String(m.version)}, not ${MANIFEST_VERSION}`);
  if (!isStage1Kind(m.kind) || typeof m.path !== 'string' || typeof m.sha256 !== 'string' || !SHA256_HEX.test(m.sha256)
    || typeof m.size !== 'number' || !Number.isSafeInteger(m.size) || m.size < 0 || typeof m.builtAt !== 'string') {
    throw new ManifestError('has missing or malformed fields');
  }
  return { version: MANIFEST_VERSION, kind: m.kind, path: m.path, sha256: m.sha256, size: m.size, builtAt: m.builtAt };
}

/** A short name for a public key in messages: the first 16 hex digits of the SHA-256 of its DER form. */
function keyFingerprint(publicKey: KeyObject): string {
  return crypto().createHash('sha256').update(publicKey.export({ type: 'spki', format: 'der' })).digest('hex').slice(0, 16);
}
