// A pod's app logs on the host: the monitor appends each app's stdout and
// stderr here, `vmctr logs` reads them back, later or as they grow.
//
// Format (monitor/LOGS.md says more): <dir>/<app>.log, rotated to
// <app>.log.1 (newest) ... <app>.log.<maxFiles-1> (oldest); JSON lines, one
// record per line of output:
//   {"t":"2026-12-03T10:00:00.123Z","s":"stdout","l":"text without its newline"}
// "p":true marks a partial record, whose line goes on in the stream's next
// record: output flushed before its newline, or a line cut every
// MAX_LINE_BYTES. "t" is when the monitor wrote the record, so it never goes
// back within a file. Readers skip lines that are not records and ignore
// fields they do not know.
import { close, closeSync, fstatSync, mkdirSync, openSync, readSync, renameSync, unlinkSync, watch, writeSync, type FSWatcher } from 'node:fs';
import { open, readdir, stat, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify, TextDecoder } from 'node:util';
import { NAME_PATTERN } from '../pod/pod-dir.js';

export type LogStream = 'stdout' | 'stderr';

export const DEFAULT_MAX_LOG_BYTES = 10 * 1024 * 1024;
export const DEFAULT_MAX_LOG_FILES = 3;
/** Output bytes per record at most (as docker's 16 KiB): a line with no end is stored as it comes. */
export const MAX_LINE_BYTES = 16 * 1024;

const STREAMS: readonly LogStream[] = ['stdout', 'stderr'];
const NEWLINE = 0x0a;
/** Records gathered before one write(2): a large chunk goes to disk as it is cut, never held whole as JSON. */
const WRITE_BATCH_BYTES = 64 * 1024;

export interface AppLogWriterOptions {
  /** A file is rotated before it would pass this size. */
  maxBytes?: number;
  /** Files kept, the live one included: disk use is at most about maxBytes * maxFiles. */
  maxFiles?: number;
  /** Told of each record as it is stored (the journal's copy). */
  onRecord?: (stream: LogStream, line: string, partial: boolean) => void;
}

/** The line a stream is in the middle of. */
interface PendingLine {
  /** Holds the bytes of a character that a chunk cut in two until the next chunk completes it. */
  decoder: TextDecoder;
  text: string;
  /** Output bytes in `text`, bounded by MAX_LINE_BYTES. */
  bytes: number;
}

function checkAppName(app: string): void {
  if (!NAME_PATTERN.test(app)) throw new Error(`invalid app name "${app}": use up to 63 letters, digits, '_', '.' and '-', starting with a letter or digit`);
}

function logPath(dir: string, app: string): string {
  return join(dir, `${app}.log`);
}

function isMissing(err: unknown): boolean {
  return (err as NodeJS.ErrnoException).code === 'ENOENT';
}

/**
 * Appends one app's output to its log. Writes are synchronous appends: the
 * monitor is a small process, an append to a local file is cheap, and a record
 * is on disk when write() returns. Memory stays bounded whatever the chunk
 * size: a line is cut every MAX_LINE_BYTES and records reach the file in
 * batches. The writer runs no timers: the caller flushes partial lines when
 * it wants them seen (an idle stream, the app's exit). File system errors
 * (ENOSPC) are thrown to the caller.
 */
export class AppLogWriter {
  private readonly path: string;
  private readonly maxBytes: number;
  private readonly maxFiles: number;
  private fd: number | undefined;
  /** Size of the live file with the batch counted in. */
  private fileBytes: number;
  private batch: string[] = [];
  private batchBytes = 0;
  private readonly pending: Record<LogStream, PendingLine>;

  private readonly onRecord: AppLogWriterOptions['onRecord'];

  constructor(dir: string, readonly app: string, { maxBytes = DEFAULT_MAX_LOG_BYTES, maxFiles = DEFAULT_MAX_LOG_FILES, onRecord }: AppLogWriterOptions = {}) {
    checkAppName(app);
    if (!Number.isSafeInteger(maxBytes) || maxBytes < 1) throw new RangeError(`maxBytes must be a positive integer, got ${maxBytes}`);
    if (!Number.isSafeInteger(maxFiles) || maxFiles < 1) throw new RangeError(`maxFiles must be a positive integer, got ${maxFiles}`);
    this.maxBytes = maxBytes;
    this.maxFiles = maxFiles;
    this.onRecord = onRecord;
    this.pending = { stdout: newPendingLine(), stderr: newPendingLine() };
    mkdirSync(dir, { recursive: true });
    this.path = logPath(dir, app);
    this.fileBytes = this.openFile();
  }

  /** Takes a chunk of the app's output; `now` is the time its records carry. */
  write(stream: LogStream, chunk: Uint8Array, now = new Date()): void {
    this.checkOpen();
    const line = this.pending[stream];
    const t = now.toISOString();
    for (let at = 0; at < chunk.length; ) {
      const room = MAX_LINE_BYTES - line.bytes;
      // A newline is looked for only within the line's room, so a huge chunk without one is scanned once.
      const window = chunk.subarray(at, at + room + 1);
      const newline = window.indexOf(NEWLINE);
      if (newline !== -1) {
        // The newline goes through the decoder too: a character it interrupts becomes U+FFFD there.
        line.text += line.decoder.decode(window.subarray(0, newline + 1), { stream: true });
        this.emit(stream, line, line.text.slice(0, -1), false, t);
        at += newline + 1;
      } else {
        const take = Math.min(room, window.length);
        line.text += line.decoder.decode(window.subarray(0, take), { stream: true });
        line.bytes += take;
        at += take;
        if (line.bytes === MAX_LINE_BYTES) this.emit(stream, line, line.text, true, t);
      }
    }
    this.writeBatch();
  }

  /** Stores the lines that have not ended yet as partial records (a character cut in two waits for its end). */
  flush(now = new Date()): void {
    this.checkOpen();
    const t = now.toISOString();
    for (const stream of STREAMS) {
      const line = this.pending[stream];
      if (line.text !== '') this.emit(stream, line, line.text, true, t);
    }
    this.writeBatch();
  }

  /** Flushes, a character left incomplete becoming U+FFFD, and closes the file. */
  async close(): Promise<void> {
    if (this.fd === undefined) return;
    for (const stream of STREAMS) this.pending[stream].text += this.pending[stream].decoder.decode();
    this.flush();
    const fd = this.fd;
    this.fd = undefined;
    await promisify(close)(fd);
  }

  private checkOpen(): void {
    if (this.fd === undefined) throw new Error(`the log of app ${this.app} is closed`);
  }

  /** Queues a record of `text` and starts the stream's next line. */
  private emit(stream: LogStream, line: PendingLine, text: string, partial: boolean, t: string): void {
    line.text = '';
    line.bytes = 0;
    const record = JSON.stringify(partial ? { t, s: stream, l: text, p: true } : { t, s: stream, l: text }) + '\n';
    const size = Buffer.byteLength(record);
    if (this.fileBytes > 0 && this.fileBytes + size > this.maxBytes) {
      this.writeBatch();
      this.rotate();
    }
    this.batch.push(record);
    this.batchBytes += size;
    this.fileBytes += size;
    if (this.batchBytes >= WRITE_BATCH_BYTES) this.writeBatch();
    this.onRecord?.(stream, text, partial);
  }

  private writeBatch(): void {
    if (this.batch.length === 0) return;
    this.writeAll(Buffer.from(this.batch.join('')));
    this.batch = [];
    this.batchBytes = 0;
  }

  private writeAll(bytes: Buffer): void {
    for (let at = 0; at < bytes.length; ) at += writeSync(this.fd!, bytes, at);
  }

  /** .log becomes .log.1 and so on, the oldest is dropped (rename replaces it), and a new .log starts. */
  private rotate(): void {
    closeSync(this.fd!);
    this.fd = undefined;
    if (this.maxFiles === 1) unlinkSync(this.path);
    for (let n = this.maxFiles - 1; n >= 1; n--) {
      try {
        renameSync(n === 1 ? this.path : `${this.path}.${n - 1}`, `${this.path}.${n}`);
      } catch (err) {
        if (!isMissing(err)) throw err;
      }
    }
    this.fileBytes = this.openFile();
  }

  /** Opens the live file for appending and returns its size. */
  private openFile(): number {
    // 'a+' rather than 'a' to read the last byte: appends all the same.
    this.fd = openSync(this.path, 'a+');
    const size = fstatSync(this.fd).size;
    if (size === 0) return 0;
    // A monitor that died mid-write left a torn line: end it, so that it is one
    // corrupt line for readers and does not swallow the next record.
    const last = Buffer.alloc(1);
    readSync(this.fd, last, 0, 1, size - 1);
    if (last[0] === NEWLINE) return size;
    this.writeAll(Buffer.from('\n'));
    return size + 1;
  }
}

function newPendingLine(): PendingLine {
  return { decoder: new TextDecoder('utf-8'), text: '', bytes: 0 };
}

export interface LogRecord {
  app: string;
  t: Date;
  stream: LogStream;
  line: string;
  /** The line goes on in this app's and stream's next record. */
  partial: boolean;
}

export interface ReadAppLogsOptions {
  /** Apps to read, in this order when times are equal; default all that have a log in the directory, by name. */
  apps?: string[];
  /** Only records with t >= since. */
  since?: Date;
  /** Only the last `tail` records of the logs so far, counted over all apps merged (after `since`). */
  tail?: number;
  /** Goes on with records as they are written, across rotations, until `signal` aborts or the caller stops. */
  follow?: boolean;
  /** Ends the iteration, without an error. */
  signal?: AbortSignal;
}

export interface LogReader extends AsyncIterable<LogRecord> {
  /** Lines skipped because they were not records: corrupt, or torn and never completed (in a rotated file). */
  readonly corruptLines: number;
}

/** Bytes read from a log file at a time. */
const READ_CHUNK_BYTES = 64 * 1024;
/**
 * Longer lines are not records: the writer's longest is MAX_LINE_BYTES of
 * control characters at 6 bytes each as JSON escapes, about 96 KiB. Bounds the
 * reader's memory on a corrupt file.
 */
const MAX_RECORD_BYTES = 1024 * 1024;
/** How often a follower looks for changes that no file system event announced. */
const FOLLOW_POLL_MS = 250;
const RECORD_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?Z$/;
const ROTATED_SUFFIX = /^[1-9]\d*$/;
const LOG_FILE = /^(.+)\.log(?:\.[1-9]\d*)?$/;
const EMPTY = Buffer.alloc(0);

/**
 * The records of the apps' logs in `dir`, merged by time (stably: equal times
 * keep file order within an app, then the order of `apps`); rotated files are
 * read oldest first. Only complete lines are parsed: the writer's torn last
 * line waits for its end. A directory that does not exist has no records (a
 * follower waits for it).
 */
export function readAppLogs(dir: string, options: ReadAppLogsOptions = {}): LogReader {
  options.apps?.forEach(checkAppName);
  if (options.tail !== undefined && (!Number.isSafeInteger(options.tail) || options.tail < 0)) {
    throw new RangeError(`tail must be a non-negative integer, got ${options.tail}`);
  }
  return new AppLogReader(dir, options);
}

class AppLogReader implements LogReader {
  corruptLines = 0;

  constructor(
    private readonly dir: string,
    private readonly options: ReadAppLogsOptions,
  ) {}

  [Symbol.asyncIterator](): AsyncIterator<LogRecord> {
    return this.records();
  }

  private async *records(): AsyncGenerator<LogRecord> {
    const { apps, since, tail, follow, signal } = this.options;
    const cursors = new Map<string, AppCursor>();
    // Watching starts before the first read, so that no change after it goes unseen.
    const changes = follow ? new ChangeWaiter(this.dir, signal) : undefined;
    try {
      for (let round = 0; ; round++) {
        for (const app of apps ?? (await listApps(this.dir))) {
          if (!cursors.has(app)) cursors.set(app, new AppCursor(this.dir, app, () => this.corruptLines++));
        }
        const merged = mergeByTime([...cursors.values()], since);
        for await (const record of round === 0 && tail !== undefined ? lastOf(merged, tail) : merged) {
          if (signal?.aborted) return;
          yield record;
        }
        if (!changes || signal?.aborted) return;
        await changes.wait();
        if (signal?.aborted) return;
      }
    } finally {
      changes?.close();
      await Promise.all([...cursors.values()].map((cursor) => cursor.close()));
    }
  }
}

/** The names in `dir`, none if it does not exist (yet). */
async function namesIn(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch (err) {
    if (isMissing(err)) return [];
    throw err;
  }
}

/** Apps with a log (live or rotated) in `dir`, by name. */
async function listApps(dir: string): Promise<string[]> {
  const names = await namesIn(dir);
  const apps = new Set<string>();
  for (const name of names) {
    const app = LOG_FILE.exec(name)?.[1];
    if (app !== undefined && NAME_PATTERN.test(app)) apps.add(app);
  }
  return [...apps].sort();
}

/** Everything the cursors have now, merged by time; a cursor that has nothing more is done for this round. */
async function* mergeByTime(cursors: AppCursor[], since: Date | undefined): AsyncGenerator<LogRecord> {
  const heads = cursors.map((cursor) => ({ cursor, batch: [] as LogRecord[], at: 0, done: false }));
  for (;;) {
    let best: (typeof heads)[number] | undefined;
    for (const head of heads) {
      while (!head.done && head.at === head.batch.length) {
        head.batch = await head.cursor.next();
        head.at = 0;
        head.done = head.batch.length === 0;
      }
      // Strictly earlier only: equal times keep the earlier cursor first.
      if (!head.done && (!best || head.batch[head.at]!.t.getTime() < best.batch[best.at]!.t.getTime())) best = head;
    }
    if (!best) return;
    const record = best.batch[best.at++]!;
    if (since === undefined || record.t.getTime() >= since.getTime()) yield record;
  }
}

async function* lastOf(records: AsyncIterable<LogRecord>, count: number): AsyncGenerator<LogRecord> {
  const ring: LogRecord[] = [];
  let seen = 0;
  for await (const record of records) {
    if (count > 0) ring[seen % count] = record;
    seen++;
  }
  const kept = Math.min(count, seen);
  for (let i = seen - kept; i < seen; i++) yield ring[i % count]!;
}

/** A log file held open: a rotation renames it, but what was appended to it is still read. */
interface LogFile {
  handle: FileHandle;
  /** Tells the live file from its successor; cannot be reused while the file is held open. */
  ino: number;
  offset: number;
  /** The start of a line whose end has not been read yet. */
  carry: Buffer;
  /** Inside a line longer than MAX_RECORD_BYTES, already counted as corrupt, until its newline. */
  skipping: boolean;
}

async function inodeOf(path: string): Promise<number | undefined> {
  try {
    return (await stat(path)).ino;
  } catch (err) {
    if (isMissing(err)) return undefined;
    throw err;
  }
}

async function openLog(path: string): Promise<LogFile | undefined> {
  let handle: FileHandle;
  try {
    handle = await open(path, 'r');
  } catch (err) {
    if (isMissing(err)) return undefined;
    throw err;
  }
  const { ino } = await handle.stat();
  return { handle, ino, offset: 0, carry: EMPTY, skipping: false };
}

/** Reads one app's records in order: its rotated files, then the live file as it grows and rotates. */
class AppCursor {
  private readonly path: string;
  private readonly buffer = Buffer.allocUnsafe(READ_CHUNK_BYTES);
  /** Files complete (rotated away), oldest first: read before the live file; undefined until a file is found. */
  private queue: LogFile[] | undefined;
  private live: LogFile | undefined;

  constructor(
    private readonly dir: string,
    private readonly app: string,
    private readonly onCorrupt: () => void,
  ) {
    this.path = logPath(dir, app);
  }

  /** The next records available, or none when the live file has no more for now. */
  async next(): Promise<LogRecord[]> {
    if (this.queue === undefined) {
      const { live, rotated } = await this.openFiles();
      // No log yet: look for all its files again next time, in case it has rotated by then.
      if (!live && rotated.length === 0) return [];
      this.queue = rotated;
      this.live = live;
    }
    for (;;) {
      const file = this.queue[0] ?? (this.live ??= await openLog(this.path));
      if (!file) return [];
      const records = await this.read(file);
      if (records === undefined) {
        if (file !== this.live) {
          this.queue.shift();
          await this.finish(file);
        } else if (!(await this.rotated(file))) {
          return [];
        }
      } else if (records.length > 0) {
        return records;
      }
    }
  }

  async close(): Promise<void> {
    const files = [...(this.queue ?? []), ...(this.live ? [this.live] : [])];
    this.queue = [];
    this.live = undefined;
    await Promise.all(files.map((file) => file.handle.close()));
  }

  /**
   * Opens the live file, then the rotated ones, oldest first. Every rotation
   * makes a new .log: if .log is still the file opened first, no name moved
   * while the others were opened, and their order is right; else again.
   */
  private async openFiles(): Promise<{ live: LogFile | undefined; rotated: LogFile[] }> {
    const prefix = `${this.app}.log.`;
    for (;;) {
      const live = await openLog(this.path);
      const numbers = (await namesIn(this.dir))
        .filter((name) => name.startsWith(prefix) && ROTATED_SUFFIX.test(name.slice(prefix.length)))
        .map((name) => Number(name.slice(prefix.length)))
        .sort((a, b) => b - a);
      const rotated: LogFile[] = [];
      for (const n of numbers) {
        const file = await openLog(`${this.path}.${n}`);
        if (file) rotated.push(file);
      }
      if ((await inodeOf(this.path)) === live?.ino) return { live, rotated };
      await this.closeAll(live, rotated);
    }
  }

  /**
   * At the end of the live file: if .log is now another file, the live one
   * was rotated. It is read to its end (appends before the rename), then the
   * rotated files newer than it, then the new live file.
   */
  private async rotated(live: LogFile): Promise<boolean> {
    for (;;) {
      const current = await inodeOf(this.path);
      if (current === undefined || current === live.ino) return false;
      const next = await this.openNewerThan(live);
      if (!next) continue;
      this.queue!.push(live, ...next.newer);
      this.live = next.live;
      return true;
    }
  }

  /**
   * Opens the live file, then .log.1, .log.2 and on up to `held` (or the last
   * one, if `held` was dropped): the files newer than it, returned oldest
   * first. A few opens per rotation, so that a follower keeps up with a busy
   * writer; undefined if a rotation moved the names meanwhile (.log changed).
   */
  private async openNewerThan(held: LogFile): Promise<{ live: LogFile | undefined; newer: LogFile[] } | undefined> {
    const live = await openLog(this.path);
    const newer: LogFile[] = [];
    for (let n = 1; ; n++) {
      const file = await openLog(`${this.path}.${n}`);
      if (!file) {
        // A gap with a file above it: the writer is between its renames.
        if ((await inodeOf(`${this.path}.${n + 1}`)) !== undefined) return this.closeAll(live, newer);
        break;
      }
      if (file.ino === held.ino) {
        await file.handle.close();
        break;
      }
      newer.push(file);
    }
    if ((await inodeOf(this.path)) === live?.ino) return { live, newer: newer.reverse() };
    return this.closeAll(live, newer);
  }

  private async closeAll(live: LogFile | undefined, others: LogFile[]): Promise<undefined> {
    await Promise.all([...others, ...(live ? [live] : [])].map((file) => file.handle.close()));
    return undefined;
  }

  /** A complete file is done: a line still unfinished in it never will be. */
  private async finish(file: LogFile): Promise<void> {
    if (file.carry.length > 0) this.onCorrupt();
    await file.handle.close();
  }

  /** The records of the next chunk of `file`, or undefined at its end. */
  private async read(file: LogFile): Promise<LogRecord[] | undefined> {
    const { bytesRead } = await file.handle.read(this.buffer, 0, READ_CHUNK_BYTES, file.offset);
    if (bytesRead === 0) return undefined;
    file.offset += bytesRead;
    const data = this.buffer.subarray(0, bytesRead);
    const records: LogRecord[] = [];
    let start = 0;
    for (let newline = data.indexOf(NEWLINE); newline !== -1; newline = data.indexOf(NEWLINE, start)) {
      if (file.skipping) {
        file.skipping = false;
      } else {
        const record = this.parse(file.carry.length > 0 ? Buffer.concat([file.carry, data.subarray(start, newline)]) : data.subarray(start, newline));
        file.carry = EMPTY;
        if (record) records.push(record);
        else this.onCorrupt();
      }
      start = newline + 1;
    }
    if (!file.skipping && start < data.length) {
      if (file.carry.length + data.length - start > MAX_RECORD_BYTES) {
        file.carry = EMPTY;
        file.skipping = true;
        this.onCorrupt();
      } else {
        // A copy: the read buffer is reused.
        file.carry = Buffer.concat([file.carry, data.subarray(start)]);
      }
    }
    return records;
  }

  private parse(line: Buffer): LogRecord | undefined {
    let value: unknown;
    try {
      value = JSON.parse(line.toString('utf8'));
    } catch {
      return undefined;
    }
    if (typeof value !== 'object' || value === null) return undefined;
    const { t, s, l, p } = value as Record<string, unknown>;
    if (typeof t !== 'string' || !RECORD_TIME.test(t) || (s !== 'stdout' && s !== 'stderr') || typeof l !== 'string') return undefined;
    if (p !== undefined && typeof p !== 'boolean') return undefined;
    const time = new Date(t);
    if (Number.isNaN(time.getTime())) return undefined;
    return { app: this.app, t: time, stream: s, line: l, partial: p === true };
  }
}

/** Wakes a follower when something in the directory changed, or every FOLLOW_POLL_MS in case no event came. */
class ChangeWaiter {
  private changed = false;
  private wake: (() => void) | undefined;
  private watcher: FSWatcher | undefined;

  constructor(
    dir: string,
    private readonly signal: AbortSignal | undefined,
  ) {
    try {
      // Not persistent: while waiting the poll timer keeps the process alive,
      // and an iterator dropped without return() must not.
      this.watcher = watch(dir, { persistent: false }, this.poke);
      // Lost (the directory removed, say): polling goes on.
      this.watcher.on('error', () => this.stopWatching());
    } catch {
      // No directory yet, or no inotify watch left: polling alone.
    }
    signal?.addEventListener('abort', this.poke);
  }

  async wait(): Promise<void> {
    if (!this.changed) {
      let timer: NodeJS.Timeout | undefined;
      await new Promise<void>((resolve) => {
        this.wake = resolve;
        timer = setTimeout(resolve, FOLLOW_POLL_MS);
      });
      clearTimeout(timer);
      this.wake = undefined;
    }
    this.changed = false;
  }

  close(): void {
    this.stopWatching();
    this.signal?.removeEventListener('abort', this.poke);
  }

  private readonly poke = (): void => {
    this.changed = true;
    this.wake?.();
  };

  private stopWatching(): void {
    this.watcher?.close();
    this.watcher = undefined;
  }
}

export interface FormatLogOptions {
  timestamps: boolean;
  appPrefix: boolean;
}

/**
 * A record as `vmctr logs` prints it: `[app | ][time ]line`, with a newline
 * unless the record is partial, so that the pieces of a line join up. Given
 * the record printed just before to the same output, a continuation gets no
 * prefix, and a line left unfinished by another app or stream is ended first.
 */
export function formatLogRecord(record: LogRecord, { timestamps, appPrefix }: FormatLogOptions, previous?: LogRecord): string {
  const continues = previous?.partial === true && previous.app === record.app && previous.stream === record.stream;
  const head = continues ? '' : `${previous?.partial ? '\n' : ''}${appPrefix ? `${record.app} | ` : ''}${timestamps ? `${record.t.toISOString()} ` : ''}`;
  return head + record.line + (record.partial ? '' : '\n');
}

const DURATION = /^(?:\d+(?:\.\d+)?(?:ms|h|m|s))+$/;
const DURATION_PART = /(\d+(?:\.\d+)?)(ms|h|m|s)/g;
const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
/** RFC 3339, or with no zone (local time, as docker) or no time (local midnight). */
const TIMESTAMP = /^(\d{4})-(\d{2})-(\d{2})(?:[Tt ](\d{2}):(\d{2})(?::(\d{2})(\.\d+)?)?([Zz]|[+-](\d{2}):(\d{2}))?)?$/;
const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/** `--since`: a time, or a duration back from `now` as docker takes them (10s, 5m, 2h, 1h30m, 1.5h, 250ms). */
export function parseSince(text: string, now: Date): Date {
  if (DURATION.test(text)) {
    let ms = 0;
    for (const [, amount, unit] of text.matchAll(DURATION_PART)) ms += Number(amount) * UNIT_MS[unit!]!;
    return new Date(now.getTime() - Math.round(ms));
  }
  const match = TIMESTAMP.exec(text);
  if (match) {
    const [, year, month, day, hour = '00', minute = '00', second = '00', fraction = '', zone = '', zoneHour = '00', zoneMinute = '00'] = match;
    const y = Number(year), mo = Number(month);
    const leapDay = mo === 2 && y % 4 === 0 && (y % 100 !== 0 || y % 400 === 0) ? 1 : 0;
    const valid = mo >= 1 && mo <= 12 && Number(day) >= 1 && Number(day) <= DAYS_IN_MONTH[mo - 1]! + leapDay
      && Number(hour) <= 23 && Number(minute) <= 59 && Number(second) <= 59 && Number(zoneHour) <= 23 && Number(zoneMinute) <= 59;
    // Milliseconds are what a record's time holds; Date reads this form as UTC with a zone, local time without.
    const ms = fraction === '' ? '' : fraction.slice(0, 4).padEnd(4, '0');
    const date = new Date(`${year}-${month}-${day}T${hour}:${minute}:${second}${ms}${zone.toUpperCase()}`);
    if (valid && !Number.isNaN(date.getTime())) return date;
  }
  throw new Error(`invalid --since value "${text}": use an RFC 3339 time such as 2026-12-03T10:00:00Z (local time if no zone) or a duration such as 10s, 5m, 2h or 1h30m`);
}
