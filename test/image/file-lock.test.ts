import test from 'ava';
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FileLock } from '../../image/file-lock.js';

let work: string;
const lockModule = fileURLToPath(new URL('../../image/file-lock.js', import.meta.url));

test.before(async () => {
  work = await mkdtemp(join(tmpdir(), 'vmctr-lock-'));
});

test.after.always(async () => {
  await rm(work, { recursive: true, force: true });
});

function runNode(script: string, args: string[]): Promise<number | null> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', script, ...args], { stdio: ['ignore', 'inherit', 'inherit'] });
    child.on('error', reject);
    child.on('exit', (code) => resolve(code));
  });
}

// Each worker does read-sleep-write increments of a counter under the lock:
// without mutual exclusion, increments are lost.
const WORKER = `
import { withLock } from ${JSON.stringify(lockModule)};
import { readFile, writeFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
const [lock, counter, rounds] = process.argv.slice(1);
for (let i = 0; i < Number(rounds); i++) {
  await withLock(lock, async () => {
    const value = Number(await readFile(counter, 'utf8'));
    await sleep(2);
    await writeFile(counter, String(value + 1));
  });
}
`;

test('four processes contending for one lock never overlap', async (t) => {
  const lock = join(work, 'counter.lock');
  const counter = join(work, 'counter');
  await writeFile(counter, '0');
  const codes = await Promise.all(Array.from({ length: 4 }, () => runNode(WORKER, [lock, counter, '25'])));
  t.deepEqual(codes, [0, 0, 0, 0]);
  t.is(await readFile(counter, 'utf8'), '100');
});

test('a lock left by a dead process is broken; one held by a live one is waited for', async (t) => {
  const lock = join(work, 'stale.lock');
  // A holder that has exited: its pid no longer has that start time.
  const dead = spawn(process.execPath, ['-e', '']);
  await new Promise((resolve) => dead.on('exit', resolve));
  await writeFile(lock, JSON.stringify({ pid: dead.pid, start: '1', nonce: 'x' }));
  const taken = await FileLock.acquire(lock);
  t.regex(await readFile(lock, 'utf8'), new RegExp(`"pid":${process.pid}`));

  let waitedFor: number | undefined;
  let acquired = false;
  const second = FileLock.acquire(lock, { onWait: (holder) => (waitedFor = holder.pid) }).then((held) => {
    acquired = true;
    return held;
  });
  await new Promise((resolve) => setTimeout(resolve, 200));
  t.false(acquired);
  t.is(waitedFor, process.pid);
  await taken.release();
  await (await second).release();
  t.true(acquired);
  await t.throwsAsync(readFile(lock));
});

test('a process killed while holding a lock does not block the next one', async (t) => {
  const lock = join(work, 'killed.lock');
  const holder = spawn(process.execPath, ['--input-type=module', '-e', `import { FileLock } from ${JSON.stringify(lockModule)}; await FileLock.acquire(process.argv[1]); console.log('held'); setInterval(() => {}, 1000);`, lock], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve) => holder.stdout!.once('data', () => resolve()));
  holder.kill('SIGKILL');
  await new Promise((resolve) => holder.on('exit', resolve));
  const lockHandle = await FileLock.acquire(lock);
  t.pass();
  await lockHandle.release();
});
