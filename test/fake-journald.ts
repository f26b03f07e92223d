// A stand-in for journald, for tests on hosts without one: a datagram socket
// that reads entries of the native protocol. As a script (the e2e tests, in
// the lab, where no journald runs): binds the socket at argv[2] and appends
// each entry it receives to argv[3] as a JSON object of its fields, until
// killed.
import { appendFileSync, closeSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { native } from '../vmm/kvm/native.js';

const MAX_ENTRY_BYTES = 1 << 20;
const POLL_MS = 20;

/** Parses a native-protocol entry: `NAME=value\n`, or `NAME\n` + u64 LE length + value + `\n`. */
export function parseJournalEntry(entry: Buffer): Array<[string, string]> {
  const fields: Array<[string, string]> = [];
  for (let at = 0; at < entry.length; ) {
    const newline = entry.indexOf(0x0a, at);
    if (newline < 0) throw new Error('entry does not end with a newline');
    const head = entry.subarray(at, newline).toString('utf8');
    const eq = head.indexOf('=');
    if (eq >= 0) {
      fields.push([head.slice(0, eq), head.slice(eq + 1)]);
      at = newline + 1;
      continue;
    }
    const length = Number(entry.readBigUInt64LE(newline + 1));
    const start = newline + 9;
    fields.push([head, entry.subarray(start, start + length).toString('utf8')]);
    if (entry[start + length] !== 0x0a) throw new Error(`field ${head} does not end with a newline`);
    at = start + length + 1;
  }
  return fields;
}

/** A journal socket at `path` and what has arrived on it so far. */
export class FakeJournald {
  private fd: number | undefined;

  constructor(path: string) {
    this.fd = native.unixDatagramBind(path);
  }

  /** The entries queued since the last call, each as its fields in order. */
  received(): Array<Array<[string, string]>> {
    const entries = [];
    if (this.fd === undefined) return [];
    for (let entry = native.recvDatagram(this.fd, MAX_ENTRY_BYTES); entry; entry = native.recvDatagram(this.fd, MAX_ENTRY_BYTES)) {
      entries.push(parseJournalEntry(entry));
    }
    return entries;
  }

  close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const [socket, out] = process.argv.slice(2);
  if (!socket || !out) throw new Error('usage: fake-journald SOCKET OUT.jsonl');
  const journald = new FakeJournald(socket);
  setInterval(() => {
    for (const fields of journald.received()) appendFileSync(out, JSON.stringify(Object.fromEntries(fields)) + '\n');
  }, POLL_MS);
}
