import test from 'ava';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync, chownSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { imageVolumes, populateVolume, resolveInRoot } from '../../pod/image-volumes.js';

function rootfs(t: { teardown(f: () => void): void }): string {
  const root = mkdtempSync(join(tmpdir(), 'vmctr-imgvol-'));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  return root;
}

test('paths resolve inside the image: absolute and climbing symlinks stay in its root', (t) => {
  const root = rootfs(t);
  mkdirSync(join(root, 'var/lib/data'), { recursive: true });
  symlinkSync('/var/lib/data', join(root, 'data'));
  symlinkSync('../../../../../../etc', join(root, 'var/escape'));
  symlinkSync('loop', join(root, 'loop'));
  t.is(resolveInRoot(root, '/data'), join(root, 'var/lib/data'));
  t.is(resolveInRoot(root, '/var/lib/./data/'), join(root, 'var/lib/data'));
  t.is(resolveInRoot(root, '/var/escape'), undefined, 'the host\'s /etc is never reached: the image has no /etc');
  mkdirSync(join(root, 'etc'));
  t.is(resolveInRoot(root, '/var/escape'), join(root, 'etc'));
  t.is(resolveInRoot(root, '/missing/dir'), undefined);
  t.throws(() => resolveInRoot(root, '/loop'), { message: /too many symbolic links/ });
});

test('a declared volume is populated with the image\'s files there, owners and modes kept; a file there is refused', async (t) => {
  const root = rootfs(t);
  mkdirSync(join(root, 'srv/www/sub'), { recursive: true });
  writeFileSync(join(root, 'srv/www/index.html'), 'hello');
  chownSync(join(root, 'srv/www/index.html'), 33, 33);
  writeFileSync(join(root, 'file'), 'x');
  const [www, none, file] = imageVolumes(root, ['/srv/www/', '/cache', '/file']);
  t.is(www!.path, '/srv/www');
  const dir = join(rootfs(t), 'vol');
  mkdirSync(dir);
  await populateVolume(www!, dir);
  t.is(readFileSync(join(dir, 'index.html'), 'utf8'), 'hello');
  t.is(statSync(join(dir, 'index.html')).uid, 33);
  t.true(statSync(join(dir, 'sub')).isDirectory());
  t.is(none!.source, undefined);
  await populateVolume(none!, dir);
  await t.throwsAsync(populateVolume(file!, dir), { message: 'the image declares a volume at /file, which in the image is not a directory' });
});
