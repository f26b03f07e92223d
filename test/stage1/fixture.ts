// A stage1 set-up of its own for a test: a key in a temporary stage1
// directory (VMCTR_STAGE1_DIR, so the real key and digest cache are never
// touched) and artifacts in a temporary directory, signed as set-up signs
// them.
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureKeyPair, STAGE1_DIR_ENV } from '../../stage1/key.js';
import type { Stage1Kind } from '../../stage1/kind.js';
import { signArtifact } from '../../stage1/sign.js';

export interface Stage1Fixture {
  /** The temporary stage1 directory (key, digest cache). */
  keyDir: string;
  /** Where the artifacts are. */
  dir: string;
  /** Writes `bytes` at `name` in `dir` and signs it as `kind`; returns its path. */
  signed(kind: Stage1Kind, name: string, bytes: Uint8Array): string;
}

/** Makes the key and points this process's stage1 code at it. */
export function stage1Fixture(prefix: string): Stage1Fixture {
  const keyDir = mkdtempSync(join(tmpdir(), `${prefix}-key-`));
  const dir = mkdtempSync(join(tmpdir(), `${prefix}-artifacts-`));
  process.env[STAGE1_DIR_ENV] = keyDir;
  ensureKeyPair(keyDir);
  return {
    keyDir,
    dir,
    signed(kind, name, bytes) {
      const path = join(dir, name);
      mkdirSync(join(path, '..'), { recursive: true });
      writeFileSync(path, bytes);
      signArtifact({ kind, path });
      return path;
    },
  };
}

/** `size` bytes that differ from file to file. */
export function someBytes(size: number, seed: number): Buffer {
  const b = Buffer.alloc(size);
  for (let i = 0; i < size; i++) b[i] = (i * 31 + seed * 7) & 0xff;
  return b;
}

/** A second key pair, in a directory of its own: signatures a test's key did not make. */
export function otherKeyDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), `${prefix}-other-key-`));
  ensureKeyPair(dir);
  return dir;
}
