import test from 'ava';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PodDir } from '../../pod/pod-dir.js';
import { VIRTIOFSD, VolumeBackend } from '../../pod/volume-backend.js';

// The host side of a pod's volumes without a guest: the layout, virtiofsd's
// sandbox (its own mount namespace, read-only binds there and not on the
// host) and how its end is reported. Files through the guest: test/e2e/volumes.

const hasVirtiofsd = existsSync(VIRTIOFSD);
const backendTest = hasVirtiofsd ? test.serial : test.skip;

function podDir(t: { teardown(f: () => void): void }): { dir: PodDir; base: string } {
  const base = mkdtempSync(join(tmpdir(), 'vmctr-vol-'));
  t.teardown(() => rmSync(base, { recursive: true, force: true }));
  const path = join(base, 'pods', 'p');
  mkdirSync(path, { recursive: true });
  return { dir: PodDir.at(path), base };
}

/** The mounts a process sees, as "mountpoint options" lines. */
function mounts(pid: number): string[] {
  return readFileSync(`/proc/${pid}/mountinfo`, 'utf8').trim().split('\n').map((l) => { const f = l.split(' '); return `${f[4]} ${f[5]}`; });
}


backendTest('virtiofsd serves a directory per volume; host volumes are bound in its own namespace only, read-only ones read-only there', async (t) => {
  const { dir, base } = podDir(t);
  const src = join(base, 'src'), ro = join(base, 'ro');
  mkdirSync(src); mkdirSync(ro);
  writeFileSync(join(src, 'hello'), 'hi');
  const backend = await VolumeBackend.start(dir, [{ name: 'data', source: src, readOnly: false }, { name: 'conf', source: ro, readOnly: true }, { name: 'scratch', readOnly: false }]);
  t.teardown(() => void backend.stop());
  t.true(existsSync(dir.volumesSocket));
  t.deepEqual(readdirSync(dir.volumesDir).sort(), ['conf', 'data', 'scratch']);
  t.deepEqual(readdirSync(join(dir.volumesDir, 'data')), [], 'the host sees no bind mount');
  t.false(mounts(process.pid).some((m) => m.includes(dir.volumesDir)));
  t.deepEqual(readdirSync('/run/virtiofsd').filter((f) => f.includes('vmctr-vol-')), [], 'virtiofsd\'s pid file is in its own namespace');
  const inside = mounts(backend.pid!);
  t.true(inside.some((m) => m.startsWith(`${dir.volumesDir}/data rw`)), 'data is bound read-write under virtiofsd\'s root');
  t.true(inside.some((m) => m.startsWith(`${dir.volumesDir}/conf ro`)), 'conf is bound read-only');
  await backend.stop();
  t.regex(await backend.exited, /^the volume backend \(virtiofsd\) (exited with status \d+|was killed by SIGTERM)/);
});

backendTest('a backend killed is reported with how it ended', async (t) => {
  const { dir } = podDir(t);
  const backend = await VolumeBackend.start(dir, [{ name: 'scratch', readOnly: false }]);
  process.kill(backend.pid!, 'SIGKILL');
  t.is(await backend.exited, 'the volume backend (virtiofsd) was killed by SIGKILL');
});

backendTest('a source that cannot be bound fails the start with one line', async (t) => {
  const { dir, base } = podDir(t);
  const err = await t.throwsAsync(VolumeBackend.start(dir, [{ name: 'gone', source: join(base, 'missing'), readOnly: false }]));
  t.regex(err!.message, /^the volume backend \(virtiofsd\) did not start: it exited with status 125/);
  t.notRegex(err!.message, /\n/);
});
