import test from 'ava';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openStore, resolveImage } from '../../image/index.js';
import { Pin } from '../../image/pin.js';
import { holderTag } from '../../image/holder.js';
import type { Digest } from '../../image/digest.js';
import { busyboxEntries, layerOf, OciLayout, sha256, type Descriptor } from './image-builder.js';
import { vmctr } from './vmctr-process.js';

let work: string;
let layoutA: OciLayout;
let layoutB: OciLayout;
let imageA: Descriptor & { config: Descriptor };
let imageB: Descriptor & { config: Descriptor };

test.before(async () => {
  work = await mkdtemp(join(tmpdir(), 'vmctr-gc-'));
  const base = layerOf(await busyboxEntries());
  layoutA = new OciLayout(join(work, 'a'));
  imageA = await layoutA.image({ layers: [base, layerOf([{ path: 'which', content: 'a' }])] });
  await layoutA.tag(imageA, 'latest');
  layoutB = new OciLayout(join(work, 'b'));
  imageB = await layoutB.image({ layers: [base, layerOf([{ path: 'which', content: 'b' }])] });
  await layoutB.tag(imageB, 'latest');
});

test.after.always(async () => {
  await rm(work, { recursive: true, force: true });
});

async function rootWithBoth(): Promise<string> {
  const root = await mkdtemp(join(work, 'root-'));
  for (const [layout, name] of [[layoutA, 'test/a:1'], [layoutB, 'test/b:1']] as const) {
    const result = await vmctr(['load', '--root', root, '-q', '-i', layout.dir, '--tag', name]);
    if (result.code !== 0) throw new Error(result.stderr);
  }
  return root;
}

const listing = async (root: string, sub: string) => (await readdir(join(root, 'image', sub))).sort();

test('rmi removes the name and what only that image used', async (t) => {
  const root = await rootWithBoth();
  t.is((await listing(root, 'blobs/sha256')).length, 7); // 2 manifests, 2 configs, 3 layers
  t.is((await listing(root, 'snapshots')).length, 2);
  // The disks `vmctr run` built for both images (their content does not matter here).
  const store = await openStore(root);
  for (const image of [imageA, imageB]) await writeFile(store.diskPath(image.config.digest as Digest), 'ext4');

  const missing = await vmctr(['rmi', '--root', root, 'test/a:1', 'test/nope:1']);
  t.is(missing.code, 1);
  t.is(missing.stderr, 'vmctr: image "test/nope:1" is not in the store\n');
  t.is((await listing(root, 'blobs/sha256')).length, 7);

  const a = await vmctr(['rmi', '--root', root, 'test/a:1']);
  t.is(a.code, 0, a.stderr);
  t.regex(a.stdout, /^Untagged: docker\.io\/test\/a:1\nDeleted: 3 blobs, 1 snapshots, 1 disks \(/);
  t.is((await listing(root, 'blobs/sha256')).length, 4);
  t.is((await listing(root, 'snapshots')).length, 1);
  t.deepEqual(await listing(root, 'disks'), [`${imageB.config.digest.slice(7)}.ext4`]);
  const images = await vmctr(['images', '--root', root]);
  t.notRegex(images.stdout, /test\/a/);
  t.regex(images.stdout, /test\/b\s+1/);

  const b = await vmctr(['rmi', '--root', root, imageB.config.digest.slice(7, 15)]);
  t.is(b.code, 0, b.stderr);
  t.deepEqual(await listing(root, 'blobs/sha256'), []);
  t.deepEqual(await listing(root, 'snapshots'), []);
  t.deepEqual(await listing(root, 'disks'), []);
});

test('prune removes unreferenced content and dead processes\' leftovers, and keeps what live pins hold', async (t) => {
  const root = await rootWithBoth();
  const store = await openStore(root);
  const dead = `999999-1`;
  const strayBlob = join(store.blobsDir, sha256('stray').slice(7));
  await writeFile(strayBlob, 'stray');
  const pinnedDigest = sha256('pinned') as Digest;
  await writeFile(store.blobPath(pinnedDigest), 'pinned');
  const pin = new Pin(store);
  await pin.add([pinnedDigest]);
  await mkdir(join(store.snapshotsDir, 'f'.repeat(64)));
  await writeFile(join(store.tmpDir, `${dead}-abc`), 'partial download');
  await mkdir(join(store.tmpDir, `${dead}-def-snapshot`));
  await writeFile(join(store.pinsDir, `${dead}-0.json`), JSON.stringify([sha256('stray')]));
  await writeFile(join(store.tmpDir, `${holderTag()}-live`), 'still being written');
  const keptDisk = store.diskPath(imageA.config.digest as Digest);
  await writeFile(keptDisk, 'ext4');
  await writeFile(store.diskPath(sha256('gone') as Digest), 'ext4');

  const result = await vmctr(['image', 'prune', '--root', root]);
  t.is(result.code, 0, result.stderr);
  t.regex(result.stdout, /^Deleted 1 blobs, 1 snapshots, 1 disks, 2 temporary files; reclaimed \S+\n$/);
  t.deepEqual(await listing(root, 'disks'), [`${imageA.config.digest.slice(7)}.ext4`]);
  t.is((await listing(root, 'blobs/sha256')).length, 8);
  t.is((await listing(root, 'snapshots')).length, 2);
  t.deepEqual(await listing(root, 'tmp'), [`${holderTag()}-live`]);
  t.is((await listing(root, 'pins')).length, 1);
  await pin.release();
  t.regex((await vmctr(['image', 'prune', '--root', root])).stdout, /^Deleted 1 blobs, 0 snapshots/);
});

test('an image resolved for a running container survives rmi until released', async (t) => {
  const root = await rootWithBoth();
  const store = await openStore(root);
  const running = await resolveImage(store, 'test/a:1');
  const rmi = await vmctr(['rmi', '--root', root, 'test/a:1']);
  t.is(rmi.code, 0, rmi.stderr);
  t.regex(rmi.stdout, /Deleted: 0 blobs, 0 snapshots/);
  t.deepEqual(await readdir(running.rootfsDir).then((names) => names.includes('which')), true);
  await running.release();
  t.regex((await vmctr(['image', 'prune', '--root', root])).stdout, /^Deleted 3 blobs, 1 snapshots/);
});
