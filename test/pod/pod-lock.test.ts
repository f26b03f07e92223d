/**
 * The pod lock: exclusive between open files, handed to a child through its
 * stdio so that it lasts exactly as long as that child (SIGKILL included),
 * never leaked to other children, and won by one of two racing processes.
 */
import test from 'ava';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { PodLock } from '../../pod/pod-lock.js';
import { identify, isAlive, signalProcess } from '../../pod/process-identity.js';
import { native } from '../../vmm/kvm/native.js';

const LOCK_MODULE = fileURLToPath(new URL('../../pod/pod-lock.js', import.meta.url));

let work: string;
let paths = 0;
test.before(async () => {
  work = await mkdtemp(join(tmpdir(), 'vmctr-pod-lock-'));
});
test.after.always(async () => {
  await rm(work, { recursive: true, force: true });
});

function lockPath(): string {
  return join(work, `lock-${paths++}`);
}

type StdioEntry = 'ignore' | 'pipe' | 'inherit' | number;

interface Teardown {
  teardown(fn: () => void): void;
}

/** Spawns `command`, killed at the test's end, and waits until it runs. */
async function start(t: Teardown, command: string, args: string[], stdio: StdioEntry[]): Promise<ChildProcess> {
  const child = spawn(command, args, { stdio });
  t.teardown(() => child.kill('SIGKILL'));
  await once(child, 'spawn');
  return child;
}

/** A Node child running `code`, an ES module (LOCK_MODULE in it names pod-lock.js). */
function startNode(t: Teardown, code: string, args: string[], stdio: StdioEntry[]): Promise<ChildProcess> {
  return start(t, process.execPath, ['--input-type=module', '-e', code.replaceAll('LOCK_MODULE', JSON.stringify(LOCK_MODULE)), ...args], stdio);
}

async function kill(child: ChildProcess): Promise<void> {
  const exit = once(child, 'exit');
  child.kill('SIGKILL');
  await exit;
}

function lines(child: ChildProcess): AsyncIterator<string> {
  return createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
}

async function nextLine(reader: AsyncIterator<string>): Promise<string> {
  const { value, done } = await reader.next();
  if (done) throw new Error('the child closed its stdout');
  return value;
}

test('the lock is exclusive between open files, even in one process, until released', (t) => {
  const path = lockPath();
  const lock = PodLock.tryAcquire(path);
  t.truthy(lock);
  t.true(PodLock.isHeld(path));
  t.is(PodLock.tryAcquire(path), undefined);
  lock!.release();
  lock!.release();
  t.false(PodLock.isHeld(path));
  const again = PodLock.tryAcquire(path);
  t.truthy(again);
  again!.release();
});

test('a missing lock file is not held, and probing does not create it', (t) => {
  const path = lockPath();
  t.false(PodLock.isHeld(path));
  t.false(existsSync(path));
});

// Serial: the other tests spawn Node processes at once, which on a loaded host can hold this one's event loop longer than the wait.
test.serial('acquire waits for the holder without blocking the event loop', async (t) => {
  const path = lockPath();
  const held = PodLock.tryAcquire(path)!;
  let ticks = 0;
  const ticker = setInterval(() => ticks++, 5);
  setTimeout(() => held.release(), 150);
  const started = performance.now();
  const lock = await PodLock.acquire(path, 5000);
  clearInterval(ticker);
  t.truthy(lock);
  t.true(performance.now() - started >= 140);
  t.true(ticks >= 5, `the event loop ran ${ticks} timers while acquire waited`);
  lock!.release();
});

test('acquire gives up after its timeout', async (t) => {
  const path = lockPath();
  const held = PodLock.tryAcquire(path)!;
  const started = performance.now();
  t.is(await PodLock.acquire(path, 100), undefined);
  t.true(performance.now() - started >= 100);
  held.release();
});

test('a child given the lock fd in its stdio holds the lock after the parent closes it, until SIGKILLed', async (t) => {
  const path = lockPath();
  const lock = PodLock.tryAcquire(path)!;
  const child = await start(t, 'sleep', ['1000'], ['ignore', 'ignore', 'ignore', lock.fd]);
  lock.release();
  t.true(PodLock.isHeld(path));
  t.is(PodLock.tryAcquire(path), undefined);
  await kill(child);
  t.false(PodLock.isHeld(path));
  const mine = PodLock.tryAcquire(path);
  t.truthy(mine);
  mine!.release();
});

test('a child not given the lock fd does not inherit it (Node opens it close-on-exec)', async (t) => {
  const path = lockPath();
  const lock = PodLock.tryAcquire(path)!;
  const child = await start(t, 'sleep', ['1000'], ['ignore', 'ignore', 'ignore']);
  lock.release();
  t.false(PodLock.isHeld(path));
  await kill(child);
});

// A monitor that spawns a child of its own, which outlives it.
const MONITOR = `
import { spawn } from 'node:child_process';
const child = spawn('sleep', ['1000'], { stdio: 'ignore' });
child.on('spawn', () => console.log(child.pid));
setInterval(() => {}, 1000);
`;

test('a Node monitor\'s own children do not inherit its lock (Node marks inherited fds close-on-exec)', async (t) => {
  const path = lockPath();
  const lock = PodLock.tryAcquire(path)!;
  const monitor = await startNode(t, MONITOR, [], ['ignore', 'pipe', 'inherit', lock.fd]);
  const grandchild = identify(Number(await nextLine(lines(monitor))))!;
  t.teardown(() => signalProcess(grandchild, 'SIGKILL'));
  lock.release();
  t.true(PodLock.isHeld(path));
  await kill(monitor);
  t.true(isAlive(grandchild));
  t.false(PodLock.isHeld(path));
});

test('LOCK_UN on the parent\'s fd would free the child\'s lock too: release() closes instead', async (t) => {
  const path = lockPath();
  const lock = PodLock.tryAcquire(path)!;
  const child = await start(t, 'sleep', ['1000'], ['ignore', 'ignore', 'ignore', lock.fd]);
  t.true(native.flock(lock.fd, 'unlock', false));
  t.false(PodLock.isHeld(path));
  lock.release();
  await kill(child);
});

// Locks a fresh path on each "try" line; drops it on "release".
const RACER = `
import { createInterface } from 'node:readline';
import { PodLock } from LOCK_MODULE;
let lock;
for await (const line of createInterface({ input: process.stdin })) {
  const { op, path } = JSON.parse(line);
  if (op === 'try') lock = PodLock.tryAcquire(path);
  else lock?.release();
  console.log(op === 'try' ? (lock ? 'won' : 'lost') : 'released');
}
`;

test('two processes racing tryAcquire on one path: exactly one wins, every round', async (t) => {
  const racers = await Promise.all([0, 1].map(() => startNode(t, RACER, [], ['pipe', 'pipe', 'inherit'])));
  const readers = racers.map(lines);
  const send = (i: number, message: object) => racers[i]!.stdin!.write(JSON.stringify(message) + '\n');
  for (let round = 0; round < 50; round++) {
    const path = lockPath();
    racers.forEach((_, i) => send(i, { op: 'try', path }));
    const results = await Promise.all(readers.map(nextLine));
    t.is(results.filter((r) => r === 'won').length, 1, `round ${round}: ${results.join(', ')}`);
    t.true(PodLock.isHeld(path));
    racers.forEach((_, i) => send(i, { op: 'release' }));
    t.deepEqual(await Promise.all(readers.map(nextLine)), ['released', 'released']);
    t.false(PodLock.isHeld(path));
  }
  for (const racer of racers) racer.stdin!.end();
});
