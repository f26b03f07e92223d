import test from 'ava';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { guestHostForTests } from '../guest-host.js';
import { busyboxEntries, layerOf, OciLayout, push } from '../image/image-builder.js';
import { startRegistry, type Registry } from '../image/registry-server.js';
import { vmctr as vmctrOnHost } from '../image/vmctr-process.js';
import { repoRoot } from '../lab/exec.js';

// End to end for images: an image the test builds is pushed to a real
// registry (Debian's docker-registry on loopback), pulled with `vmctr pull`,
// and run with `vmctr run IMAGE` in a microVM with its config applied.

let registry: Registry | undefined;
let work: string;
let root: string;
let image: string;
/** The same files, with /srv and /cache declared as volumes. */
let volumeImage: string;

test.before(async () => {
  // Under /tmp: the nested lab sees the host's /tmp, so the store pulled here is the one the pod runs from.
  work = await mkdtemp(join(tmpdir(), 'vmctr-e2e-image-'));
  root = join(work, 'state');
  registry = await startRegistry(work);
  const layout = new OciLayout(join(work, 'layout'));
  const app = layerOf([{ path: 'srv/', type: 'dir' }, { path: 'srv/motd', content: 'from the second layer\n' }], 'zstd');
  const built = await layout.image({
    layers: [layerOf(await busyboxEntries(), 'gzip'), app],
    config: {
      Entrypoint: ['/bin/sh', '-c'],
      Cmd: ['echo "$GREETING, I am $(/bin/busybox id -un) in $(/bin/busybox pwd): $(/bin/busybox cat /srv/motd)"'],
      Env: ['GREETING=hello', 'PATH=/bin'],
      User: 'www',
      WorkingDir: '/srv',
    },
  });
  await layout.tag(built, 'app');
  image = `${registry.host}/test/app:1`;
  await push(layout, 'app', image);
  const withVolumes = await layout.image({
    layers: [layerOf(await busyboxEntries(), 'gzip'), app],
    config: { Env: ['PATH=/bin'], Volumes: { '/srv': {}, '/cache': {} } },
  });
  await layout.tag(withVolumes, 'volumes');
  volumeImage = `${registry.host}/test/volumes:1`;
  await push(layout, 'volumes', volumeImage);
  for (const name of [image, volumeImage]) {
    const pulled = await vmctrOnHost(['pull', '--root', root, '--insecure-registry', registry.host, name]);
    if (pulled.code !== 0) throw new Error(`vmctr pull failed: ${pulled.stderr}`);
  }
});

// Registered after the pull: the lab starts then, so its view of the host's /tmp already holds the store.
const { guest, serial } = guestHostForTests(test);

test.after.always(async () => {
  await registry?.stop();
  await rm(work, { recursive: true, force: true });
});

function run(args: string[]) {
  return guest().exec([`${repoRoot}/bin/vmctr`, 'run', '--root', root, '--rm', ...args], { cwd: repoRoot, timeoutMs: 300_000 });
}

serial('a pulled image runs in a microVM with its Entrypoint, Cmd, Env, User and WorkingDir', async (t) => {
  t.log(guest().description);
  const r = await run([image]);
  // The first run builds the image's disk; later runs reuse it.
  t.is(r.stderr.toString(), "vmctr: building the image's disk (once per image)\n");
  t.is(r.stdout.toString(), 'hello, I am www in /srv: from the second layer\n');
  t.is(r.code, 0);
});

serial('flags override the image config: the command replaces Cmd, -e, -u and -w win', async (t) => {
  t.log(guest().description);
  const r = await run(['-e', 'GREETING=hi', '-u', 'root', '-w', '/tmp', image, '--', 'echo "$GREETING $(/bin/busybox id -u) $(/bin/busybox pwd)"; exit 7']);
  t.is(r.stdout.toString(), 'hi 0 /tmp\n');
  t.is(r.stderr.toString(), '');
  t.is(r.code, 7);
});

serial('--rootfs fs: a store image\'s snapshot is served as it is, its config applied, its declared volumes populated beside it', async (t) => {
  t.log(guest().description);
  const r = await run(['--rootfs', 'fs', image]);
  t.is(r.stderr.toString(), '', 'no disk to build');
  t.is(r.stdout.toString(), 'hello, I am www in /srv: from the second layer\n');
  t.is(r.code, 0);
  const v = await run(['--rootfs', 'fs', volumeImage, '--', 'sh', '-c', 'cat /srv/motd; echo x >/srv/new && echo wrote; echo y >/etc/changed && cat /etc/changed']);
  t.is(v.stdout.toString(), 'from the second layer\nwrote\ny\n', v.stderr.toString());
  t.is(v.code, 0);
});

serial('an image\'s declared volumes are new volumes holding the image\'s files there, unless the app mounts a host directory there', async (t) => {
  t.log(guest().description);
  const r = await run([volumeImage, '--', 'sh', '-c', `cat /srv/motd; ls -A /cache | wc -l; awk '$3 == "virtiofs" && $2 ~ /\\/(srv|cache)$/' /proc/mounts | wc -l; echo x >/srv/new && echo wrote`]);
  t.log(r.stderr.toString());
  t.is(r.stdout.toString(), 'from the second layer\n0\n2\nwrote\n');
  t.is(r.code, 0);
  const host = await mkdtemp(join(work, 'host-'));
  const over = await run(['-v', `${host}:/srv`, volumeImage, '--', 'sh', '-c', 'ls -A /srv | wc -l; echo mine >/srv/f']);
  t.is(over.stdout.toString(), '0\n', 'a host volume at a declared path is not populated from the image');
  t.is(over.code, 0);
});
