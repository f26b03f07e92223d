// The stage1 key: an ed25519 key pair made once at set-up
// (setup/install.sh), which signs the manifests of the artifacts set-up
// builds and whose public half vmctr checks them with before booting.
//
// It lives in /etc/vmctr/stage1/, a directory only root may write:
// private.pem mode 0600 (only set-up signs), public.pem mode 0644 (any user
// who may boot may verify). A public key that someone other than root (or
// the user verifying) could have written proves nothing, so such a key is
// refused rather than used. VMCTR_STAGE1_DIR moves the key (and the cache of
// checks, verification-cache.ts) elsewhere, for tests: it grants nothing that
// --insecure-options=image does not, as whoever sets a command's
// environment also chooses its flags.
import { chmodSync, mkdirSync, readFileSync, renameSync, writeFileSync, type BigIntStats } from 'node:fs';
import type { KeyObject } from 'node:crypto';
import { dirname, join } from 'node:path';
import { readStamped, writableOnlyByUs } from './files.js';

const DEFAULT_STAGE1_DIR = '/etc/vmctr/stage1';

/** The environment variable that moves the stage1 directory (tests). */
export const STAGE1_DIR_ENV = 'VMCTR_STAGE1_DIR';

const PRIVATE_KEY_MODE = 0o600;
const PUBLIC_KEY_MODE = 0o644;
const KEY_DIR_MODE = 0o755;

function stage1Dir(): string {
  return process.env[STAGE1_DIR_ENV] || DEFAULT_STAGE1_DIR;
}

export function publicKeyPath(dir = stage1Dir()): string {
  return join(dir, 'public.pem');
}

function privateKeyPath(dir = stage1Dir()): string {
  return join(dir, 'private.pem');
}

/** Why the key cannot be used, as one line with what to do. */
export class KeyError extends Error {}

/** The public key, if it is there and could not have been planted, with the stamp of the file it was read from. */
export function loadPublicKey(dir = stage1Dir()): { key: KeyObject; stats: BigIntStats } {
  const path = publicKeyPath(dir);
  let file;
  try {
    file = readStamped(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new KeyError(code === 'ENOENT' ? `there is no stage1 key (${path}): run setup/install.sh` : `cannot read the stage1 key ${path}: ${code}`);
  }
  if (!writableOnlyByUs(path) || !writableOnlyByUs(dirname(path))) {
    throw new KeyError(`the stage1 key ${path} (or its directory) is writable by users other than root: make both root's, mode 0644 and 0755`);
  }
  try {
    const key = process.getBuiltinModule('node:crypto').createPublicKey(file.text);
    if (key.asymmetricKeyType !== 'ed25519') throw new Error(`a ${key.asymmetricKeyType} key`);
    return { key, stats: file.stats };
  } catch (e) {
    throw new KeyError(`the stage1 key ${path} is not an ed25519 public key (${(e as Error).message}): run setup/install.sh`);
  }
}

export function loadPrivateKey(dir = stage1Dir()): KeyObject {
  return process.getBuiltinModule('node:crypto').createPrivateKey(readFileSync(privateKeyPath(dir), 'utf8'));
}

/**
 * Makes the key pair unless it exists; true when it was made now. The
 * private key is written under a temporary name and renamed, so a crash
 * never leaves half a key; the public half is written again whenever it is
 * missing.
 */
export function ensureKeyPair(dir = stage1Dir()): boolean {
  mkdirSync(dir, { recursive: true, mode: KEY_DIR_MODE });
  const { createPublicKey, generateKeyPairSync } = process.getBuiltinModule('node:crypto');
  let privateKey: KeyObject;
  let created = false;
  try {
    privateKey = loadPrivateKey(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    privateKey = generateKeyPairSync('ed25519').privateKey;
    const tmp = `${privateKeyPath(dir)}.${process.pid}.tmp`;
    writeFileSync(tmp, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: PRIVATE_KEY_MODE });
    renameSync(tmp, privateKeyPath(dir));
    created = true;
  }
  const publicPem = createPublicKey(privateKey).export({ type: 'spki', format: 'pem' });
  let current: string | undefined;
  try {
    current = readFileSync(publicKeyPath(dir), 'utf8');
  } catch {
    // missing: written below
  }
  if (current !== publicPem) writeFileSync(publicKeyPath(dir), publicPem);
  // Modes as documented whatever the umask.
  chmodSync(dir, KEY_DIR_MODE);
  chmodSync(publicKeyPath(dir), PUBLIC_KEY_MODE);
  chmodSync(privateKeyPath(dir), PRIVATE_KEY_MODE);
  return created;
}
