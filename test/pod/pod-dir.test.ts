/**
 * Pod directories: a name is claimed by exactly one of many racing creators,
 * a directory appears with its lock and record or not at all, records are
 * replaced whole, and rm/gc never delete a pod whose monitor holds its lock.
 */
import test from 'ava';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { collectGarbage, findPod, removePod, viewOf } from '../../cli/pod-control.js';
import { newPodId, PodDir, PodNameError } from '../../pod/pod-dir.js';
import { PodLock } from '../../pod/pod-lock.js';
import { describeStatus, parsePodRecord, RECORD_VERSION, type PodRecord } from '../../pod/pod-record.js';
import { self } from '../../pod/process-identity.js';

let work: string;
let roots = 0;
test.before(async () => {
  work = await mkdtemp(join(tmpdir(), 'vmctr-pod-dir-'));
});
test.after.always(async () => {
  await rm(work, { recursive: true, force: true });
});

const root = () => join(work, `root-${roots++}`);

function record(name: string, state: PodRecord['state'] = 'running'): PodRecord {
  return { version: RECORD_VERSION, id: newPodId(), name, created: new Date().toISOString(), state, apps: [{ name: 'default', image: 'default', command: ['sh'] }] };
}

test('create claims a name once: of 20 racing creators exactly one wins, the rest get a one-line PodNameError', async (t) => {
  const r = root();
  const results = await Promise.allSettled(Array.from({ length: 20 }, () => PodDir.create(r, record('same'))));
  const won = results.filter((x) => x.status === 'fulfilled');
  t.is(won.length, 1);
  for (const x of results) if (x.status === 'rejected') t.true(x.reason instanceof PodNameError, String(x.reason));
  t.deepEqual(await readdir(join(r, 'pods')), ['.staging', 'same']);
  t.deepEqual(await readdir(join(r, 'pods', '.staging')), [], 'the losers leave no staging directory');
  const { dir, lock } = (won[0] as PromiseFulfilledResult<Awaited<ReturnType<typeof PodDir.create>>>).value;
  t.true(dir.isLocked());
  t.is((await dir.readRecord())?.name, 'same');
  lock.release();
  t.false(dir.isLocked());
});

test('a generated name comes from the id; a bad name or one too long for the socket path is refused', async (t) => {
  const r = root();
  const rec = record('');
  const { dir, lock } = await PodDir.create(r, rec);
  t.is(dir.name, `pod-${rec.id.slice(0, 8)}`);
  lock.release();
  await t.throwsAsync(PodDir.create(r, record('-bad')), { instanceOf: PodNameError, message: /invalid pod name/ });
  await t.throwsAsync(PodDir.create(join(work, 'x'.repeat(90)), record('p')), { instanceOf: PodNameError, message: /socket path would be too long/ });
});

test('find takes a name or a unique id prefix', async (t) => {
  const r = root();
  const a = await PodDir.create(r, record('alpha'));
  const id = (await a.dir.readRecord())!.id;
  t.is((await PodDir.find(r, 'alpha'))?.name, 'alpha');
  t.is((await PodDir.find(r, id.slice(0, 6)))?.name, 'alpha');
  t.is(await PodDir.find(r, 'nosuch'), undefined);
  a.lock.release();
});

test('a record is replaced whole; a torn or foreign pod.json reads as no record', async (t) => {
  const r = root();
  const { dir, lock } = await PodDir.create(r, record('rec'));
  const rec = (await dir.readRecord())!;
  await Promise.all(Array.from({ length: 20 }, (_, i) => dir.writeRecord({ ...rec, exitCode: i })));
  t.true(Number.isInteger((await dir.readRecord())?.exitCode));
  t.deepEqual((await readdir(dir.path)).filter((f) => f.includes('.pod.json.')), [], 'no temporary file is left');
  await writeFile(dir.recordPath, '{"version": 1, "id": "x"');
  t.is(await dir.readRecord(), undefined);
  t.is(parsePodRecord('{"version": 99}'), undefined);
  lock.release();
});

test('status: a live state with its lock free is a dead monitor; a dead owner is reported as such', async (t) => {
  const rec = record('s', 'running');
  t.is(describeStatus(rec, false), 'dead (its monitor was killed)');
  t.is(describeStatus(rec, false, Date.now(), true), 'dead (the out-of-memory killer ended its monitor: the pod reached its memory limit (vmctr update --memory))');
  t.regex(describeStatus({ ...rec, started: new Date(Date.now() - 90_000).toISOString() }, true), /^running \(1m\)$/);
  t.is(describeStatus({ ...rec, state: 'exited', exitCode: 3 }, false), 'exited (3)');
  const r = root();
  const { dir, lock } = await PodDir.create(r, { ...rec, owner: { pid: self().pid, startTime: '1' } });
  t.is(viewOf(dir, await dir.readRecord()).status, 'dead (its vmctr was killed)');
  lock.release();
});

/** A stand-in monitor: a child process holding the pod's lock through an inherited fd, as the real one does. */
async function fakeMonitor(t: { teardown(fn: () => void): void }, lock: PodLock) {
  const child = spawn('sleep', ['1000'], { stdio: ['ignore', 'ignore', 'ignore', lock.fd] });
  t.teardown(() => child.kill('SIGKILL'));
  await once(child, 'spawn');
  lock.release();
  return child;
}

test('rm refuses a running pod without --force, waits for an ending one, and gc removes only pods whose monitor died', async (t) => {
  const r = root();
  const running = await PodDir.create(r, record('running'));
  const monitor = await fakeMonitor(t, running.lock);
  const exited = await PodDir.create(r, record('exited', 'exited'));
  exited.lock.release();
  const crashed = await PodDir.create(r, record('crashed', 'running'));
  const crashedMonitor = await fakeMonitor(t, crashed.lock);
  crashedMonitor.kill('SIGKILL');
  await once(crashedMonitor, 'exit');
  await mkdir(join(r, 'pods', '.staging', 'abandoned'), { recursive: true });
  const old = new Date(Date.now() - 120_000);
  await utimes(join(r, 'pods', '.staging', 'abandoned'), old, old);

  await t.throwsAsync(removePod(await findPod(r, 'running'), false), { message: /pod "running" is running: stop it first or use --force/ });
  t.is((await findPod(r, 'crashed')).status, 'dead (its monitor was killed)');
  t.deepEqual((await collectGarbage(r)).map((p) => p.replace(/.*\//, '')).sort(), ['abandoned', 'crashed']);
  t.true(existsSync(join(r, 'pods', 'running')), 'gc keeps a pod whose monitor lives');
  t.true(existsSync(join(r, 'pods', 'exited')), 'gc keeps a pod that ended normally');

  // A pod whose monitor is writing its last record: rm waits for the lock instead of refusing.
  const ending = await PodDir.create(r, record('ending', 'stopping'));
  const endingMonitor = await fakeMonitor(t, ending.lock);
  setTimeout(() => endingMonitor.kill('SIGKILL'), 300);
  await removePod(await findPod(r, 'ending'), false);
  t.false(existsSync(join(r, 'pods', 'ending')));

  await removePod(await findPod(r, 'exited'), false);
  t.false(existsSync(join(r, 'pods', 'exited')));
  t.is(monitor.exitCode, null, 'the running pod\'s monitor was never touched');
});
