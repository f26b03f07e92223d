// App output to the systemd journal, when the host runs journald: one entry
// per log record, sent as a datagram of journald's native protocol
// (systemd's "Native Journal Protocol" document) to its socket. The entry
// carries the fields docker's journald log driver sets, so that
// `journalctl CONTAINER_NAME=<pod>` finds a pod's output as it finds a
// container's. The host's log files (app-log.ts) stay the record vmctr
// reads; the journal is a copy that never slows the pod: a datagram the
// journal has no room for is dropped and counted, not waited for.
import { closeSync } from 'node:fs';
import { native } from '../vmm/kvm/native.js';
import type { LogStream } from './app-log.js';

export const JOURNAL_SOCKET = '/run/systemd/journal/socket';
/** syslog priorities (RFC 5424): stdout is informational, stderr an error, as docker's driver sends them. */
const PRIORITY: Record<LogStream, string> = { stdout: '6', stderr: '3' };
/** A field name the journal accepts: upper-case letters, digits and '_', not starting with '_' (those are the journal's own). */
const FIELD_NAME = /^[A-Z0-9][A-Z0-9_]{0,63}$/;
const NEWLINE = 0x0a;

export interface JournalPod {
  /** The pod's id (32 hex digits). */
  id: string;
  /** Its name, or '' for none. */
  name: string;
}

/**
 * One entry in the native format: `NAME=value\n` for a value without a
 * newline; else `NAME\n`, the value's length as a 64-bit little-endian
 * integer, the value and `\n`.
 */
export function journalEntry(fields: ReadonlyArray<readonly [string, string]>): Buffer {
  const parts: Buffer[] = [];
  for (const [name, value] of fields) {
    if (!FIELD_NAME.test(name)) throw new RangeError(`invalid journal field name "${name}"`);
    const bytes = Buffer.from(value, 'utf8');
    if (!bytes.includes(NEWLINE)) {
      parts.push(Buffer.from(`${name}=`), bytes, Buffer.from('\n'));
      continue;
    }
    const length = Buffer.alloc(8);
    length.writeBigUInt64LE(BigInt(bytes.length));
    parts.push(Buffer.from(`${name}\n`), length, bytes, Buffer.from('\n'));
  }
  return Buffer.concat(parts);
}

/** The fields of one line of `app`'s output. */
export function appLineFields(pod: JournalPod, app: string, stream: LogStream, line: string): Array<[string, string]> {
  return [
    ['MESSAGE', line],
    ['PRIORITY', PRIORITY[stream]],
    ['SYSLOG_IDENTIFIER', app],
    ['CONTAINER_NAME', pod.name || pod.id.slice(0, 12)],
    ['CONTAINER_ID', pod.id.slice(0, 12)],
    ['CONTAINER_ID_FULL', pod.id],
    ['CONTAINER_TAG', app],
    ['VMCTR_STREAM', stream],
  ];
}

/** A connection to journald's socket. */
export class Journal {
  /** Entries not sent because the journal's queue was full. */
  dropped = 0;

  private constructor(private fd: number | undefined) {}

  /** The journal at `path`, or undefined when the host runs no journald there. */
  static connect(path = JOURNAL_SOCKET): Journal | undefined {
    const fd = native.unixDatagramConnect(path);
    return fd < 0 ? undefined : new Journal(fd);
  }

  /** Whether entries still go out: a journal that went away (journald stopped) is not retried. */
  get connected(): boolean {
    return this.fd !== undefined;
  }

  /** Sends a line of `app`'s output; a full journal drops it, one that went away ends the connection. */
  send(pod: JournalPod, app: string, stream: LogStream, line: string): void {
    if (this.fd === undefined) {
      this.dropped++;
      return;
    }
    let sent: boolean;
    try {
      sent = native.sendDatagram(this.fd, journalEntry(appLineFields(pod, app, stream, line)));
    } catch (err) {
      // An entry beyond the socket's limit is dropped alone; any other error (ECONNREFUSED: journald has gone) ends
      // the connection. The log files have the line either way.
      sent = false;
      if ((err as NodeJS.ErrnoException).code !== 'EMSGSIZE') this.close();
    }
    if (!sent) this.dropped++;
  }

  close(): void {
    if (this.fd === undefined) return;
    closeSync(this.fd);
    this.fd = undefined;
  }
}
