import test from 'ava';
import { lstat, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { busyboxEntries, layerOf, OciLayout, push, type Descriptor } from './image-builder.js';
import { freePort, registryBlobPath, startRegistry, type Registry } from './registry-server.js';
import { vmctr } from './vmctr-process.js';

let work: string;
let registry: Registry;
let busybox: Descriptor & { config: Descriptor };
let amd64: Descriptor;
let arm64: Descriptor;
let corrupt: Descriptor & { config: Descriptor };
let corruptLayer: string;

test.before(async () => {
  work = await mkdtemp(join(tmpdir(), 'vmctr-pull-'));
  registry = await startRegistry(work);
  const layout = new OciLayout(join(work, 'layout'));
  const base = layerOf(await busyboxEntries(), 'gzip');
  const app = layerOf([{ path: 'app/', type: 'dir' }, { path: 'app/hello.txt', content: 'hello from a zstd layer\n' }], 'zstd');
  busybox = await layout.image({ layers: [base, app], config: { Entrypoint: ['/bin/sh'], Cmd: ['-c', 'echo hi'], User: 'www' } });
  await layout.tag(busybox, 'busybox');
  await push(layout, 'busybox', `${registry.host}/test/busybox:1`);

  amd64 = await layout.image({ layers: [base, layerOf([{ path: 'arch', content: 'amd64\n' }])], architecture: 'amd64' });
  arm64 = await layout.image({ layers: [base, layerOf([{ path: 'arch', content: 'arm64\n' }])], architecture: 'arm64', variant: 'v8' });
  await layout.tag(await layout.index([amd64, arm64]), 'multi');
  await push(layout, 'multi', `${registry.host}/test/multi:1`, { all: true });

  // The same images as Docker schema 2: a manifest list of two manifests.
  await push(layout, 'multi', `${registry.host}/test/docker-multi:1`, { all: true, docker: true });

  const bad = layerOf([{ path: 'payload', content: 'x'.repeat(5000) }, { path: 'more', content: 'y'.repeat(3000) }]);
  corrupt = await layout.image({ layers: [base, bad] });
  corruptLayer = bad.digest;
  await layout.tag(corrupt, 'corrupt');
  await push(layout, 'corrupt', `${registry.host}/test/corrupt:1`);
  // Play a hostile registry: same size, different bytes.
  const path = registryBlobPath(registry, bad.digest);
  const content = await readFile(path);
  content[content.length - 10] ^= 0xff;
  await writeFile(path, content);
});

test.after.always(async () => {
  await registry?.stop();
  await rm(work, { recursive: true, force: true });
});

async function freshRoot(): Promise<string> {
  return mkdtemp(join(work, 'root-'));
}

function pull(root: string, ref: string, ...flags: string[]) {
  return vmctr(['pull', '--root', root, '--insecure-registry', registry.host, ...flags, ref]);
}

async function storeListing(root: string): Promise<string[]> {
  const dir = join(root, 'image');
  const listing: string[] = [];
  for (const sub of ['blobs/sha256', 'snapshots', 'tmp']) {
    for (const name of await readdir(join(dir, sub)).catch(() => [])) listing.push(`${sub}/${name}`);
  }
  const images = await readFile(join(dir, 'images.json'), 'utf8').catch(() => '');
  return [...listing.sort(), images];
}

test('pulls by tag: verified blobs, an unpacked snapshot, a listed image', async (t) => {
  const root = await freshRoot();
  const result = await pull(root, `${registry.host}/test/busybox:1`);
  t.is(result.code, 0, result.stderr);
  t.regex(result.stdout, /pulled linux\/amd64 image sha256:[a-f0-9]{64}/);
  t.regex(result.stderr, /pull complete/);

  const images = JSON.parse(await readFile(join(root, 'image', 'images.json'), 'utf8')).images;
  t.is(images.length, 1);
  t.like(images[0], { repository: `${registry.host}/test/busybox`, tag: '1', digest: busybox.digest, manifest: busybox.digest, config: busybox.config.digest });

  const rootfs = join(root, 'image', 'snapshots', images[0].snapshot.slice(7));
  t.true(((await stat(join(rootfs, 'bin/busybox'))).mode & 0o111) !== 0);
  t.true((await lstat(join(rootfs, 'bin/sh'))).isSymbolicLink());
  t.is((await stat(join(rootfs, 'bin/ls'))).ino, (await stat(join(rootfs, 'bin/busybox'))).ino);
  t.is(await readFile(join(rootfs, 'app/hello.txt'), 'utf8'), 'hello from a zstd layer\n');
  t.is((await stat(join(rootfs, 'tmp'))).mode & 0o7777, 0o1777);
  t.deepEqual(await readdir(join(root, 'image', 'tmp')), []);

  const list = await vmctr(['images', '--root', root]);
  t.is(list.code, 0);
  t.regex(list.stdout, /^REPOSITORY\s+TAG\s+DIGEST\s+IMAGE ID\s+SIZE\s+CREATED/);
  t.regex(list.stdout, new RegExp(`${registry.host}/test/busybox\\s+1\\s+sha256:${busybox.digest.slice(7, 19)}\\s+${busybox.config.digest.slice(7, 19)}`));

  // Second pull: everything is already there, nothing is downloaded or unpacked again.
  const again = await pull(root, `${registry.host}/test/busybox:1`);
  t.is(again.code, 0, again.stderr);
  t.regex(again.stderr, /already exists/);
  t.notRegex(again.stderr, /downloading|unpacking/);
});

test('pulls by digest', async (t) => {
  const root = await freshRoot();
  const result = await pull(root, `${registry.host}/test/busybox@${busybox.digest}`);
  t.is(result.code, 0, result.stderr);
  const images = JSON.parse(await readFile(join(root, 'image', 'images.json'), 'utf8')).images;
  t.like(images[0], { tag: null, digest: busybox.digest, manifest: busybox.digest });
});

test('a pull by digest refuses content that does not match the digest', async (t) => {
  const root = await freshRoot();
  // The tag's manifest exists, but under another digest than the one asked for.
  const result = await pull(root, `${registry.host}/test/busybox@${amd64.digest}`);
  t.is(result.code, 1);
  t.regex(result.stderr, /^vmctr: .*not found/);
});

test('picks linux/amd64 from an index by default and the other with --platform', async (t) => {
  const rootA = await freshRoot();
  const a = await pull(rootA, `${registry.host}/test/multi:1`);
  t.is(a.code, 0, a.stderr);
  const [imageA] = JSON.parse(await readFile(join(rootA, 'image', 'images.json'), 'utf8')).images;
  t.is(imageA.manifest, amd64.digest);
  t.is(imageA.platform, 'linux/amd64');
  t.is(await readFile(join(rootA, 'image', 'snapshots', imageA.snapshot.slice(7), 'arch'), 'utf8'), 'amd64\n');

  const rootB = await freshRoot();
  const b = await pull(rootB, `${registry.host}/test/multi:1`, '--platform', 'linux/arm64');
  t.is(b.code, 0, b.stderr);
  const [imageB] = JSON.parse(await readFile(join(rootB, 'image', 'images.json'), 'utf8')).images;
  t.is(imageB.manifest, arm64.digest);
  t.is(imageB.platform, 'linux/arm64/v8');
  t.is(await readFile(join(rootB, 'image', 'snapshots', imageB.snapshot.slice(7), 'arch'), 'utf8'), 'arm64\n');

  const none = await pull(await freshRoot(), `${registry.host}/test/multi:1`, '--platform', 'linux/s390x');
  t.is(none.code, 1);
  t.regex(none.stderr, /^vmctr: .*has no linux\/s390x image \(available: linux\/amd64, linux\/arm64\/v8\)\n$/);
});

test('a corrupt blob is rejected with one line and leaves the store as it was', async (t) => {
  const root = await freshRoot();
  t.is((await pull(root, `${registry.host}/test/busybox:1`)).code, 0);
  const before = await storeListing(root);
  const result = await pull(root, `${registry.host}/test/corrupt:1`);
  t.is(result.code, 1);
  t.regex(result.stderr, new RegExp(`^vmctr: layer ${corruptLayer} of .*failed verification: content digest is sha256:[a-f0-9]{64}\\n$`, 'm'));
  t.is(result.stderr.split('\n').filter((line) => line.startsWith('vmctr:')).length, 1);
  t.deepEqual(await storeListing(root), before);
  t.false(await stat(join(root, 'image', 'blobs', 'sha256', corruptLayer.slice(7))).then(() => true, () => false));
});

test('an unreachable registry is one line and exit 1', async (t) => {
  const port = await freePort();
  const result = await vmctr(['pull', '--root', await freshRoot(), '--insecure-registry', `127.0.0.1:${port}`, `127.0.0.1:${port}/test/busybox:1`]);
  t.is(result.code, 1);
  t.regex(result.stderr, new RegExp(`^vmctr: cannot reach registry 127.0.0.1:${port} .*connection refused\\n$`));
});

test('a missing tag is one line and exit 1', async (t) => {
  const result = await pull(await freshRoot(), `${registry.host}/test/busybox:nope`);
  t.is(result.code, 1);
  t.regex(result.stderr, /^vmctr: .*test\/busybox:nope not found in 127\.0\.0\.1:\d+ \(MANIFEST_UNKNOWN.*\)\n$/);
});

test('plain HTTP is used only for registries named insecure', async (t) => {
  const result = await vmctr(['pull', '--root', await freshRoot(), `${registry.host}/test/busybox:1`]);
  t.is(result.code, 1);
  t.regex(result.stderr, new RegExp(`^vmctr: cannot reach registry ${registry.host} at https://.*--insecure-registry ${registry.host}\\)\\n$`));
  const viaEnv = await vmctr(['pull', '--root', await freshRoot(), `${registry.host}/test/busybox:1`], { VMCTR_INSECURE_REGISTRIES: `other:1,${registry.host}` });
  t.is(viaEnv.code, 0, viaEnv.stderr);
});

test('bad references are one line and exit 1', async (t) => {
  for (const ref of ['upper/Case', 'a:b:c', 'x@sha256:123']) {
    const result = await vmctr(['pull', '--root', await freshRoot(), ref]);
    t.is(result.code, 1, ref);
    t.regex(result.stderr, /^vmctr: invalid reference "[^"]+": [^\n]+\n$/);
  }
});

test('Docker schema 2 manifests and manifest lists', async (t) => {
  const root = await freshRoot();
  const result = await pull(root, `${registry.host}/test/docker-multi:1`, '--platform', 'linux/arm64/v8');
  t.is(result.code, 0, result.stderr);
  const [image] = JSON.parse(await readFile(join(root, 'image', 'images.json'), 'utf8')).images;
  const list = JSON.parse(await readFile(join(root, 'image', 'blobs', 'sha256', image.digest.slice(7)), 'utf8'));
  const manifest = JSON.parse(await readFile(join(root, 'image', 'blobs', 'sha256', image.manifest.slice(7)), 'utf8'));
  t.is(list.mediaType, 'application/vnd.docker.distribution.manifest.list.v2+json');
  t.is(manifest.mediaType, 'application/vnd.docker.distribution.manifest.v2+json');
  t.is(manifest.layers[0].mediaType, 'application/vnd.docker.image.rootfs.diff.tar.gzip');
  t.is(image.platform, 'linux/arm64/v8');
  t.is(await readFile(join(root, 'image', 'snapshots', image.snapshot.slice(7), 'arch'), 'utf8'), 'arm64\n');
});

test('a stored blob cut short is fetched again', async (t) => {
  const root = await freshRoot();
  t.is((await pull(root, `${registry.host}/test/busybox:1`)).code, 0);
  const manifest = JSON.parse(await readFile(join(root, 'image', 'blobs', 'sha256', busybox.digest.slice(7)), 'utf8'));
  const layer = join(root, 'image', 'blobs', 'sha256', manifest.layers[0].digest.slice(7));
  await writeFile(layer, '');
  const again = await pull(root, `${registry.host}/test/busybox:1`);
  t.is(again.code, 0, again.stderr);
  t.regex(again.stderr, new RegExp(`${manifest.layers[0].digest.slice(7, 19)}: downloading`));
  t.is((await stat(layer)).size, manifest.layers[0].size);
});
