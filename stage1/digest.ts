// The SHA-256 of an artifact, read from an open file in pieces.
import { closeSync, constants, fstatSync, openSync, readSync, type BigIntStats } from 'node:fs';

const READ_CHUNK = 1 << 20;

/** What was hashed, with the file's stamps before and after (equal unless it changed while it was read). */
export interface FileDigest {
  sha256: string;
  size: number;
  before: BigIntStats;
  after: BigIntStats;
}

export function fileDigest(path: string): FileDigest {
  // Loaded only when a file is hashed: node:crypto costs a start about 10 ms to load, which a remembered check saves.
  const { createHash } = process.getBuiltinModule('node:crypto');
  // O_NONBLOCK: a FIFO put in an artifact's place must not hang the start (it changes nothing for a regular file).
  const fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  try {
    const before = fstatSync(fd, { bigint: true });
    if (!before.isFile()) throw Object.assign(new Error(`${path} is not a regular file`), { code: 'not a regular file' });
    const hash = createHash('sha256');
    const buffer = Buffer.allocUnsafe(READ_CHUNK);
    for (let n; (n = readSync(fd, buffer, 0, READ_CHUNK, null)) > 0;) hash.update(buffer.subarray(0, n));
    return { sha256: hash.digest('hex'), size: Number(before.size), before, after: fstatSync(fd, { bigint: true }) };
  } finally {
    closeSync(fd);
  }
}
