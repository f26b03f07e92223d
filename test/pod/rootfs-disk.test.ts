/**
 * Root filesystem disks: built from a directory, a tar or a tar.gz with
 * owners, modes, symlinks and hard links intact (read back with debugfs, no
 * mount needed); hostile or broken archives refused in one line; and the
 * built-in default image made by setup/build-default-image.sh.
 */
import test from 'ava';
import { execFile } from 'node:child_process';
import { access, chmod, chown, link, mkdir, mkdtemp, readdir, rm, stat, symlink, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { buildRootfsDisk, RootfsError } from '../../pod/rootfs-disk.js';
import { tarOf } from '../image/image-builder.js';

const run = promisify(execFile);
const SCRIPT = fileURLToPath(new URL('../../../setup/build-default-image.sh', import.meta.url));
const isRoot = process.getuid?.() === 0;
const loopUsable = isRoot && (await access('/dev/loop-control').then(() => true, () => false));
const rootTest = isRoot ? test : test.skip;
// Debian keeps debugfs in /usr/sbin, which a non-root PATH lacks.
const sbinPath = { ...process.env, PATH: `${process.env.PATH ?? ''}:/usr/sbin:/sbin` };

let work: string;
test.before(async () => {
  work = await mkdtemp(join(tmpdir(), 'vmctr-rootfs-disk-'));
});
test.after.always(async () => {
  await rm(work, { recursive: true, force: true });
});

interface Inode {
  inode: number;
  type: string;
  mode: number;
  uid: number;
  gid: number;
  links: number;
  target?: string;
}

async function debugfs(image: string, request: string): Promise<string> {
  const { stdout } = await run('debugfs', ['-R', request, image], { env: sbinPath, maxBuffer: 16 << 20 });
  return stdout;
}

/** What debugfs says about one path in the image (symlinks not followed). */
async function inodeOf(image: string, path: string): Promise<Inode> {
  const out = await debugfs(image, `stat "${path}"`);
  const field = (pattern: RegExp) => {
    const match = pattern.exec(out);
    if (!match) throw new Error(`debugfs stat ${path}: no ${pattern} in ${JSON.stringify(out.slice(0, 300))}`);
    return match[1]!;
  };
  const inode: Inode = {
    inode: Number(field(/Inode: (\d+)/)),
    type: field(/Type: (\S+)/),
    mode: parseInt(field(/Mode: +(\d+)/), 8),
    uid: Number(field(/User: +(\d+)/)),
    gid: Number(field(/Group: +(\d+)/)),
    links: Number(field(/Links: (\d+)/)),
  };
  const fast = /Fast link dest: "(.*)"/.exec(out);
  if (fast) inode.target = fast[1];
  return inode;
}

/** A small root: a file owned by 1000:1000, a setuid file, a symlink, a hard link, a sticky world-writable directory. */
async function sampleRoot(): Promise<string> {
  const root = await mkdtemp(join(work, 'src-'));
  await chmod(root, 0o755);
  await mkdir(join(root, 'etc'));
  await mkdir(join(root, 'bin'));
  await mkdir(join(root, 'home/user'), { recursive: true });
  await writeFile(join(root, 'etc/hello'), 'hello from the rootfs\n');
  await writeFile(join(root, 'home/user/notes'), 'mine\n');
  await chown(join(root, 'home/user/notes'), 1000, 1000);
  await chown(join(root, 'home/user'), 1000, 1000);
  await writeFile(join(root, 'bin/su'), '#!/bin/sh\n');
  await chmod(join(root, 'bin/su'), 0o4755);
  await symlink('/etc/hello', join(root, 'etc/link'));
  await link(join(root, 'etc/hello'), join(root, 'etc/hard'));
  await mkdir(join(root, 'tmp'));
  await chmod(join(root, 'tmp'), 0o1777);
  return root;
}

async function checkSample(t: import('ava').ExecutionContext, image: string): Promise<void> {
  t.is(await debugfs(image, 'cat /etc/hello'), 'hello from the rootfs\n');
  t.is(await debugfs(image, 'cat /home/user/notes'), 'mine\n');
  t.like(await inodeOf(image, '/'), { type: 'directory', mode: 0o755, uid: 0, gid: 0 });
  t.like(await inodeOf(image, '/home/user/notes'), { type: 'regular', mode: 0o644, uid: 1000, gid: 1000 });
  t.like(await inodeOf(image, '/home/user'), { type: 'directory', uid: 1000, gid: 1000 });
  t.like(await inodeOf(image, '/bin/su'), { type: 'regular', mode: 0o4755, uid: 0, gid: 0 });
  t.like(await inodeOf(image, '/etc/link'), { type: 'symlink', target: '/etc/hello' });
  t.like(await inodeOf(image, '/tmp'), { type: 'directory', mode: 0o1777 });
  const hello = await inodeOf(image, '/etc/hello');
  const hard = await inodeOf(image, '/etc/hard');
  t.is(hard.inode, hello.inode, 'a hard link stays one inode');
  t.is(hello.links, 2);
}

async function tarFrom(root: string, name: string, gzip: boolean): Promise<string> {
  const archive = join(work, name);
  await run('tar', ['--numeric-owner', '-C', root, gzip ? '-czf' : '-cf', archive, '.']);
  return archive;
}

rootTest('a directory becomes an ext4 image with owners, modes, symlinks and hard links intact', async (t) => {
  const root = await sampleRoot();
  const image = join(work, 'from-dir.ext4');
  await buildRootfsDisk(root, image);
  await checkSample(t, image);
  const features = (await run('dumpe2fs', ['-h', image], { env: sbinPath })).stdout;
  t.notRegex(features, /has_journal/);
  t.regex(features, /Reserved block count: +0\n/);
  const { size, blocks } = await stat(image);
  t.true(blocks * 512 < size, `sparse: ${blocks * 512} bytes used of ${size}`);
  t.false(await access(`${image}.tmp`).then(() => true, () => false), 'no temporary file is left');
});

rootTest('a tar and a tar.gz of the same root give the same content (chosen by content, not name)', async (t) => {
  const root = await sampleRoot();
  for (const [name, gzip] of [['plain.data', false], ['compressed.tar', true]] as const) {
    const image = join(work, `${name}.ext4`);
    await buildRootfsDisk(await tarFrom(root, name, gzip), image);
    await checkSample(t, image);
    t.deepEqual((await readdir(work)).filter((entry) => entry.includes('.rootfs-')), [], 'the extraction directory is removed');
  }
});

rootTest('a tar entry climbing out with .. is refused, and nothing is written outside', async (t) => {
  const sandbox = await mkdtemp(join(work, 'escape-'));
  const out = join(sandbox, 'out');
  await mkdir(out);
  const archive = join(sandbox, 'escape.tar');
  await writeFile(archive, tarOf([{ path: 'etc/', type: 'dir' }, { path: '../escape', content: 'out!' }, { path: 'etc/ok', content: 'ok' }]));
  const error = await t.throwsAsync(buildRootfsDisk(archive, join(out, 'disk.ext4')), { instanceOf: RootfsError });
  t.regex(error!.message, /escapes the root filesystem/);
  t.notRegex(error!.message, /\n/);
  t.deepEqual(await readdir(out), [], 'no escape, no disk, no extraction directory');
  t.deepEqual((await readdir(sandbox)).sort(), ['escape.tar', 'out']);
});

rootTest('absolute paths and symlinks pointing out land inside the image; their targets are kept as written', async (t) => {
  const sandbox = await mkdtemp(join(work, 'absolute-'));
  const out = join(sandbox, 'out');
  await mkdir(out);
  const archive = join(sandbox, 'absolute.tar');
  const marker = `vmctr-rootfs-disk-test-${process.pid}`;
  await writeFile(archive, tarOf([
    { path: `/${marker}`, content: 'absolute' },
    { path: 'up', type: 'symlink', linkpath: '../../..' },
    { path: `up/${marker}-through-link`, content: 'through a link' },
    { path: 'root-link', type: 'symlink', linkpath: '/' },
    { path: `root-link/${marker}-through-root`, content: 'through /' },
  ]));
  const image = join(out, 'disk.ext4');
  await buildRootfsDisk(archive, image);
  t.is(await debugfs(image, `cat /${marker}`), 'absolute');
  t.is(await debugfs(image, `cat /${marker}-through-link`), 'through a link');
  t.is(await debugfs(image, `cat /${marker}-through-root`), 'through /');
  t.like(await inodeOf(image, '/up'), { type: 'symlink', target: '../../..' });
  t.like(await inodeOf(image, '/root-link'), { type: 'symlink', target: '/' });
  for (const dir of ['/', tmpdir(), work, sandbox]) {
    t.false((await readdir(dir)).some((name) => name.startsWith(marker)), `nothing written in ${dir}`);
  }
  t.deepEqual(await readdir(out), ['disk.ext4']);
});

test('a missing source, a file that is no tar, a corrupt gzip and a truncated tar are one-line RootfsErrors', async (t) => {
  const sandbox = await mkdtemp(join(work, 'bad-'));
  const image = join(sandbox, 'disk.ext4');
  const expectError = async (source: string, message: RegExp) => {
    const error = await t.throwsAsync(buildRootfsDisk(source, image), { instanceOf: RootfsError, message });
    t.notRegex(error!.message, /\n/);
    t.deepEqual((await readdir(sandbox)).filter((name) => name.startsWith('disk') || name.startsWith('.disk')), [], `nothing left after: ${error!.message}`);
    t.log(error!.message);
  };
  await expectError(join(sandbox, 'nothing-here'), /does not exist/);

  const text = join(sandbox, 'notes.tar');
  await writeFile(text, 'just some text, not an archive\n'.repeat(40));
  await expectError(text, /neither a directory nor a tar archive/);

  const corrupt = join(sandbox, 'corrupt.tar.gz');
  await writeFile(corrupt, Buffer.concat([Buffer.from([0x1f, 0x8b, 0x08, 0x00]), Buffer.alloc(64, 0xa5)]));
  if (isRoot) await expectError(corrupt, /corrupt\.tar\.gz/);

  const truncated = join(sandbox, 'truncated.tar');
  await writeFile(truncated, tarOf([{ path: 'etc/', type: 'dir' }, { path: 'etc/big', content: Buffer.alloc(20000, 0x61) }]));
  await truncate(truncated, 512 * 2 + 8000);
  if (isRoot) await expectError(truncated, /truncated\.tar/);
});

test('mke2fs failing is a RootfsError with its first line of stderr', async (t) => {
  const root = await mkdtemp(join(work, 'src-'));
  const error = await t.throwsAsync(buildRootfsDisk(root, join(work, 'no-such-dir', 'disk.ext4')), { instanceOf: RootfsError, message: /^mke2fs failed .*: \S/ });
  t.notRegex(error!.message, /\n/);
  t.log(error!.message);
});

test('setup/build-default-image.sh: a busybox image with the vmctr user, cached', async (t) => {
  let path = await run(SCRIPT, ['--path']).then(({ stdout }) => stdout.trim(), () => undefined);
  if (path === undefined) {
    const started = performance.now();
    await run(SCRIPT, [], { maxBuffer: 1 << 20 });
    t.log(`default image built in ${((performance.now() - started) / 1000).toFixed(1)} s`);
    path = (await run(SCRIPT, ['--path'])).stdout.trim();
  }
  t.regex(path, /\/default-image\/[0-9a-f]{16}\/rootfs\.ext4$/);
  t.true((await stat(path)).isFile());
  const again = await run(SCRIPT);
  t.is(again.stdout.trim(), path);
  t.is(again.stderr, '', 'a cache hit builds nothing');
  await t.throwsAsync(run(SCRIPT, ['--path'], { env: { ...process.env, VMCTR_CACHE: '/nonexistent-vmctr-cache' } }), {
    message: /default image not built: run setup\/build-default-image\.sh/,
  });

  t.like(await inodeOf(path, '/bin/busybox'), { type: 'regular', mode: 0o755, uid: 0, gid: 0 });
  t.like(await inodeOf(path, '/bin/sh'), { type: 'symlink', target: 'busybox', uid: 0, gid: 0 });
  t.like(await inodeOf(path, '/usr/bin/env'), { type: 'symlink', target: '../../bin/busybox' });
  const passwd = await debugfs(path, 'cat /etc/passwd');
  t.regex(passwd, /^root:x:0:0:root:\/root:\/bin\/sh$/m);
  t.regex(passwd, /^vmctr:x:1000:1000:[^:]*:\/home\/vmctr:\/bin\/sh$/m);
  t.regex(passwd, /^nobody:x:65534:65534:/m);
  const group = await debugfs(path, 'cat /etc/group');
  t.regex(group, /^vmctr:x:1000:$/m);
  t.regex(group, /^users:x:100:vmctr$/m);
  t.regex(await debugfs(path, 'cat /etc/os-release'), /vmctr default image/);
  t.like(await inodeOf(path, '/home/vmctr'), { type: 'directory', uid: 1000, gid: 1000 });
  t.like(await inodeOf(path, '/root'), { mode: 0o700, uid: 0 });
  t.like(await inodeOf(path, '/tmp'), { mode: 0o1777, uid: 0 });
  for (const dir of ['/proc', '/sys', '/dev', '/run', '/mnt', '/sbin', '/usr/sbin']) t.like(await inodeOf(path, dir), { type: 'directory', uid: 0 });
});

(loopUsable ? test : test.skip)('the default image runs busybox as a root filesystem (loop mount, chroot)', async (t) => {
  const path = (await run(SCRIPT)).stdout.trim();
  const script = 'set -e; m=$(mktemp -d); mount -o ro,loop "$1" "$m"; trap \'umount "$m"; rmdir "$m"\' EXIT; ' +
    'env -i PATH=/bin:/usr/bin:/sbin:/usr/sbin /usr/sbin/chroot "$m" /bin/sh -c \'id vmctr; stat -c "%a %u:%g" /tmp /home/vmctr; echo "$(ls /bin | wc -l) in /bin"\'';
  const { stdout } = await run('unshare', ['-m', '--propagation', 'private', 'sh', '-c', script, 'sh', path]);
  t.log(stdout.trim());
  t.regex(stdout, /^uid=1000\(vmctr\) gid=1000\(vmctr\) groups=1000\(vmctr\),100\(users\)$/m);
  t.regex(stdout, /^1777 0:0\n755 1000:1000$/m);
});
