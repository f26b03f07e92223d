import test from 'ava';
import { lstat, mkdir, mkdtemp, readdir, readFile, readlink, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { applyLayer, DirectoryMetadataLog } from '../../image/layer-apply.js';
import type { Digest } from '../../image/digest.js';
import { gzipSync } from 'node:zlib';
import { layerOf, sha256, type Compression, type TarEntry } from './image-builder.js';

let work: string;

test.before(async () => {
  work = await mkdtemp(join(tmpdir(), 'vmctr-layers-'));
});

test.after.always(async () => {
  await rm(work, { recursive: true, force: true });
});

/** Applies layers in order into a fresh rootfs inside its own sandbox directory. */
async function unpack(layers: (readonly TarEntry[])[], compression: Compression = 'gzip') {
  const sandbox = await mkdtemp(join(work, 'case-'));
  const rootfs = join(sandbox, 'rootfs');
  await mkdir(rootfs);
  const warnings: string[] = [];
  const directories = new DirectoryMetadataLog();
  for (const [i, entries] of layers.entries()) {
    const layer = layerOf(entries, compression);
    const blob = join(sandbox, `layer-${i}`);
    await writeFile(blob, layer.blob);
    await applyLayer(blob, rootfs, { what: `layer ${i}`, diffId: layer.diffId as Digest, directories, warn: (message) => warnings.push(message) });
  }
  await directories.apply();
  return { sandbox, rootfs, warnings };
}

const exists = (path: string) => lstat(path).then(() => true, () => false);

test('whiteouts remove lower files and directories; opaque directories hide lower content only', async (t) => {
  const { rootfs } = await unpack([
    [
      { path: 'a/file1', content: '1' },
      { path: 'a/file2', content: '2' },
      { path: 'b/dir/x', content: 'x' },
      { path: 'c/keep', content: 'lower' },
      { path: 'c/sub/deep', content: 'lower' },
      { path: 'd/old', content: 'lower' },
    ],
    [
      { path: 'a/.wh.file1' },
      { path: '.wh.b' },
      { path: 'c/.wh..wh..opq' },
      { path: 'c/new', content: 'upper' },
      // Same layer, sibling written before the opaque marker: it must survive.
      { path: 'd/new', content: 'upper' },
      { path: 'd/.wh..wh..opq' },
    ],
  ]);
  t.false(await exists(join(rootfs, 'a/file1')));
  t.is(await readFile(join(rootfs, 'a/file2'), 'utf8'), '2');
  t.false(await exists(join(rootfs, 'b')));
  t.deepEqual((await readdir(join(rootfs, 'c'))).sort(), ['new']);
  t.deepEqual((await readdir(join(rootfs, 'd'))).sort(), ['new']);
  t.false(await exists(join(rootfs, 'a/.wh.file1')));
});

test('entries that climb out with .. are refused', async (t) => {
  const error = await t.throwsAsync(unpack([[{ path: 'ok', content: 'fine' }, { path: '../escape.txt', content: 'pwned' }]]));
  t.regex(error!.message, /^layer 0: path "\.\.\/escape\.txt" escapes the root filesystem$/);
  t.false(await exists(join(work, 'escape.txt')));
  const nested = await t.throwsAsync(unpack([[{ path: 'a/../../escape2.txt', content: 'pwned' }]]));
  t.regex(nested!.message, /escapes the root filesystem/);
});

test('writes through symlinks stay inside the root, whatever the link says', async (t) => {
  const outside = join(work, 'outside');
  await mkdir(outside, { recursive: true });
  const { rootfs } = await unpack([
    [
      { path: 'abs', type: 'symlink', linkpath: outside },
      { path: 'up', type: 'symlink', linkpath: '../../../../../../..' },
      { path: 'etc/', type: 'dir' },
    ],
    [
      { path: 'abs/pwned', content: 'absolute' },
      { path: 'up/pwned2', content: 'relative' },
      { path: 'up/etc/hostname', content: 'inside' },
    ],
  ]);
  t.deepEqual(await readdir(outside), []);
  t.false(await exists(join(work, 'pwned2')));
  t.is(await readFile(join(rootfs, outside, 'pwned'), 'utf8'), 'absolute');
  t.is(await readFile(join(rootfs, 'pwned2'), 'utf8'), 'relative');
  t.is(await readFile(join(rootfs, 'etc/hostname'), 'utf8'), 'inside');
  // The links themselves are kept as written, for the container to resolve.
  t.is(await readlink(join(rootfs, 'abs')), outside);
});

test('hard links may not reach outside the root, directly or through a symlink', async (t) => {
  const direct = await t.throwsAsync(unpack([[{ path: 'stolen', type: 'link', linkpath: '../../../../etc/passwd' }]]));
  t.regex(direct!.message, /escapes the root filesystem/);
  const viaLink = await t.throwsAsync(unpack([[{ path: 'etcl', type: 'symlink', linkpath: '/etc' }, { path: 'stolen', type: 'link', linkpath: 'etcl/passwd' }]]));
  t.regex(viaLink!.message, /points to "etcl\/passwd", which is not a file in the image/);
});

test('hard links, symlinks, modes, ownership and times', async (t) => {
  const mtime = new Date('2020-05-06T07:08:09Z');
  const { rootfs } = await unpack([
    [
      { path: 'bin/tool', content: 'binary', mode: 0o4755, uid: 1234, gid: 5678, mtime },
      { path: 'bin/alias', type: 'link', linkpath: 'bin/tool' },
      { path: 'bin/soft', type: 'symlink', linkpath: 'tool' },
      { path: 'secret/', type: 'dir', mode: 0o700, uid: 42, gid: 43, mtime },
      { path: 'secret/file', content: 's', mode: 0o600 },
      { path: 'ro/', type: 'dir', mode: 0o555 },
    ],
    // A read-only directory from a lower layer still takes new files.
    [{ path: 'ro/added', content: 'later' }],
  ]);
  const tool = await stat(join(rootfs, 'bin/tool'));
  t.is(tool.mode & 0o7777, 0o4755);
  t.is(tool.mtime.getTime(), mtime.getTime());
  if (process.getuid?.() === 0) {
    t.is(tool.uid, 1234);
    t.is(tool.gid, 5678);
    t.is((await stat(join(rootfs, 'secret'))).uid, 42);
  }
  t.is((await stat(join(rootfs, 'bin/alias'))).ino, tool.ino);
  t.is(await readlink(join(rootfs, 'bin/soft')), 'tool');
  const secret = await stat(join(rootfs, 'secret'));
  t.is(secret.mode & 0o7777, 0o700);
  t.is(secret.mtime.getTime(), mtime.getTime());
  t.is((await stat(join(rootfs, 'ro'))).mode & 0o7777, 0o555);
  t.is(await readFile(join(rootfs, 'ro/added'), 'utf8'), 'later');
});

test('replacing a hard-linked file leaves its lower-layer twin alone; types replace each other', async (t) => {
  const { rootfs } = await unpack([
    [
      { path: 'one', content: 'original' },
      { path: 'two', type: 'link', linkpath: 'one' },
      { path: 'was-dir/child', content: 'c' },
      { path: 'was-file', content: 'f' },
    ],
    [
      { path: 'two', content: 'replaced' },
      { path: 'was-dir', content: 'now a file' },
      { path: 'was-file/', type: 'dir' },
      { path: 'was-file/inner', content: 'i' },
    ],
  ]);
  t.is(await readFile(join(rootfs, 'one'), 'utf8'), 'original');
  t.is(await readFile(join(rootfs, 'two'), 'utf8'), 'replaced');
  t.is(await readFile(join(rootfs, 'was-dir'), 'utf8'), 'now a file');
  t.is(await readFile(join(rootfs, 'was-file/inner'), 'utf8'), 'i');
});

test('device nodes and fifos are skipped with a warning', async (t) => {
  const { rootfs, warnings } = await unpack([[
    { path: 'dev/', type: 'dir' },
    { path: 'dev/null', type: 'char' },
    { path: 'dev/pipe', type: 'fifo' },
    { path: 'after', content: 'still applied' },
  ]]);
  t.false(await exists(join(rootfs, 'dev/null')));
  t.false(await exists(join(rootfs, 'dev/pipe')));
  t.deepEqual(warnings, ['layer 0: skipped device node /dev/null', 'layer 0: skipped fifo /dev/pipe']);
  t.is(await readFile(join(rootfs, 'after'), 'utf8'), 'still applied');
});

for (const compression of ['zstd', 'none'] as const) {
  test(`${compression} layers unpack`, async (t) => {
    const { rootfs } = await unpack([[{ path: 'hello', content: `via ${compression}` }]], compression);
    t.is(await readFile(join(rootfs, 'hello'), 'utf8'), `via ${compression}`);
  });
}

test('a layer whose content does not match its diff_id is refused', async (t) => {
  const sandbox = await mkdtemp(join(work, 'diffid-'));
  const layer = layerOf([{ path: 'x', content: 'x' }]);
  await writeFile(join(sandbox, 'blob'), layer.blob);
  await mkdir(join(sandbox, 'rootfs'));
  const wrong = `sha256:${'0'.repeat(64)}` as Digest;
  const error = await t.throwsAsync(applyLayer(join(sandbox, 'blob'), join(sandbox, 'rootfs'), { what: 'layer', diffId: wrong, directories: new DirectoryMetadataLog(), warn: () => undefined }));
  t.regex(error!.message, /^layer failed verification: uncompressed digest is sha256:[a-f0-9]{64}, the image config says sha256:0{64}$/);
});

test('damaged archives fail with one line', async (t) => {
  const sandbox = await mkdtemp(join(work, 'damaged-'));
  await mkdir(join(sandbox, 'rootfs'));
  const layer = layerOf([{ path: 'x', content: 'y'.repeat(100_000) }]);
  const options = { what: 'layer', directories: new DirectoryMetadataLog(), warn: () => undefined };
  await writeFile(join(sandbox, 'gz'), layer.blob.subarray(0, layer.blob.length - 20));
  const gz = await t.throwsAsync(applyLayer(join(sandbox, 'gz'), join(sandbox, 'rootfs'), options));
  t.regex(gz!.message, /^layer: cannot decompress: [^\n]+$/);
  await writeFile(join(sandbox, 'junk'), Buffer.from('this is not a tar archive at all'.repeat(40)));
  const junk = await t.throwsAsync(applyLayer(join(sandbox, 'junk'), join(sandbox, 'rootfs'), options));
  t.regex(junk!.message, /^layer is not a valid tar archive: [^\n]+$/);
});

test('empty layers (a bare end-of-archive marker, as builders write them) apply as nothing', async (t) => {
  const sandbox = await mkdtemp(join(work, 'empty-'));
  await mkdir(join(sandbox, 'rootfs'));
  for (const [name, blob] of [['zeros', Buffer.alloc(1024)], ['gzip', gzipSync(Buffer.alloc(1024))], ['nothing', Buffer.alloc(0)]] as const) {
    await writeFile(join(sandbox, name), blob);
    await applyLayer(join(sandbox, name), join(sandbox, 'rootfs'), { what: name, diffId: sha256(name === 'nothing' ? '' : Buffer.alloc(1024)) as Digest, directories: new DirectoryMetadataLog(), warn: () => undefined });
  }
  t.deepEqual(await readdir(join(sandbox, 'rootfs')), []);
});
