import test from 'ava';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { busyboxEntries, layerOf, OciLayout, push, type Descriptor } from './image-builder.js';
import { startRegistry, type Registry } from './registry-server.js';
import { spawn } from 'node:child_process';
import { vmctr, VMCTR } from './vmctr-process.js';

let work: string;
let registry: Registry;
let image: Descriptor & { config: Descriptor };
let layerDigests: string[];

test.before(async () => {
  work = await mkdtemp(join(tmpdir(), 'vmctr-concurrent-'));
  registry = await startRegistry(work);
  const layout = new OciLayout(join(work, 'layout'));
  // Incompressible layers large enough for the pulls to overlap.
  const layers = [layerOf(await busyboxEntries())];
  for (let i = 0; i < 3; i++) layers.push(layerOf([{ path: `data/${i}.bin`, content: randomBytes(12 * 1024 * 1024) }], i === 1 ? 'zstd' : 'gzip'));
  image = await layout.image({ layers });
  layerDigests = layers.map((layer) => layer.digest);
  await layout.tag(image, 'big');
  await push(layout, 'big', `${registry.host}/test/big:1`);
});

test.after.always(async () => {
  await registry?.stop();
  await rm(work, { recursive: true, force: true });
});

test.serial('four concurrent pulls of one image leave one good copy, each blob fetched once', async (t) => {
  const root = await mkdtemp(join(work, 'root-'));
  const results = await Promise.all(Array.from({ length: 4 }, () =>
    vmctr(['pull', '--root', root, '--insecure-registry', registry.host, `${registry.host}/test/big:1`])));
  for (const result of results) t.is(result.code, 0, result.stderr);
  // The others waited for the first, or found its finished work.
  t.true(results.some((result) => /waiting for vmctr pid|already exists/.test(result.stderr)));

  const store = join(root, 'image');
  const images = JSON.parse(await readFile(join(store, 'images.json'), 'utf8')).images;
  t.is(images.length, 1);
  const expected = [image.digest, image.config.digest, ...layerDigests].map((digest) => digest.slice(7)).sort();
  t.deepEqual((await readdir(join(store, 'blobs', 'sha256'))).sort(), expected);
  for (const hex of expected) {
    const content = await readFile(join(store, 'blobs', 'sha256', hex));
    t.is(createHash('sha256').update(content).digest('hex'), hex);
  }
  for (const digest of [image.config.digest, ...layerDigests]) t.is(await registry.blobDownloads(digest), 1, digest);
  t.deepEqual(await readdir(join(store, 'snapshots')), [images[0].snapshot.slice(7)]);
  t.is((await readFile(join(store, 'snapshots', images[0].snapshot.slice(7), 'data', '2.bin'))).length, 12 * 1024 * 1024);
  t.deepEqual(await readdir(join(store, 'tmp')), []);
  t.deepEqual(await readdir(join(store, 'locks')), []);
  t.deepEqual(await readdir(join(store, 'pins')), []);
});

test.serial('a pull killed mid-unpack leaves no snapshot that looks complete; the next pull recovers', async (t) => {
  const root = await mkdtemp(join(work, 'root-'));
  const child = spawn(VMCTR, ['pull', '--root', root, '--insecure-registry', registry.host, `${registry.host}/test/big:1`], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  await new Promise<void>((resolve) => {
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
      if (/unpacking layer 3\/4/.test(stderr)) resolve();
    });
    child.on('exit', () => resolve());
  });
  child.kill('SIGKILL');
  await new Promise((resolve) => child.on('close', resolve));
  t.regex(stderr, /unpacking layer 3\/4/);

  const store = join(root, 'image');
  t.deepEqual(await readdir(join(store, 'snapshots')), []);
  t.false(await readFile(join(store, 'images.json')).then(() => true, () => false));
  t.true((await readdir(join(store, 'tmp'))).some((name) => name.endsWith('-snapshot')));
  t.true((await readdir(join(store, 'locks'))).length > 0);

  // The dead puller's locks are broken, its pin ignored; the pull completes.
  const again = await vmctr(['pull', '--root', root, '--insecure-registry', registry.host, `${registry.host}/test/big:1`]);
  t.is(again.code, 0, again.stderr);
  t.is((await readdir(join(store, 'snapshots'))).length, 1);
  const prune = await vmctr(['image', 'prune', '--root', root]);
  t.regex(prune.stdout, /^Deleted 0 blobs, 0 snapshots, 0 disks, 1 temporary files/);
  t.deepEqual(await readdir(join(store, 'tmp')), []);
});
