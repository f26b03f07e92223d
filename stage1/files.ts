// What the stage1 code asks of the files it trusts.
import { closeSync, fstatSync, lstatSync, openSync, readFileSync, type BigIntStats } from 'node:fs';

/** Write permission for group or others. */
const WRITABLE_BY_OTHERS = 0o022;
const ROOT_UID = 0;

/** Whether `path` could only have been written by root or by this process's user. */
export function writableOnlyByUs(path: string): boolean {
  const s = lstatSync(path);
  return (s.uid === ROOT_UID || s.uid === process.geteuid!()) && (s.mode & WRITABLE_BY_OTHERS) === 0;
}

/** A small file's text and its stamp, from one open file: what was read is what was stamped. */
export function readStamped(path: string): { text: string; stats: BigIntStats } {
  const fd = openSync(path, 'r');
  try {
    return { stats: fstatSync(fd, { bigint: true }), text: readFileSync(fd, 'utf8') };
  } finally {
    closeSync(fd);
  }
}
