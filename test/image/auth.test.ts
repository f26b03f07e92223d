import test from 'ava';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startBasicAuthProxy, startBlobStorage, startTokenService, type BasicAuthProxy, type BlobStorage, type TokenService } from './auth-servers.js';
import { busyboxEntries, layerOf, OciLayout, push } from './image-builder.js';
import { startRegistry, type Registry } from './registry-server.js';
import { vmctr } from './vmctr-process.js';

let work: string;
let open: Registry;
let tokenRegistry: Registry;
let tokens: TokenService;
let proxy: BasicAuthProxy;
let storage: BlobStorage;
let redirecting: BasicAuthProxy;

test.before(async () => {
  work = await mkdtemp(join(tmpdir(), 'vmctr-auth-'));
  open = await startRegistry(work, { dataDir: join(work, 'data') });
  const layout = new OciLayout(join(work, 'layout'));
  await layout.tag(await layout.image({ layers: [layerOf(await busyboxEntries())] }), 'busybox');
  await push(layout, 'busybox', `${open.host}/test/busybox:1`);
  // A second registry serves the same storage, but only with tokens from the test's token service.
  tokens = await startTokenService(work, 'alice', 'wonderland');
  tokenRegistry = await startRegistry(work, { dataDir: join(work, 'data'), tokenAuth: tokens });
  proxy = await startBasicAuthProxy(open.host, 'bob', 'hunter2');
  storage = await startBlobStorage(open.host);
  redirecting = await startBasicAuthProxy(open.host, 'bob', 'hunter2', storage);
});

test.after.always(async () => {
  await Promise.all([open?.stop(), tokenRegistry?.stop(), tokens?.close(), proxy?.close(), storage?.close(), redirecting?.close()]);
  await rm(work, { recursive: true, force: true });
});

/** A DOCKER_CONFIG directory whose config.json holds `auths`. */
async function dockerConfig(auths: Record<string, Record<string, string>>): Promise<string> {
  const dir = await mkdtemp(join(work, 'docker-config-'));
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'config.json'), JSON.stringify({ auths }));
  return dir;
}

const auth = (user: string, password: string) => ({ auth: Buffer.from(`${user}:${password}`).toString('base64') });

async function pullFrom(host: string, env: NodeJS.ProcessEnv) {
  return vmctr(['pull', '--root', await mkdtemp(join(work, 'root-')), '--insecure-registry', host, `${host}/test/busybox:1`], env);
}

test.serial('bearer tokens: credentials from config.json go to the token service, the token to the registry', async (t) => {
  const config = await dockerConfig({ [tokenRegistry.host]: auth('alice', 'wonderland') });
  const before = tokens.log.requests.length;
  const result = await pullFrom(tokenRegistry.host, { DOCKER_CONFIG: config });
  t.is(result.code, 0, result.stderr);
  const asked = tokens.log.requests.slice(before);
  t.true(asked.length >= 1);
  t.deepEqual(asked[0], { user: 'alice', scope: 'repository:test/busybox:pull', service: tokens.service });
});

test.serial('bearer tokens: refused credentials are one line', async (t) => {
  const wrong = await pullFrom(tokenRegistry.host, { DOCKER_CONFIG: await dockerConfig({ [`https://${tokenRegistry.host}/v1/`]: auth('alice', 'nope') }) });
  t.is(wrong.code, 1);
  t.regex(wrong.stderr, /^vmctr: the token service of 127\.0\.0\.1:\d+ \(http:\/\/127\.0\.0\.1:\d+\) refused user alice: HTTP 401\n$/);
  const anonymous = await pullFrom(tokenRegistry.host, { DOCKER_CONFIG: await dockerConfig({}) });
  t.is(anonymous.code, 1);
  t.regex(anonymous.stderr, /^vmctr: .*refused anonymous access: HTTP 401\n$/);
});

test('basic auth: credentials from config.json', async (t) => {
  const result = await pullFrom(proxy.host, { DOCKER_CONFIG: await dockerConfig({ [proxy.host]: auth('bob', 'hunter2') }) });
  t.is(result.code, 0, result.stderr);
  const plainFields = await pullFrom(proxy.host, { DOCKER_CONFIG: await dockerConfig({ [`http://${proxy.host}`]: { username: 'bob', password: 'hunter2' } }) });
  t.is(plainFields.code, 0, plainFields.stderr);
});

test('basic auth: missing or wrong credentials are one line', async (t) => {
  const missing = await pullFrom(proxy.host, { DOCKER_CONFIG: await dockerConfig({}) });
  t.is(missing.code, 1);
  t.regex(missing.stderr, /^vmctr: 127\.0\.0\.1:\d+ requires a login and .*config\.json has no credentials for it\n$/);
  const wrong = await pullFrom(proxy.host, { DOCKER_CONFIG: await dockerConfig({ [proxy.host]: auth('bob', 'wrong') }) });
  t.is(wrong.code, 1);
  t.regex(wrong.stderr, /^vmctr: 127\.0\.0\.1:\d+ refused access to test\/busybox \(UNAUTHORIZED: authentication required\): check the credentials in .*config\.json\n$/);
});

test('blob downloads follow redirects to another origin, without the credentials', async (t) => {
  const result = await pullFrom(redirecting.host, { DOCKER_CONFIG: await dockerConfig({ [redirecting.host]: auth('bob', 'hunter2') }) });
  t.is(result.code, 0, result.stderr);
  t.true(storage.authorizations.length >= 2); // the config and the layer
  t.deepEqual(storage.authorizations.filter((header) => header !== undefined), []);
});
