import test from 'ava';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { busyboxEntries, layerOf, OciLayout, push, run } from './image-builder.js';
import { startRegistry, type Registry } from './registry-server.js';
import { vmctr } from './vmctr-process.js';

let work: string;
let plain: Registry;
let secure: Registry;
let ca: string;

test.before(async () => {
  work = await mkdtemp(join(tmpdir(), 'vmctr-tls-'));
  plain = await startRegistry(work, { dataDir: join(work, 'data') });
  const layout = new OciLayout(join(work, 'layout'));
  await layout.tag(await layout.image({ layers: [layerOf(await busyboxEntries())] }), 'busybox');
  await push(layout, 'busybox', `${plain.host}/test/busybox:1`);
  // The same storage behind TLS, with a certificate for 127.0.0.1 that only the test trusts.
  ca = join(work, 'registry.crt');
  const key = join(work, 'registry.key');
  await run('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', ca, '-days', '2', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1']);
  secure = await startRegistry(work, { dataDir: join(work, 'data'), tls: { certificate: ca, key } });
});

test.after.always(async () => {
  await Promise.all([plain?.stop(), secure?.stop()]);
  await rm(work, { recursive: true, force: true });
});

test('HTTPS registries need no flag when their certificate is trusted', async (t) => {
  const root = await mkdtemp(join(work, 'root-'));
  const result = await vmctr(['pull', '--root', root, `${secure.host}/test/busybox:1`], { NODE_EXTRA_CA_CERTS: ca });
  t.is(result.code, 0, result.stderr);
});

test('an untrusted certificate is one line and exit 1', async (t) => {
  const result = await vmctr(['pull', '--root', await mkdtemp(join(work, 'root-')), `${secure.host}/test/busybox:1`]);
  t.is(result.code, 1);
  t.regex(result.stderr, new RegExp(`^vmctr: cannot reach registry ${secure.host} at https://${secure.host}/v2/test/busybox/manifests/1: self-signed certificate \\(to trust a private CA, set NODE_EXTRA_CA_CERTS to its certificate\\)\\n$`));
});
