import test from 'ava';
import { familiarName, formatReference, parseReference, registryEndpoint } from '../../image/reference.js';
import { parsePlatform, platformMatches } from '../../image/platform.js';
import { parseAuthChallenges } from '../../image/auth-challenge.js';

const digest = `sha256:${'ab'.repeat(32)}`;

test('references are normalised as docker does', (t) => {
  const cases: [string, string][] = [
    ['nginx', 'docker.io/library/nginx:latest'],
    ['nginx:1.25', 'docker.io/library/nginx:1.25'],
    ['docker.io/library/nginx:1.25', 'docker.io/library/nginx:1.25'],
    ['index.docker.io/library/nginx', 'docker.io/library/nginx:latest'],
    ['user/app', 'docker.io/user/app:latest'],
    ['localhost/app', 'localhost/app:latest'],
    ['localhost:5000/a/b/c:tag', 'localhost:5000/a/b/c:tag'],
    ['127.0.0.1:5000/app', '127.0.0.1:5000/app:latest'],
    ['quay.io/org/app:v1.2.3-rc_1', 'quay.io/org/app:v1.2.3-rc_1'],
    [`nginx@${digest}`, `docker.io/library/nginx@${digest}`],
    [`nginx:1.25@${digest}`, `docker.io/library/nginx:1.25@${digest}`],
    ['Registry/app', 'Registry/app:latest'],
    ['[::1]:5000/app', '[::1]:5000/app:latest'],
    ['a__b/c-d.e', 'docker.io/a__b/c-d.e:latest'],
  ];
  for (const [input, expected] of cases) t.is(formatReference(parseReference(input)), expected, input);
});

test('bad references are refused with a reason', (t) => {
  const cases: [string, RegExp][] = [
    ['', /empty/],
    ['upper/Case', /must be lowercase/],
    ['nginx:bad tag', /invalid tag/],
    ['nginx:-x', /invalid tag/],
    ['nginx@sha256:short', /invalid digest/],
    [`nginx@md5:${'a'.repeat(32)}`, /only sha256/],
    ['ab'.repeat(32), /image id/],
    ['a//b', /invalid repository name/],
    ['-x', /invalid repository name/],
    [`${'a'.repeat(256)}`, /longer than 255/],
  ];
  for (const [input, reason] of cases) {
    const error = t.throws(() => parseReference(input), undefined, input);
    t.regex(error!.message, reason, input);
    t.notRegex(error!.message, /\n/);
  }
});

test('familiar names and endpoints', (t) => {
  t.is(familiarName(parseReference('nginx')), 'nginx');
  t.is(familiarName(parseReference('user/app')), 'user/app');
  t.is(familiarName(parseReference('quay.io/x/y')), 'quay.io/x/y');
  t.is(registryEndpoint('docker.io'), 'registry-1.docker.io');
  t.is(registryEndpoint('127.0.0.1:5000'), '127.0.0.1:5000');
});

test('platforms parse and match with default variants', (t) => {
  t.deepEqual(parsePlatform('linux/arm64'), { os: 'linux', architecture: 'arm64' });
  t.deepEqual(parsePlatform('linux/x86_64'), { os: 'linux', architecture: 'amd64' });
  t.deepEqual(parsePlatform('linux/arm/v6'), { os: 'linux', architecture: 'arm', variant: 'v6' });
  t.throws(() => parsePlatform('linux'), { message: /expected os\/architecture/ });
  t.true(platformMatches(parsePlatform('linux/arm64'), { os: 'linux', architecture: 'arm64', variant: 'v8' }));
  t.true(platformMatches(parsePlatform('linux/arm64/v8'), { os: 'linux', architecture: 'arm64' }));
  t.false(platformMatches(parsePlatform('linux/arm'), { os: 'linux', architecture: 'arm', variant: 'v6' }));
  t.false(platformMatches(parsePlatform('linux/amd64'), { os: 'windows', architecture: 'amd64' }));
});

test('WWW-Authenticate challenges parse', (t) => {
  t.deepEqual(parseAuthChallenges('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/nginx:pull"'), [
    { scheme: 'bearer', params: { realm: 'https://auth.docker.io/token', service: 'registry.docker.io', scope: 'repository:library/nginx:pull' } },
  ]);
  t.deepEqual(parseAuthChallenges('Basic realm="Registry Realm", Bearer realm=x'), [
    { scheme: 'basic', params: { realm: 'Registry Realm' } },
    { scheme: 'bearer', params: { realm: 'x' } },
  ]);
  t.deepEqual(parseAuthChallenges('Bearer realm="a\\"b"'), [{ scheme: 'bearer', params: { realm: 'a"b' } }]);
});
