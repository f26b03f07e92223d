import test, { type ExecutionContext } from 'ava';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AppLogWriter } from '../../monitor/app-log.js';
import { Journal, appLineFields, journalEntry, type JournalPod } from '../../monitor/journal.js';
import { FakeJournald, parseJournalEntry } from '../fake-journald.js';

// App output copied to the systemd journal: the native protocol's entries,
// read back by a stand-in journald (a datagram socket this test binds), and
// a journal that is full or goes away never stopping or failing the writer.

const POD: JournalPod = { id: '0123456789abcdef0123456789abcdef', name: 'web' };

async function tempDir(t: ExecutionContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'vmctr-journal-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** A stand-in journald at `path`, closed at the test's end. */
function fakeJournald(t: ExecutionContext, path: string): FakeJournald {
  const journald = new FakeJournald(path);
  t.teardown(() => journald.close());
  return journald;
}

test('entries: simple fields as NAME=value, a value with a newline with its length; bad names refused', (t) => {
  t.deepEqual(journalEntry([['MESSAGE', 'hi'], ['PRIORITY', '6']]), Buffer.from('MESSAGE=hi\nPRIORITY=6\n'));
  const binary = journalEntry([['MESSAGE', 'two\nlines']]);
  t.deepEqual(binary, Buffer.concat([Buffer.from('MESSAGE\n'), Buffer.from([9, 0, 0, 0, 0, 0, 0, 0]), Buffer.from('two\nlines\n')]));
  t.deepEqual(parseJournalEntry(binary), [['MESSAGE', 'two\nlines']]);
  t.deepEqual(parseJournalEntry(journalEntry([['MESSAGE', 'é = ü']])), [['MESSAGE', 'é = ü']]);
  for (const name of ['_PID', 'message', '', 'A-B', 'A'.repeat(65)]) t.throws(() => journalEntry([[name, 'x']]), { message: /invalid journal field name/ });
});

test('a line carries docker\'s journald fields: the pod as the container, the app as the tag', (t) => {
  t.deepEqual(Object.fromEntries(appLineFields(POD, 'api', 'stderr', 'oops')), {
    MESSAGE: 'oops',
    PRIORITY: '3',
    SYSLOG_IDENTIFIER: 'api',
    CONTAINER_NAME: 'web',
    CONTAINER_ID: '0123456789ab',
    CONTAINER_ID_FULL: POD.id,
    CONTAINER_TAG: 'api',
    VMCTR_STREAM: 'stderr',
  });
  t.is(Object.fromEntries(appLineFields({ ...POD, name: '' }, 'api', 'stdout', 'x')).CONTAINER_NAME, '0123456789ab', 'an unnamed pod by its short id');
  t.is(Object.fromEntries(appLineFields(POD, 'api', 'stdout', 'x')).PRIORITY, '6');
});

test('no journald: nothing to connect to', async (t) => {
  const dir = await tempDir(t);
  t.is(Journal.connect(join(dir, 'none')), undefined);
});

test('an app log writer copies each record to the journal as it stores it', async (t) => {
  const dir = await tempDir(t);
  const journald = fakeJournald(t, join(dir, 'socket'));
  const journal = Journal.connect(join(dir, 'socket'))!;
  t.teardown(() => journal.close());
  const log = new AppLogWriter(join(dir, 'logs'), 'api', { onRecord: (stream, line) => journal.send(POD, 'api', stream, line) });
  log.write('stdout', Buffer.from('one\ntwo\n'));
  log.write('stderr', Buffer.from('bad\npartial'));
  await log.close();
  const entries = journald.received().map((fields) => Object.fromEntries(fields));
  t.deepEqual(entries.map((e) => [e.MESSAGE, e.PRIORITY, e.CONTAINER_NAME, e.SYSLOG_IDENTIFIER]), [
    ['one', '6', 'web', 'api'],
    ['two', '6', 'web', 'api'],
    ['bad', '3', 'web', 'api'],
    ['partial', '3', 'web', 'api'],
  ]);
  t.is(journal.dropped, 0);
});

test('a full journal drops entries without waiting; one that went away ends the connection; the writer goes on', async (t) => {
  const dir = await tempDir(t);
  const journald = fakeJournald(t, join(dir, 'socket'));
  const journal = Journal.connect(join(dir, 'socket'))!;
  t.teardown(() => journal.close());
  // Never read: the socket's queue fills, and the sends after that are dropped at once.
  const started = Date.now();
  const count = 5000;
  for (let i = 0; i < count; i++) journal.send(POD, 'api', 'stdout', 'x'.repeat(1000));
  t.true(journal.dropped > 0, 'some were dropped');
  t.true(Date.now() - started < 5000, 'sending never waited');
  t.is(journald.received().length, count - journal.dropped, 'the others arrived');

  journald.close();
  const before = journal.dropped;
  journal.send(POD, 'api', 'stdout', 'after');
  t.false(journal.connected, 'journald went away');
  journal.send(POD, 'api', 'stdout', 'and again');
  t.is(journal.dropped, before + 2);
});
