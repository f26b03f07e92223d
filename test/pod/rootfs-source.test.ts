/**
 * --rootfs fs: each kind of source becomes a host directory for the pod's
 * volume backend, with nothing built: a directory as it is, a tar unpacked
 * beside the pod's disk path, the default image's disk copied out once
 * (owners kept) and then reused; --rootfs block still builds a disk.
 */
import test from 'ava';
import { chown, lstat, mkdir, mkdtemp, readdir, readFile, readlink, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { buildRootfsDisk } from '../../pod/rootfs-disk.js';
import { prepareRootfs, type RootfsMode, type RootfsOptions } from '../../pod/rootfs-source.js';
import { run } from '../image/image-builder.js';

const rootTest = process.getuid?.() === 0 ? test : test.skip;

let work: string;
let source: string;
test.before(async () => {
  work = await mkdtemp(join(tmpdir(), 'vmctr-rootfs-source-'));
  source = join(work, 'src');
  await mkdir(join(source, 'bin'), { recursive: true });
  await mkdir(join(source, 'home/app'), { recursive: true });
  await writeFile(join(source, 'bin/hello'), '#!/bin/sh\necho hi\n', { mode: 0o755 });
  await symlink('hello', join(source, 'bin/hi'));
  if (process.getuid?.() === 0) await chown(join(source, 'home/app'), 1000, 1000);
});
test.after.always(async () => {
  await rm(work, { recursive: true, force: true });
});

function options(mode: RootfsMode, name: string, more: Partial<RootfsOptions> = {}): RootfsOptions {
  return {
    mode,
    root: join(work, 'store'),
    defaultImage: () => join(work, 'default', 'rootfs.ext4'),
    podDisk: join(work, `${name}.ext4`),
    command: ['true'],
    overrides: {},
    progress: () => {},
    ...more,
  };
}

test('fs: a directory is served as it is, resolved to an absolute path; nothing is built', async (t) => {
  const cwd = process.cwd();
  process.chdir(work);
  try {
    const prepared = await prepareRootfs('src', options('fs', 'dir'));
    t.deepEqual(prepared.image, { directory: source });
  } finally {
    process.chdir(cwd);
  }
  t.false(await stat(join(work, 'dir.ext4')).then(() => true, () => false));
});

rootTest('fs: a tar is unpacked beside the pod\'s disk path, owners and links kept', async (t) => {
  const tar = join(work, 'rootfs.tar');
  await run('tar', ['-C', source, '-cf', tar, '.']);
  await mkdir(join(work, 'pod'));
  const prepared = await prepareRootfs(tar, options('fs', 'pod/rootfs-app'));
  t.true('directory' in prepared.image);
  const directory = (prepared.image as { directory: string }).directory;
  t.is(relative(join(work, 'pod'), directory).includes('/'), false, 'in the pod\'s directory');
  t.is(await readFile(join(directory, 'bin/hello'), 'utf8'), '#!/bin/sh\necho hi\n');
  t.is(await readlink(join(directory, 'bin/hi')), 'hello');
  t.is((await stat(join(directory, 'home/app'))).uid, 1000);
});

rootTest('fs: the default image\'s files are copied out of its disk once, beside it, and reused', async (t) => {
  await mkdir(join(work, 'default'));
  await buildRootfsDisk(source, join(work, 'default', 'rootfs.ext4'));
  const lines: string[] = [];
  const first = await prepareRootfs('default', options('fs', 'default-pod', { progress: (l) => lines.push(l) }));
  const directory = join(work, 'default', 'rootfs.ext4.d');
  t.deepEqual(first.image, { directory });
  t.is(await readFile(join(directory, 'bin/hello'), 'utf8'), '#!/bin/sh\necho hi\n');
  t.true((await lstat(join(directory, 'bin/hi'))).isSymbolicLink());
  t.is((await stat(join(directory, 'home/app'))).uid, 1000);
  t.false((await readdir(directory)).includes('lost+found'));
  t.is(lines.length, 1, 'says it copies, the first time');
  const again = await prepareRootfs('default', options('fs', 'default-pod', { progress: (l) => lines.push(l) }));
  t.deepEqual(again.image, { directory });
  t.is(lines.length, 1, 'the second time reuses the copy');
  t.deepEqual((await readdir(join(work, 'default'))).sort(), ['rootfs.ext4', 'rootfs.ext4.d'], 'no partial copy left');
});

test('block: a directory still becomes the pod\'s disk', async (t) => {
  const prepared = await prepareRootfs(source, options('block', 'block'));
  t.deepEqual(prepared.image, { disk: join(work, 'block.ext4') });
  t.true((await stat(join(work, 'block.ext4'))).isFile());
});
