import test, { type ExecutionContext } from 'ava';
import { appendFileSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  AppLogWriter, DEFAULT_MAX_LOG_BYTES, DEFAULT_MAX_LOG_FILES, MAX_LINE_BYTES,
  formatLogRecord, parseSince, readAppLogs, type LogRecord, type ReadAppLogsOptions,
} from '../../monitor/app-log.js';

// The pod's app logs: what the monitor writes (JSON lines, lines cut at
// MAX_LINE_BYTES, rotation) and what `vmctr logs` reads back (since, tail,
// merge of apps, follow across rotations, torn and corrupt lines).

const T0 = Date.parse('2026-12-03T10:00:00.000Z');
const at = (seconds: number): Date => new Date(T0 + seconds * 1000);
const bytes = (text: string): Uint8Array => Buffer.from(text, 'utf8');

async function logDir(t: ExecutionContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'vmctr-logs-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

async function readAll(dir: string, options: ReadAppLogsOptions = {}): Promise<{ records: LogRecord[]; corrupt: number }> {
  const reader = readAppLogs(dir, options);
  const records: LogRecord[] = [];
  for await (const record of reader) records.push(record);
  return { records, corrupt: reader.corruptLines };
}

const lines = (records: LogRecord[]): string[] => records.map((r) => r.line);
const joined = (records: LogRecord[]): string => records.map((r) => formatLogRecord(r, { timestamps: false, appPrefix: false })).join('');

/** Reads a following reader record by record, failing rather than hanging when a record does not come; stopped at the test's end. */
function follower(t: ExecutionContext, dir: string, options: ReadAppLogsOptions) {
  const abort = new AbortController();
  const reader = readAppLogs(dir, { ...options, follow: true, signal: abort.signal });
  const iterator = reader[Symbol.asyncIterator]();
  t.teardown(async () => {
    abort.abort();
    await iterator.return?.();
  });
  return {
    reader,
    abort,
    /** The next `count` records; `received` is told how many have come after each. */
    async take(count: number, received?: (got: number) => void): Promise<LogRecord[]> {
      const got: LogRecord[] = [];
      while (got.length < count) {
        let timer: NodeJS.Timeout | undefined;
        const timeout = new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`follow: ${got.length} of ${count} records came`)), 5000); });
        const next = await Promise.race([iterator.next(), timeout]).finally(() => clearTimeout(timer));
        if (next.done) throw new Error('follow ended');
        got.push(next.value);
        received?.(got.length);
      }
      return got;
    },
    next: () => iterator.next(),
  };
}

test('defaults are named: 10 MiB per file, 3 files, 16 KiB lines', (t) => {
  t.is(DEFAULT_MAX_LOG_BYTES, 10 * 1024 * 1024);
  t.is(DEFAULT_MAX_LOG_FILES, 3);
  t.is(MAX_LINE_BYTES, 16 * 1024);
});

test('lines and partial lines round-trip, in the documented JSON lines', async (t) => {
  const dir = await logDir(t);
  const log = new AppLogWriter(dir, 'web');
  log.write('stdout', bytes('one\ntw'), at(1));
  log.write('stderr', bytes('oops\n'), at(2));
  log.write('stdout', bytes('o\n\nprompt> '), at(3));
  log.flush(at(4));
  log.write('stdout', bytes('typed\n'), at(5));
  await log.close();

  t.deepEqual(readFileSync(join(dir, 'web.log'), 'utf8').split('\n'), [
    '{"t":"2026-12-03T10:00:01.000Z","s":"stdout","l":"one"}',
    '{"t":"2026-12-03T10:00:02.000Z","s":"stderr","l":"oops"}',
    '{"t":"2026-12-03T10:00:03.000Z","s":"stdout","l":"two"}',
    '{"t":"2026-12-03T10:00:03.000Z","s":"stdout","l":""}',
    '{"t":"2026-12-03T10:00:04.000Z","s":"stdout","l":"prompt> ","p":true}',
    '{"t":"2026-12-03T10:00:05.000Z","s":"stdout","l":"typed"}',
    '',
  ]);
  const { records, corrupt } = await readAll(dir);
  t.is(corrupt, 0);
  t.deepEqual(records[4], { app: 'web', t: at(4), stream: 'stdout', line: 'prompt> ', partial: true });
  t.deepEqual(records.map((r) => [r.stream, r.line, r.partial]), [
    ['stdout', 'one', false], ['stderr', 'oops', false], ['stdout', 'two', false], ['stdout', '', false], ['stdout', 'prompt> ', true], ['stdout', 'typed', false],
  ]);
  t.is(joined(records), 'one\noops\ntwo\n\nprompt> typed\n', 'a partial record takes no newline');
});

test('close stores an unfinished line as a partial record, and the writer refuses more', async (t) => {
  const dir = await logDir(t);
  const log = new AppLogWriter(dir, 'a');
  log.write('stderr', bytes('no newline'));
  await log.close();
  t.deepEqual((await readAll(dir)).records.map((r) => [r.line, r.partial]), [['no newline', true]]);
  t.throws(() => log.write('stdout', bytes('x\n')), { message: 'the log of app a is closed' });
});

test('a UTF-8 character split across chunks stays whole, per stream; ill-formed bytes become U+FFFD', async (t) => {
  const dir = await logDir(t);
  const log = new AppLogWriter(dir, 'a');
  const text = 'é€😀x';
  const encoded = bytes(text);
  for (let cut = 1; cut < encoded.length; cut++) {
    log.write('stdout', encoded.subarray(0, cut));
    // The other stream's output in between must not disturb the stdout carry.
    log.write('stderr', bytes('€').subarray(0, 1));
    log.flush();
    log.write('stdout', encoded.subarray(cut));
    log.write('stderr', bytes('€').subarray(1));
    log.write('stdout', bytes('\n'));
    log.write('stderr', bytes('\n'));
  }
  log.write('stdout', Uint8Array.of(0x61, 0xff, 0x62, 0xe2, 0x82, 0x0a)); // a, bad byte, b, a cut-off € then the newline
  log.write('stdout', Uint8Array.of(0xf0, 0x9f)); // half an emoji when the log closes
  await log.close();
  const { records } = await readAll(dir);
  const out = records.filter((r) => r.stream === 'stdout');
  const err = records.filter((r) => r.stream === 'stderr');
  t.is(joined(out), `${text}\n`.repeat(encoded.length - 1) + 'a\ufffdb\ufffd\n\ufffd');
  t.is(joined(err), '€\n'.repeat(encoded.length - 1));
  t.false(records.some((r) => r.partial && r.line === ''), 'a flush with only half a character stores no empty record');
});

test('a 1 MiB line with no newline becomes records of at most 16 KiB that join back up', async (t) => {
  const dir = await logDir(t);
  const log = new AppLogWriter(dir, 'a');
  const big = 'x'.repeat(1024 * 1024);
  log.write('stdout', bytes(big));
  log.write('stdout', bytes('\n'));
  // A 2-byte character straddling every cut: it moves whole to the next record.
  const accents = 'a' + 'é'.repeat(MAX_LINE_BYTES);
  log.write('stderr', bytes(accents + '\n'));
  await log.close();
  const { records } = await readAll(dir);
  const out = records.filter((r) => r.stream === 'stdout');
  t.is(out.length, 1024 / 16 + 1);
  t.true(out.slice(0, -1).every((r) => r.partial && r.line.length === MAX_LINE_BYTES));
  t.deepEqual(out.at(-1)!.line, '', 'the newline ends the line with an empty last piece');
  t.is(joined(out), big + '\n');
  const err = records.filter((r) => r.stream === 'stderr');
  t.is(err.length, 3);
  t.true(err.every((r) => Buffer.byteLength(r.line) <= MAX_LINE_BYTES && !r.line.includes('\ufffd')));
  t.is(joined(err), accents + '\n');
});

test('rotation keeps at most maxFiles files, each within maxBytes, with the newest records', async (t) => {
  const dir = await logDir(t);
  const log = new AppLogWriter(dir, 'a', { maxBytes: 1000, maxFiles: 3 });
  for (let i = 0; i < 200; i++) log.write('stdout', bytes(`line ${i}\n`), at(i));
  await log.close();
  t.deepEqual(readdirSync(dir).sort(), ['a.log', 'a.log.1', 'a.log.2']);
  for (const name of readdirSync(dir)) t.true(statSync(join(dir, name)).size <= 1000, name);
  const got = lines((await readAll(dir)).records);
  const first = Number(got[0]!.split(' ')[1]);
  t.true(first > 150, `kept from line ${first}`);
  t.deepEqual(got, Array.from({ length: 200 - first }, (_, i) => `line ${first + i}`), 'oldest file first, nothing lost or repeated within what is kept');
});

test('rotation within one large write, and with maxFiles 1', async (t) => {
  const dir = await logDir(t);
  const log = new AppLogWriter(dir, 'a', { maxBytes: 64 * 1024, maxFiles: 2 });
  log.write('stdout', bytes('y'.repeat(1024 * 1024) + '\nlast\n'));
  await log.close();
  t.deepEqual(readdirSync(dir).sort(), ['a.log', 'a.log.1']);
  t.deepEqual(lines((await readAll(dir)).records).at(-1), 'last');

  const single = await logDir(t);
  const one = new AppLogWriter(single, 'b', { maxBytes: 200, maxFiles: 1 });
  for (let i = 0; i < 50; i++) one.write('stdout', bytes(`line ${i}\n`));
  await one.close();
  t.deepEqual(readdirSync(single), ['b.log']);
  t.true(statSync(join(single, 'b.log')).size <= 200);
  t.is(lines((await readAll(single)).records).at(-1), 'line 49');
});

test('since keeps records at or after the time; tail keeps the last N over all apps', async (t) => {
  const dir = await logDir(t);
  const a = new AppLogWriter(dir, 'a');
  const b = new AppLogWriter(dir, 'b');
  for (let i = 0; i < 10; i++) (i % 2 ? b : a).write('stdout', bytes(`${i}\n`), at(i));
  await Promise.all([a.close(), b.close()]);
  t.deepEqual(lines((await readAll(dir, { since: at(7) })).records), ['7', '8', '9']);
  t.deepEqual(lines((await readAll(dir, { tail: 3 })).records), ['7', '8', '9']);
  t.deepEqual(lines((await readAll(dir, { tail: 2, since: at(2), apps: ['a'] })).records), ['6', '8']);
  t.deepEqual(lines((await readAll(dir, { tail: 0 })).records), []);
  t.is((await readAll(dir, { tail: 100 })).records.length, 10);
  t.throws(() => readAppLogs(dir, { tail: -1 }), { message: 'tail must be a non-negative integer, got -1' });
});

test('several apps merge by time, stably; apps are found in the directory or chosen', async (t) => {
  const dir = await logDir(t);
  const web = new AppLogWriter(dir, 'web');
  const db = new AppLogWriter(dir, 'db');
  web.write('stdout', bytes('w1\nw2\n'), at(1));
  db.write('stderr', bytes('d1\n'), at(1));
  db.write('stdout', bytes('d2\n'), at(2));
  web.write('stdout', bytes('w3\n'), at(3));
  await Promise.all([web.close(), db.close()]);
  writeFileSync(join(dir, 'notes.txt'), 'not a log\n');
  const all = (await readAll(dir)).records;
  t.deepEqual(all.map((r) => `${r.app}:${r.line}`), ['db:d1', 'web:w1', 'web:w2', 'db:d2', 'web:w3'], 'equal times: apps by name, then file order');
  t.deepEqual(lines((await readAll(dir, { apps: ['web', 'db'] })).records), ['w1', 'w2', 'd1', 'd2', 'w3'], 'equal times: the order of apps');
  t.deepEqual(lines((await readAll(dir, { apps: ['db'] })).records), ['d1', 'd2']);
  t.deepEqual((await readAll(join(dir, 'missing'))).records, []);
});

test('app names are checked', async (t) => {
  const dir = await logDir(t);
  for (const name of ['', '.hidden', '..', 'a/b', 'x'.repeat(64), 'sp ace']) {
    t.throws(() => new AppLogWriter(dir, name), { message: /^invalid app name/ }, name);
    t.throws(() => readAppLogs(dir, { apps: [name] }), { message: /^invalid app name/ }, name);
  }
  t.notThrows(() => readAppLogs(dir, { apps: ['a.b_c-1', 'x'.repeat(63)] }));
});

// About 60 bytes a record, 4 a file: a burst of 7 appends to the live file,
// rotates it once or twice and, with 2 files kept, may drop it before the
// follower has read it all.
for (const maxFiles of [3, 2]) {
  test(`follow sees appended lines and survives rotations, ${maxFiles} files kept`, async (t) => {
    const dir = await logDir(t);
    const log = new AppLogWriter(dir, 'a', { maxBytes: 250, maxFiles });
    log.write('stdout', bytes('before\n'));
    const follow = follower(t, dir, {});
    t.deepEqual(lines(await follow.take(1)), ['before']);
    let n = 0;
    for (let burst = 0; burst < 12; burst++) {
      const expected: string[] = [];
      for (let i = 0; i < 7; i++, n++) {
        log.write('stdout', bytes(`line ${n}\n`));
        expected.push(`line ${n}`);
      }
      t.deepEqual(lines(await follow.take(7)), expected, `burst ${burst}`);
    }
    t.true(readdirSync(dir).includes(`a.log.${maxFiles - 1}`), 'rotated');
    // A partial line shows at a flush, and an app that starts later is found.
    log.write('stderr', bytes('half'));
    log.flush();
    t.deepEqual((await follow.take(1)).map((r) => [r.line, r.partial]), [['half', true]]);
    const late = new AppLogWriter(dir, 'late');
    late.write('stdout', bytes('hello\n'));
    t.deepEqual((await follow.take(1)).map((r) => `${r.app}:${r.line}`), ['late:hello']);
    follow.abort.abort();
    t.true((await follow.next()).done, 'abort ends the iteration');
    await Promise.all([log.close(), late.close()]);
    t.is(follow.reader.corruptLines, 0);
  });
}

test('follow keeps order and loses nothing when the writer rotates between its steps', async (t) => {
  const dir = await logDir(t);
  // About 17 records a file. The writer runs between the follower's awaits
  // (its reads, stats and opens), one record an event loop turn, so rotations
  // land in the middle of its steps. It waits while the follower is more than
  // 80 records (about 5 files) behind, so that with 10 files kept a lost
  // record is the reader's fault, however slow the host.
  const log = new AppLogWriter(dir, 'a', { maxBytes: 1000, maxFiles: 10 });
  const count = 2000;
  const maxLag = 80;
  let n = 0;
  let received = 0;
  const writeOne = (): void => {
    if (n - received >= maxLag) {
      setTimeout(writeOne, 1);
      return;
    }
    log.write('stdout', bytes(`line ${n++}\n`));
    if (n < count) setImmediate(writeOne);
  };
  const follow = follower(t, dir, {});
  setImmediate(writeOne);
  const got = lines(await follow.take(count, (taken) => { received = taken; }));
  t.deepEqual(got, Array.from({ length: count }, (_, i) => `line ${i}`), 'each line once, in order');
  t.true(readdirSync(dir).includes('a.log.9'), 'rotated');
  await log.close();
});

test('follow from tail 0 shows only new records, and the caller can stop', async (t) => {
  const dir = await logDir(t);
  const log = new AppLogWriter(dir, 'a');
  log.write('stdout', bytes('old\n'));
  const reader = readAppLogs(dir, { tail: 0, follow: true });
  // Written again until seen: one written while the reader still reads what
  // was there when it started counts as old (a busy host), and is not shown.
  const writer = setInterval(() => log.write('stdout', bytes('new\n')), 50);
  const seen: string[] = [];
  try {
    for await (const record of reader) {
      seen.push(record.line);
      break;
    }
  } finally {
    clearInterval(writer);
  }
  t.deepEqual(seen, ['new']);
  await log.close();
});

test('follow waits for an app that has no log yet, and reads all its files once it has', async (t) => {
  const dir = await logDir(t);
  const follow = follower(t, dir, { apps: ['late'] });
  const first = follow.take(7);
  await new Promise((resolve) => setTimeout(resolve, 50));
  const log = new AppLogWriter(dir, 'late', { maxBytes: 250 });
  for (let i = 0; i < 7; i++) log.write('stdout', bytes(`line ${i}\n`));
  t.true(readdirSync(dir).includes('late.log.1'), 'rotated before the follower looked');
  t.deepEqual(lines(await first), Array.from({ length: 7 }, (_, i) => `line ${i}`));
  await log.close();
});

test('a torn last line is not emitted until it is complete', async (t) => {
  const dir = await logDir(t);
  const path = join(dir, 'a.log');
  const record = '{"t":"2026-12-03T10:00:01.000Z","s":"stdout","l":"whole"}\n';
  writeFileSync(path, '{"t":"2026-12-03T10:00:00.000Z","s":"stdout","l":"first"}\n' + record.slice(0, 20));
  const snapshot = await readAll(dir);
  t.deepEqual(lines(snapshot.records), ['first']);
  t.is(snapshot.corrupt, 0, 'a line being written is not corrupt');

  const follow = follower(t, dir, {});
  t.deepEqual(lines(await follow.take(1)), ['first']);
  appendFileSync(path, record.slice(20, 40));
  await new Promise((resolve) => setTimeout(resolve, 100));
  appendFileSync(path, record.slice(40));
  t.deepEqual(lines(await follow.take(1)), ['whole']);
  follow.abort.abort();
  t.true((await follow.next()).done);
  t.is(follow.reader.corruptLines, 0);
});

test('corrupt lines are skipped and counted', async (t) => {
  const dir = await logDir(t);
  const ok = (line: string) => JSON.stringify({ t: '2026-12-03T10:00:00.000Z', s: 'stdout', l: line });
  writeFileSync(join(dir, 'a.log.1'), [
    ok('r1'),
    'not json',
    '',
    '[1,2]',
    '{"t":"yesterday","s":"stdout","l":"x"}',
    '{"t":"2026-12-03T10:00:00.000Z","s":"stdin","l":"x"}',
    '{"t":"2026-12-03T10:00:00.000Z","s":"stdout","l":3}',
    '{"t":"2026-12-03T10:00:00.000Z","s":"stdout","l":"x","p":"yes"}',
    '{"t":"2026-12-33T10:00:00.000Z","s":"stdout","l":"x"}',
    `{"l":"${'z'.repeat(2 * 1024 * 1024)}"}`,
    JSON.stringify({ t: '2026-12-03T10:00:00.000Z', s: 'stdout', l: 'r2', future: 'field' }),
    '{"t":"2026-12-03T10:00:00.000Z","s":"std', // torn for good: the file was rotated
  ].join('\n'));
  writeFileSync(join(dir, 'a.log'), ok('r3') + '\n');
  const { records, corrupt } = await readAll(dir);
  t.deepEqual(lines(records), ['r1', 'r2', 'r3']);
  t.is(corrupt, 10);
});

test('a writer that reopens a log with a torn end ends that line first', async (t) => {
  const dir = await logDir(t);
  writeFileSync(join(dir, 'a.log'), '{"t":"2026-12-03T10:00:00.000Z","s":"stdout","l":"tor');
  const log = new AppLogWriter(dir, 'a');
  log.write('stdout', bytes('after\n'));
  await log.close();
  const { records, corrupt } = await readAll(dir);
  t.deepEqual(lines(records), ['after']);
  t.is(corrupt, 1);
});

test('parseSince: RFC 3339 times and docker durations, else one line naming the value', (t) => {
  const now = new Date('2026-12-03T12:00:00.000Z');
  const cases: [string, string][] = [
    ['10s', '2026-12-03T11:59:50.000Z'],
    ['5m', '2026-12-03T11:55:00.000Z'],
    ['2h', '2026-12-03T10:00:00.000Z'],
    ['1h30m', '2026-12-03T10:30:00.000Z'],
    ['1.5h', '2026-12-03T10:30:00.000Z'],
    ['250ms', '2026-12-03T11:59:59.750Z'],
    ['0s', '2026-12-03T12:00:00.000Z'],
    ['2026-12-03T10:00:00Z', '2026-12-03T10:00:00.000Z'],
    ['2026-12-03t10:00:00.1234z', '2026-12-03T10:00:00.123Z'],
    ['2026-12-03 10:00:00+02:00', '2026-12-03T08:00:00.000Z'],
    ['2024-02-29T00:00:00-05:30', '2024-02-29T05:30:00.000Z'],
  ];
  for (const [text, iso] of cases) t.is(parseSince(text, now).toISOString(), iso, text);
  t.is(parseSince('2026-12-03T10:00', now).getTime(), new Date(2026, 11, 3, 10, 0).getTime(), 'no zone: local time');
  t.is(parseSince('2026-12-03', now).getTime(), new Date(2026, 11, 3).getTime(), 'a date: local midnight');
  for (const text of ['', 'yesterday', '10', '5x', '-5m', 'h', '2026-02-29T00:00:00Z', '2026-13-01', '2026-12-03T24:00:00Z', '2026-12-03T10:00:00+25:00', '2026-12-03Z']) {
    const err = t.throws(() => parseSince(text, now), undefined, text);
    t.is(err?.message, `invalid --since value "${text}": use an RFC 3339 time such as 2026-12-03T10:00:00Z (local time if no zone) or a duration such as 10s, 5m, 2h or 1h30m`);
  }
});

test('formatLogRecord: prefixes, newlines, and partial lines that join up', (t) => {
  const r = (app: string, line: string, partial = false, stream: 'stdout' | 'stderr' = 'stdout'): LogRecord => ({ app, t: at(1), stream, line, partial });
  const both = { timestamps: true, appPrefix: true };
  t.is(formatLogRecord(r('web', 'hi'), { timestamps: false, appPrefix: false }), 'hi\n');
  t.is(formatLogRecord(r('web', 'hi'), both), 'web | 2026-12-03T10:00:01.000Z hi\n');
  t.is(formatLogRecord(r('web', 'hi'), { timestamps: false, appPrefix: true }), 'web | hi\n');
  t.is(formatLogRecord(r('web', 'hi'), { timestamps: true, appPrefix: false }), '2026-12-03T10:00:01.000Z hi\n');
  const printed = (records: LogRecord[]) => records.map((record, i) => formatLogRecord(record, both, records[i - 1])).join('');
  t.is(printed([r('web', 'pro', true), r('web', 'mpt', true), r('web', ' done')]), 'web | 2026-12-03T10:00:01.000Z prompt done\n');
  t.is(printed([r('web', 'half', true), r('db', 'other'), r('web', 'rest')]),
    'web | 2026-12-03T10:00:01.000Z half\ndb | 2026-12-03T10:00:01.000Z other\nweb | 2026-12-03T10:00:01.000Z rest\n');
  t.is(printed([r('web', 'out', true), r('web', 'err', false, 'stderr')]),
    'web | 2026-12-03T10:00:01.000Z out\nweb | 2026-12-03T10:00:01.000Z err\n');
});
