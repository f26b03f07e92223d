/**
 * Process identities: the /proc/<pid>/stat parser against hostile command
 * names, and liveness and signals that a dead process, a zombie, a forged
 * start time or a thread's id cannot fool.
 */
import test from 'ava';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readdir, rm, symlink } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { identify, isAlive, parseProcStat, self, signalProcess, type ProcessIdentity } from '../../pod/process-identity.js';

let work: string;
test.before(async () => {
  work = await mkdtemp(join(tmpdir(), 'vmctr-process-identity-'));
});
test.after.always(async () => {
  await rm(work, { recursive: true, force: true });
});

/** A stat line as the kernel writes it: fields 3 to 52, with `startTime` as field 22. */
function statLine(pid: number, comm: string, state: string, startTime: string): string {
  const fields = Array.from({ length: 50 }, (_, i) => String(i + 3));
  fields[0] = state;
  fields[19] = startTime;
  return `${pid} (${comm}) ${fields.join(' ')}\n`;
}

function procStat(pid: number) {
  return parseProcStat(readFileSync(`/proc/${pid}/stat`, 'latin1'));
}

/** Spawns `command` and waits until it runs (its 'spawn' event). */
async function start(t: { teardown(fn: () => void): void }, command: string, args: string[], stdout: 'ignore' | 'pipe' = 'ignore'): Promise<ChildProcess> {
  const child = spawn(command, args, { stdio: ['ignore', stdout, 'inherit'] });
  t.teardown(() => child.kill('SIGKILL'));
  await once(child, 'spawn');
  return child;
}

async function until(what: string, check: () => boolean): Promise<void> {
  for (const deadline = Date.now() + 10_000; !check(); await sleep(10)) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
  }
}

test('parseProcStat reads this process\'s own stat line', (t) => {
  const stat = parseProcStat(readFileSync('/proc/self/stat', 'latin1'));
  t.is(stat?.pid, process.pid);
  t.is(stat?.state, 'R');
  t.regex(stat?.startTime ?? '', /^\d+$/);
});

const hostile = [
  'a b',
  ') Z 1 2 3 4 5 6',
  ')',
  '((',
  '',
  ':-) (',
  'x)\n(y',
  ' ) ',
  ') R 7 7 7 7 7 7 7 7 7 7 7 7 7 7 7 7 7 7 7 666 7',
];
for (const comm of hostile) {
  test(`parseProcStat takes the comm ${JSON.stringify(comm)} whole`, (t) => {
    t.deepEqual(parseProcStat(statLine(4242, comm, 'S', '987654')), { pid: 4242, comm, state: 'S', startTime: '987654' });
  });
}

test('parseProcStat refuses what is not a stat line', (t) => {
  for (const line of ['', '12', '12 (x)', '12 (x) S', 'x (y) S 1', '0 (x) S 1', ' 12 (x) S 1', '12 (x)S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20', statLine(12, 'x', 'S', '-5'), statLine(12, 'x', '', '5'), statLine(12, 'x', 'S', '')]) {
    t.is(parseProcStat(line), undefined, JSON.stringify(line));
  }
});

test('a real process whose comm mimics stat fields is read right', async (t) => {
  // comm is the executable's name: a link to sleep named like a zombie's stat fields.
  const name = ') Z 1 (2) 3 4';
  const path = join(work, name);
  await symlink('/bin/sleep', path);
  const child = await start(t, path, ['1000']);
  const stat = procStat(child.pid!);
  t.is(stat?.comm, name);
  t.not(stat?.state, 'Z');
  const id = identify(child.pid!);
  t.truthy(id);
  t.true(isAlive(id!));
});

test('self() is this process, alive', (t) => {
  t.deepEqual(self(), identify(process.pid));
  t.true(isAlive(self()));
  t.is(identify(0), undefined);
  t.is(identify(-1), undefined);
  t.is(identify(1.5), undefined);
});

test('a killed process is no longer alive, identified or signalled', async (t) => {
  const child = await start(t, 'sleep', ['1000']);
  const id = identify(child.pid!)!;
  t.true(isAlive(id));
  t.true(signalProcess(id, 0));
  const exit = once(child, 'exit');
  t.true(signalProcess(id, 'SIGKILL'));
  t.deepEqual(await exit, [null, 'SIGKILL']);
  t.false(isAlive(id));
  t.is(identify(id.pid), undefined);
  t.false(signalProcess(id, 'SIGTERM'));
});

test('a forged identity (right pid, wrong start time) is neither alive nor signalled', async (t) => {
  const child = await start(t, 'sleep', ['1000']);
  const id = identify(child.pid!)!;
  const forged: ProcessIdentity = { pid: id.pid, startTime: String(BigInt(id.startTime) + 1n) };
  t.false(isAlive(forged));
  t.false(signalProcess(forged, 'SIGTERM'));
  t.false(signalProcess(forged, 'SIGKILL'));
  await sleep(100);
  t.is(child.exitCode, null);
  t.is(child.signalCode, null);
  t.true(isAlive(id));
  const exit = once(child, 'exit');
  t.true(signalProcess(id, 'SIGTERM'));
  t.deepEqual(await exit, [null, 'SIGTERM']);
});

test('a zombie is not alive and not signalled', async (t) => {
  // sleep never reaps, so its killed child stays a zombie.
  const parent = await start(t, 'sh', ['-c', 'sleep 1000 & echo $!; exec sleep 1000'], 'pipe');
  const [line] = await once(createInterface({ input: parent.stdout! }), 'line') as [string];
  const id = identify(Number(line))!;
  t.truthy(id);
  t.true(isAlive(id));
  t.true(signalProcess(id, 'SIGKILL'));
  await until('the zombie', () => procStat(id.pid)?.state === 'Z');
  t.false(isAlive(id));
  t.is(identify(id.pid), undefined);
  t.false(signalProcess(id, 0));
});

test('a thread\'s id is not taken for a process', async (t) => {
  const tids = (await readdir('/proc/self/task')).map(Number).filter((tid) => tid !== process.pid);
  t.true(tids.length > 0);
  const tid = tids[0]!;
  const stat = procStat(tid)!;
  // pidfd_open refuses a thread: a pid reused as a thread's id is not signalled, and nothing throws.
  t.false(signalProcess({ pid: tid, startTime: stat.startTime }, 0));
});
