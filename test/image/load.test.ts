import test from 'ava';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { c as createTar } from 'tar';
import { openStore, resolveImage, containerSpec, readAccounts } from '../../image/index.js';
import { busyboxEntries, layerOf, OciLayout, sha256, tarOf } from './image-builder.js';
import { vmctr } from './vmctr-process.js';

let work: string;
let savedTar: string;
let configDigest: string;

/** Writes what `docker save` writes (the pre-25 layout: <id>/layer.tar, <config>.json, manifest.json). */
async function dockerSave(dir: string, layers: Buffer[], repoTags: string[], corruptLayer = false): Promise<{ file: string; config: string }> {
  await mkdir(dir, { recursive: true });
  const config = JSON.stringify({
    architecture: 'amd64', os: 'linux', created: '2023-03-04T05:06:07Z',
    config: { Entrypoint: ['/bin/sh'], User: 'www', Env: ['PATH=/bin', 'MODE=saved'], WorkingDir: '/tmp', ExposedPorts: { '80/tcp': {} } },
    rootfs: { type: 'layers', diff_ids: layers.map((layer) => sha256(layer)) },
  });
  const configName = `${sha256(config).slice(7)}.json`;
  await writeFile(join(dir, configName), config);
  const paths: string[] = [];
  for (const [i, layer] of layers.entries()) {
    const id = sha256(`layer-${i}`).slice(7);
    await mkdir(join(dir, id));
    const content = corruptLayer && i === layers.length - 1 ? Buffer.concat([layer.subarray(0, 600), Buffer.from('tampered'), layer.subarray(608)]) : layer;
    await writeFile(join(dir, id, 'layer.tar'), content);
    paths.push(`${id}/layer.tar`);
  }
  await writeFile(join(dir, 'manifest.json'), JSON.stringify([{ Config: configName, RepoTags: repoTags, Layers: paths }]));
  const file = `${dir}.tar`;
  await createTar({ file, cwd: dir, portable: true }, await readdir(dir));
  return { file, config: sha256(config) };
}

test.before(async () => {
  work = await mkdtemp(join(tmpdir(), 'vmctr-load-'));
  ({ file: savedTar, config: configDigest } = await dockerSave(join(work, 'saved'), [tarOf(await busyboxEntries()), tarOf([{ path: 'etc/motd', content: 'saved by docker\n' }])], ['test/saved:1', 'registry.example:5000/team/saved:v2']));
});

test.after.always(async () => {
  await rm(work, { recursive: true, force: true });
});

test('loads a docker-save tar with its names; the image resolves and its config applies', async (t) => {
  const root = await mkdtemp(join(work, 'root-'));
  const result = await vmctr(['load', '--root', root, '-i', savedTar]);
  t.is(result.code, 0, result.stderr);
  t.is(result.stdout, 'Loaded image: docker.io/test/saved:1\nLoaded image: registry.example:5000/team/saved:v2\n');

  const list = await vmctr(['images', '--root', root]);
  t.regex(list.stdout, new RegExp(`\\ntest/saved\\s+1\\s+sha256:[a-f0-9]{12}\\s+${configDigest.slice(7, 19)}\\s`));
  t.regex(list.stdout, /registry\.example:5000\/team\/saved\s+v2\s/);

  const store = await openStore(root);
  const image = await resolveImage(store, 'test/saved:1');
  t.is(image.configDigest as string, configDigest);
  t.is(await readFile(join(image.rootfsDir, 'etc/motd'), 'utf8'), 'saved by docker\n');
  const spec = containerSpec(image.config, { command: ['-c', 'id'] }, await readAccounts(image.rootfsDir));
  t.deepEqual(spec.args, ['/bin/sh', '-c', 'id']);
  t.deepEqual(spec.user, { uid: 33, gid: 33, additionalGids: [50] });
  t.deepEqual(spec.env, ['PATH=/bin', 'MODE=saved', 'HOME=/var/www']);
  t.is(spec.cwd, '/tmp');
  t.deepEqual(spec.exposedPorts, [{ port: 80, protocol: 'tcp' }]);
  // Resolving by id prefix finds the same snapshot, without unpacking again.
  const byId = await resolveImage(store, configDigest.slice(7, 19));
  t.is(byId.rootfsDir, image.rootfsDir);
  await image.release();
  await byId.release();
});

test('loads from standard input', async (t) => {
  const root = await mkdtemp(join(work, 'root-'));
  const result = await vmctr(['load', '--root', root], {}, await readFile(savedTar));
  t.is(result.code, 0, result.stderr);
  t.regex(result.stdout, /^Loaded image: docker\.io\/test\/saved:1\n/);
});

test('loads an OCI layout, as a directory (named with --tag) and as a tar (unnamed)', async (t) => {
  const layout = new OciLayout(join(work, 'layout'));
  const image = await layout.image({ layers: [layerOf(await busyboxEntries(), 'zstd'), layerOf([{ path: 'oci', content: 'layout\n' }], 'none')] });
  await layout.tag(image, 'latest');

  const root = await mkdtemp(join(work, 'root-'));
  const named = await vmctr(['load', '--root', root, '-i', layout.dir, '--tag', 'local/app:7']);
  t.is(named.code, 0, named.stderr);
  t.is(named.stdout, 'Loaded image: docker.io/local/app:7\n');
  const [record] = JSON.parse(await readFile(join(root, 'image', 'images.json'), 'utf8')).images;
  t.like(record, { repository: 'docker.io/local/app', tag: '7', manifest: image.digest, config: image.config.digest });
  t.is(await readFile(join(root, 'image', 'snapshots', record.snapshot.slice(7), 'oci'), 'utf8'), 'layout\n');

  const tarFile = join(work, 'layout.tar');
  await createTar({ file: tarFile, cwd: layout.dir, gzip: true }, ['oci-layout', 'index.json', 'blobs']);
  const root2 = await mkdtemp(join(work, 'root-'));
  const unnamed = await vmctr(['load', '--root', root2, '-i', tarFile]);
  t.is(unnamed.code, 0, unnamed.stderr);
  t.is(unnamed.stdout, `Loaded image ID: ${image.config.digest}\n`);
});

test('a tampered archive is refused with one line and leaves the store empty', async (t) => {
  const { file: tampered } = await dockerSave(join(work, 'tampered'), [tarOf(await busyboxEntries()), tarOf([{ path: 'etc/motd', content: 'x'.repeat(2000) }])], ['test/tampered:1'], true);
  const root = await mkdtemp(join(work, 'root-'));
  const result = await vmctr(['load', '--root', root, '-i', tampered]);
  t.is(result.code, 1);
  t.regex(result.stderr, /^vmctr: layer 2 \(sha256:[a-f0-9]{64}\) of docker\.io\/test\/tampered failed verification: uncompressed digest is sha256:[a-f0-9]{64}, the image config says sha256:[a-f0-9]{64}$/m);
  t.is(result.stderr.split('\n').filter((line) => line.startsWith('vmctr:')).length, 1);
  t.deepEqual(await readdir(join(root, 'image', 'blobs', 'sha256')), []);
  t.deepEqual(await readdir(join(root, 'image', 'snapshots')), []);
  t.deepEqual(await readdir(join(root, 'image', 'tmp')), []);
  t.false(await stat(join(root, 'image', 'images.json')).then(() => true, () => false));
});

test('input that is no image archive is one line', async (t) => {
  const root = await mkdtemp(join(work, 'root-'));
  const junk = join(work, 'junk.txt');
  await writeFile(junk, 'hello');
  const notTar = await vmctr(['load', '--root', root, '-i', junk]);
  t.is(notTar.code, 1);
  t.regex(notTar.stderr, /^vmctr: .*junk\.txt is not a valid tar archive: [^\n]+\n$/);
  const emptyTar = join(work, 'empty.tar');
  await writeFile(emptyTar, tarOf([{ path: 'readme', content: 'no image here' }]));
  const noImage = await vmctr(['load', '--root', root, '-i', emptyTar]);
  t.is(noImage.code, 1);
  t.regex(noImage.stderr, /^vmctr: not a docker-save archive \(no manifest\.json\) nor an OCI image layout \(no oci-layout\)\n$/);
  const missing = await vmctr(['load', '--root', root, '-i', join(work, 'nope.tar')]);
  t.regex(missing.stderr, /^vmctr: cannot load .*nope\.tar: no such file or directory\n$/);
});
