import test from 'ava';
import { join } from 'node:path';
import { readJson, JsonSyntaxError, MAX_JSON_DEPTH, type JsonValue } from '../../pod/json-reader.js';
import {
  APP_NAME, defaultAppName, MAX_APPS, MAX_LIST_ENTRIES, MAX_STRING_BYTES, nameApps, parsePodManifest, PodSpecError,
  type AppDraft, type PodManifest,
} from '../../pod/pod-spec.js';
import { MAX_MOUNTS, MAX_PATH_BYTES, MAX_VOLUMES } from '../../pod/volume-spec.js';
import { MAX_CPUS, MAX_MEMORY_MIB, MIN_MEMORY_MIB } from '../../vmm/vm.js';

// A pod's description, pure data: app names from every kind of image, and
// the manifest parser, each mistake one line naming the file and the field.

const DIGEST = `sha256:${'ab'.repeat(32)}`;
const labels = { app: (i: number) => `apps[${i}]`, name: (i: number) => `apps[${i}].name` };
const draft = (image: string, name?: string): AppDraft => ({ image, command: [], env: [], mounts: [], ...(name === undefined ? {} : { name }) });

test('an app is named after its image: default, a path, a reference, an id', (t) => {
  const cases: [string, string][] = [
    ['default', 'default'],
    ['alpine', 'alpine'],
    ['alpine:3.19', 'alpine'],
    ['docker.io/library/alpine:3.19', 'alpine'],
    ['quay.io/org/team/app:v1.2', 'app'],
    [`localhost:5000/x/busybox@${DIGEST}`, 'busybox'],
    [`busybox:1.36@${DIGEST}`, 'busybox'],
    ['127.0.0.1:5000/busybox', 'busybox'],
    [DIGEST, 'abababababab'],
    ['/srv/rootfs', 'rootfs'],
    ['./rootfs/', 'rootfs'],
    ['build/rootfs', 'rootfs'],
    ['../images/web.tar', 'web'],
    ['/srv/web.tar.gz', 'web'],
    ['web.tgz', 'web'],
    ['./web.tar.zst', 'web'],
    ['./v1:web.tar', 'v1-web'],
    ['my rootfs', 'my-rootfs'],
    ['./_build.tar', 'build'],
    ['café', 'caf-'],
    ['/', 'app'],
    ['.tar', 'app'],
    ['', 'app'],
    [`/${'x'.repeat(80)}`, 'x'.repeat(63)],
  ];
  for (const [image, name] of cases) {
    t.is(defaultAppName(image), name, image);
    t.regex(defaultAppName(image), APP_NAME, image);
  }
});

test('default names are made unique with -2, -3 and yield to given names', (t) => {
  const names = (drafts: AppDraft[]) => nameApps(drafts, labels).map((a) => a.name);
  t.deepEqual(names([draft('alpine'), draft('docker.io/library/alpine:3.19'), draft('./alpine.tar')]), ['alpine', 'alpine-2', 'alpine-3']);
  t.deepEqual(names([draft('alpine'), draft('busybox', 'alpine')]), ['alpine-2', 'alpine'], 'a given name wins over a default one');
  t.deepEqual(names([draft('a'), draft('a'), draft('b', 'a-2')]), ['a', 'a-3', 'a-2'], 'a suffix already given is skipped');
  const long = 'x'.repeat(63);
  const [first, second] = names([draft(long), draft(long)]);
  t.is(first, long);
  t.is(second, `${'x'.repeat(61)}-2`, 'the suffix fits in 63 characters');
  t.regex(second!, APP_NAME);
  t.deepEqual(nameApps([{ image: 'i', command: ['c'], env: ['A=1'], workdir: '/w', user: 'u', mounts: [] }], labels), [{ name: 'i', image: 'i', command: ['c'], env: ['A=1'], workdir: '/w', user: 'u', mounts: [] }]);
});

test('a given name must be valid and unique', (t) => {
  const refused = (drafts: AppDraft[], message: string) => t.is(t.throws(() => nameApps(drafts, labels), { instanceOf: PodSpecError })?.message, message);
  refused([draft('a', '-x')], 'apps[0].name: expected a name of 1 to 63 letters, digits, "_", "." or "-", starting with a letter or digit, got "-x"');
  refused([draft('a', 'x'.repeat(64))], `apps[0].name: expected a name of 1 to 63 letters, digits, "_", "." or "-", starting with a letter or digit, got "${'x'.repeat(60)}..."`);
  refused([draft('a', '')], 'apps[0].name: expected a name of 1 to 63 letters, digits, "_", "." or "-", starting with a letter or digit, got ""');
  refused([draft('a', 'web'), draft('b'), draft('c', 'web')], 'apps[2].name: "web" is already the name of apps[0]');
});

const manifest = (value: unknown) => JSON.stringify(value, null, 2);
const app = { image: 'alpine' };

test('a manifest round trip: what is written is what is read, defaults filled in', (t) => {
  const pod: PodManifest = {
    apps: [
      { name: 'web', image: 'docker.io/library/nginx:1.25', command: ['nginx', '-g', 'daemon off;'], env: ['PORT=80', 'EMPTY='], workdir: '/srv', user: 'nginx:nginx', mounts: [{ volume: 'site', target: '/usr/share/nginx/html', readOnly: true }] },
      { name: 'sidecar', image: './sidecar.tar', command: [], env: [], mounts: [{ volume: 'site', target: '/site', readOnly: true }, { volume: 'scratch', target: '/tmp/scratch', readOnly: false }] },
      { name: 'default', image: 'default', command: ['sh', '-c', 'sleep 1'], env: [], user: '1000', mounts: [] },
    ],
    volumes: [{ name: 'site', kind: 'host', source: '/srv/site', readOnly: true }, { name: 'scratch', kind: 'empty', readOnly: false }],
    exitOnFirst: true,
    cpus: 2,
    memory: 512,
    hostname: 'web.local',
  };
  t.deepEqual(parsePodManifest(manifest(pod), 'pod.json'), pod);
  t.deepEqual(parsePodManifest(`\uFEFF ${manifest({ apps: [app, app, { image: 'alpine', name: 'alpine' }] })}\n`, 'pod.json'), {
    apps: [
      { name: 'alpine-2', image: 'alpine', command: [], env: [], mounts: [] },
      { name: 'alpine-3', image: 'alpine', command: [], env: [], mounts: [] },
      { name: 'alpine', image: 'alpine', command: [], env: [], mounts: [] },
    ],
    volumes: [],
    exitOnFirst: false,
  }, 'optional fields absent, names from images, a byte-order mark allowed');
});

test('a manifest within the bounds is taken', (t) => {
  const most = Array.from({ length: MAX_LIST_ENTRIES }, (_, i) => `K${i}=v`);
  const big = 'x'.repeat(MAX_STRING_BYTES);
  const pod = parsePodManifest(manifest({ apps: Array.from({ length: MAX_APPS }, () => ({ image: big, command: most, env: most })), cpus: MAX_CPUS, memory: MAX_MEMORY_MIB }), 'p.json');
  t.is(pod.apps.length, MAX_APPS);
  t.is(pod.apps[0]!.env.length, MAX_LIST_ENTRIES);
  t.is(pod.apps[0]!.image.length, MAX_STRING_BYTES);
  t.is(parsePodManifest(manifest({ apps: [app], cpus: 1, memory: MIN_MEMORY_MIB }), 'p.json').memory, MIN_MEMORY_MIB);
});

test('volumes: a relative source is resolved against the manifest\'s directory; targets are normalised; a read-only volume is read-only in every app', (t) => {
  const text = manifest({
    volumes: [{ name: 'data', kind: 'host', source: 'data' }, { name: 'up', kind: 'host', source: '../shared/', readOnly: true }, { name: 'abs', kind: 'host', source: '/srv//abs/' }, { name: 'tmp', kind: 'empty', readOnly: false }],
    apps: [
      { image: 'a', mounts: [{ volume: 'data', target: '/data//x/' }, { volume: 'up', target: '/up', readOnly: false }, { volume: 'tmp', target: '/a/./tmp', readOnly: true }] },
      { image: 'b', mounts: [{ volume: 'data', target: '/data/x' }, { volume: 'abs', target: '/abs' }] },
      { image: 'c' },
    ],
  });
  const pod = parsePodManifest(text, '/etc/vmctr/pods/pod.json');
  t.deepEqual(pod.volumes, [
    { name: 'data', kind: 'host', source: '/etc/vmctr/pods/data', readOnly: false },
    { name: 'up', kind: 'host', source: '/etc/vmctr/shared', readOnly: true },
    { name: 'abs', kind: 'host', source: '/srv/abs', readOnly: false },
    { name: 'tmp', kind: 'empty', readOnly: false },
  ]);
  t.deepEqual(pod.apps.map((a) => a.mounts), [
    [{ volume: 'data', target: '/data/x', readOnly: false }, { volume: 'up', target: '/up', readOnly: true }, { volume: 'tmp', target: '/a/tmp', readOnly: true }],
    [{ volume: 'data', target: '/data/x', readOnly: false }, { volume: 'abs', target: '/abs', readOnly: false }],
    [],
  ], 'the same target in two apps is two mounts');
  t.is(parsePodManifest(text, 'pod.json', '/other').volumes[0]!.source, '/other/data', 'the directory given wins');
  t.is(parsePodManifest(text, 'pods/pod.json').volumes[0]!.source, join(process.cwd(), 'pods/data'), 'a relative manifest path: from the working directory');
  const unused = parsePodManifest(manifest({ volumes: [{ name: 'd', kind: 'empty' }], apps: [app] }), 'pod.json');
  t.deepEqual([unused.volumes, unused.apps[0]!.mounts], [[{ name: 'd', kind: 'empty', readOnly: false }], []], 'a volume no app mounts is allowed');
});

test('volumes and mounts within the bounds are taken', (t) => {
  const volumes = Array.from({ length: MAX_VOLUMES }, (_, i) => ({ name: `v${i}`, kind: 'empty' }));
  const mounts = Array.from({ length: MAX_MOUNTS }, (_, i) => ({ volume: `v${i % MAX_VOLUMES}`, target: `/m${i}` }));
  const pod = parsePodManifest(manifest({ volumes, apps: [{ image: 'a', mounts }] }), 'pod.json');
  t.is(pod.volumes.length, MAX_VOLUMES);
  t.is(pod.apps[0]!.mounts.length, MAX_MOUNTS);
  const longest = `/${'x'.repeat(MAX_PATH_BYTES - 1)}`;
  const long = parsePodManifest(manifest({ volumes: [{ name: 'v', kind: 'host', source: longest }], apps: [{ image: 'a', mounts: [{ volume: 'v', target: longest }] }] }), 'pod.json');
  t.is(long.volumes[0]!.source, longest);
  t.is(long.apps[0]!.mounts[0]!.target, longest);
});

/** Each text and its one-line error, as `vmctr run --pod pod.json` prints it. */
const mistakes: [string, string][] = [
  // JSON syntax, by line and column
  ['', 'pod.json:1:1: expected a value (an object, array, string, number, true, false or null), got the end of the file'],
  ['{"apps": [', 'pod.json:1:11: expected a value (an object, array, string, number, true, false or null), got the end of the file'],
  ['{\n  "apps": [\n    {"image": "alpine",}\n  ]\n}', 'pod.json:3:24: expected another item after ",", got "}" (JSON has no trailing commas)'],
  ['{\n  "apps": [{"image": "alpine"}]\n  "cpus": 2\n}', 'pod.json:3:3: expected "," or "}", got "\\""'],
  ['{"apps": [{"image": tru}]}', 'pod.json:1:21: expected a value (an object, array, string, number, true, false or null), got tru'],
  ["{'apps': []}", 'pod.json:1:2: expected a field name in double quotes, got "\'"'],
  ['{"apps" []}', 'pod.json:1:9: expected ":" after the field name "apps", got "["'],
  ['{"apps": [{"image": "alp', 'pod.json:1:21: this string has no closing \'"\''],
  ['{"apps": [{"image": "a\tb"}]}', 'pod.json:1:23: expected a character, got the control character U+0009 (in a string, write it as an escape such as \\n or \\t)'],
  ['{"apps": [{"image": "a\\qb"}]}', 'pod.json:1:23: expected an escape (\\" \\\\ \\/ \\b \\f \\n \\r \\t or \\u and 4 hex digits), got \\q'],
  ['{"apps": [{"image": "a\\u12"}]}', 'pod.json:1:23: expected an escape (\\" \\\\ \\/ \\b \\f \\n \\r \\t or \\u and 4 hex digits), got \\u'],
  ['{"apps": [{"image": "é", "image": "b"}]}', 'pod.json:1:26: field "image" is given twice: give it once'],
  ['{"apps": []} {}', 'pod.json:1:14: expected the end of the file after the value, got "{"'],
  ['{"cpus": 01}', 'pod.json:1:11: expected "," or "}", got "1"'],
  [`{"apps": ${'['.repeat(MAX_JSON_DEPTH)}${']'.repeat(MAX_JSON_DEPTH)}}`, `pod.json:1:${10 + MAX_JSON_DEPTH - 1}: expected at most ${MAX_JSON_DEPTH} nested arrays and objects, got more`],
  // unknown fields, with the nearest known one when it is close
  [manifest({ apps: [{ image: 'a', comand: ['x'] }] }), 'pod.json: apps[0].comand: unknown field (did you mean "command"?)'],
  [manifest({ apps: [{ Image: 'a' }] }), 'pod.json: apps[0].Image: unknown field (did you mean "image"?)'],
  [manifest({ apps: [app], exit_on_first: true }), 'pod.json: exit_on_first: unknown field (did you mean "exitOnFirst"?)'],
  [manifest({ apps: [app], mem: 512 }), 'pod.json: mem: unknown field (expected one of apps, volumes, exitOnFirst, cpus, memory, hostname)'],
  [manifest({ apps: [app, { image: 'a', 'working dir': '/' }] }), 'pod.json: apps[1]["working dir"]: unknown field (expected one of name, image, command, env, workdir, user, mounts)'],
  ['{"apps": [{"__proto__": 1, "image": "a"}]}', 'pod.json: apps[0].__proto__: unknown field (expected one of name, image, command, env, workdir, user, mounts)'],
  // wrong types and values, by the field's path
  [manifest([app]), 'pod.json: expected an object with "apps", got an array'],
  ['null', 'pod.json: expected an object with "apps", got null'],
  [manifest({}), 'pod.json: apps: expected an array of 1 to 14 apps, got nothing'],
  [manifest({ apps: app }), 'pod.json: apps: expected an array of 1 to 14 apps, got an object'],
  [manifest({ apps: [] }), 'pod.json: apps: expected 1 to 14 apps, got 0'],
  [manifest({ apps: Array.from({ length: MAX_APPS + 1 }, () => app) }), 'pod.json: apps: expected 1 to 14 apps, got 15'],
  [manifest({ apps: [app, 'alpine'] }), 'pod.json: apps[1]: expected an app: an object with "image", got "alpine"'],
  [manifest({ apps: [{}] }), 'pod.json: apps[0].image: expected "default", a root filesystem directory or tar, or an image name, got nothing'],
  [manifest({ apps: [{ image: '' }] }), 'pod.json: apps[0].image: expected "default", a root filesystem directory or tar, or an image name, got ""'],
  [manifest({ apps: [{ image: 7 }] }), 'pod.json: apps[0].image: expected "default", a root filesystem directory or tar, or an image name, got 7'],
  [manifest({ apps: [{ image: 'a', command: 'ls -l' }] }), 'pod.json: apps[0].command: expected an array of strings, got "ls -l"'],
  [manifest({ apps: [{ image: 'a', command: ['ls', 1] }] }), 'pod.json: apps[0].command[1]: expected a string, got 1'],
  [manifest({ apps: [app, { image: 'a', env: ['FOO'] }] }), 'pod.json: apps[1].env[0]: expected "KEY=VALUE", got "FOO"'],
  [manifest({ apps: [{ image: 'a', env: ['A=1', '=x'] }] }), 'pod.json: apps[0].env[1]: expected "KEY=VALUE", got "=x"'],
  [manifest({ apps: [{ image: 'a', env: { A: '1' } }] }), 'pod.json: apps[0].env: expected an array of "KEY=VALUE" strings, got an object'],
  [manifest({ apps: [{ image: 'a', workdir: 'srv' }] }), 'pod.json: apps[0].workdir: expected an absolute path, got "srv"'],
  [manifest({ apps: [{ image: 'a', workdir: '/a\nb', user: 0 }] }), 'pod.json: apps[0].user: expected USER[:GROUP], by name or id, got 0'],
  [manifest({ apps: [{ image: 'a', user: '' }] }), 'pod.json: apps[0].user: expected USER[:GROUP], by name or id, got ""'],
  [manifest({ apps: [{ image: 'a', name: 'a b' }] }), 'pod.json: apps[0].name: expected a name of 1 to 63 letters, digits, "_", "." or "-", starting with a letter or digit, got "a b"'],
  [manifest({ apps: [{ image: 'a', name: 3 }] }), 'pod.json: apps[0].name: expected a name of 1 to 63 letters, digits, "_", "." or "-", starting with a letter or digit, got 3'],
  [manifest({ apps: [{ image: 'a', name: 'x' }, { image: 'b', name: 'x' }] }), 'pod.json: apps[1].name: "x" is already the name of apps[0]'],
  [manifest({ apps: [app], exitOnFirst: 'yes' }), 'pod.json: exitOnFirst: expected true or false, got "yes"'],
  [manifest({ apps: [app], cpus: 0 }), `pod.json: cpus: expected an integer from 1 to ${MAX_CPUS}, got 0`],
  [manifest({ apps: [app], cpus: 1.5 }), `pod.json: cpus: expected an integer from 1 to ${MAX_CPUS}, got 1.5`],
  [manifest({ apps: [app], cpus: MAX_CPUS + 1 }), `pod.json: cpus: expected an integer from 1 to ${MAX_CPUS}, got ${MAX_CPUS + 1}`],
  ['{"apps": [{"image": "a"}], "cpus": 1e999}', `pod.json: cpus: expected an integer from 1 to ${MAX_CPUS}, got Infinity`],
  [manifest({ apps: [app], memory: '512' }), `pod.json: memory: expected an integer from ${MIN_MEMORY_MIB} to ${MAX_MEMORY_MIB} (MiB), got "512"`],
  [manifest({ apps: [app], memory: MIN_MEMORY_MIB - 1 }), `pod.json: memory: expected an integer from ${MIN_MEMORY_MIB} to ${MAX_MEMORY_MIB} (MiB), got ${MIN_MEMORY_MIB - 1}`],
  [manifest({ apps: [app], memory: MAX_MEMORY_MIB + 1 }), `pod.json: memory: expected an integer from ${MIN_MEMORY_MIB} to ${MAX_MEMORY_MIB} (MiB), got ${MAX_MEMORY_MIB + 1}`],
  [manifest({ apps: [app], hostname: 'web_1' }), 'pod.json: hostname: expected a host name of 1 to 64 letters, digits, "." or "-", starting with a letter or digit, got "web_1"'],
  [manifest({ apps: [app], hostname: null }), 'pod.json: hostname: expected a host name of 1 to 64 letters, digits, "." or "-", starting with a letter or digit, got null'],
  // bounds: what a command line could not pass either
  [manifest({ apps: [{ image: 'a', command: Array(MAX_LIST_ENTRIES + 1).fill('x') }] }), `pod.json: apps[0].command: expected at most ${MAX_LIST_ENTRIES} entries, got ${MAX_LIST_ENTRIES + 1}`],
  [manifest({ apps: [{ image: 'a', env: Array(MAX_LIST_ENTRIES + 1).fill('A=1') }] }), `pod.json: apps[0].env: expected at most ${MAX_LIST_ENTRIES} entries, got ${MAX_LIST_ENTRIES + 1}`],
  [manifest({ apps: [{ image: 'a', command: ['echo', 'é'.repeat(MAX_STRING_BYTES / 2 + 1)] }] }), `pod.json: apps[0].command[1]: expected at most ${MAX_STRING_BYTES} bytes, got ${MAX_STRING_BYTES + 2}`],
  [manifest({ apps: [{ image: 'a', env: ['A=a\u0000b'] }] }), 'pod.json: apps[0].env[0]: expected a string without NUL characters, got "A=a\\u0000b"'],
  // volumes
  [manifest({ apps: [app], volumes: { name: 'd' } }), 'pod.json: volumes: expected an array of volumes, got an object'],
  [manifest({ apps: [app], volumes: Array.from({ length: MAX_VOLUMES + 1 }, (_, i) => ({ name: `v${i}`, kind: 'empty' })) }), `pod.json: volumes: expected at most ${MAX_VOLUMES} volumes, got ${MAX_VOLUMES + 1}`],
  [manifest({ apps: [app], volumes: ['data'] }), 'pod.json: volumes[0]: expected a volume: an object with "name" and "kind", got "data"'],
  [manifest({ apps: [app], volumes: [{ name: 'd', kind: 'host', source: '/s', readonly: true }] }), 'pod.json: volumes[0].readonly: unknown field (did you mean "readOnly"?)'],
  [manifest({ apps: [app], volumes: [{ name: 'd', kind: 'empty', mode: '0755' }] }), 'pod.json: volumes[0].mode: unknown field (expected one of name, kind, source, readOnly)'],
  [manifest({ apps: [app], volumes: [{ kind: 'empty' }] }), 'pod.json: volumes[0].name: expected a name of 1 to 63 letters, digits, "_", "." or "-", starting with a letter or digit, got nothing'],
  [manifest({ apps: [app], volumes: [{ name: 'my data', kind: 'empty' }] }), 'pod.json: volumes[0].name: expected a name of 1 to 63 letters, digits, "_", "." or "-", starting with a letter or digit, got "my data"'],
  [manifest({ apps: [app], volumes: [{ name: 'x'.repeat(64), kind: 'empty' }] }), `pod.json: volumes[0].name: expected a name of 1 to 63 letters, digits, "_", "." or "-", starting with a letter or digit, got "${'x'.repeat(60)}..."`],
  [manifest({ apps: [app], volumes: [{ name: 'd', kind: 'empty' }, { name: 'e', kind: 'empty' }, { name: 'd', kind: 'host', source: '/s' }] }), 'pod.json: volumes[2].name: "d" is already the name of volumes[0]'],
  [manifest({ apps: [app], volumes: [{ name: 'd' }] }), 'pod.json: volumes[0].kind: expected "host" or "empty", got nothing'],
  [manifest({ apps: [app], volumes: [{ name: 'd', kind: 'hostPath' }] }), 'pod.json: volumes[0].kind: expected "host" or "empty", got "hostPath"'],
  [manifest({ apps: [app], volumes: [{ name: 'd', kind: 1 }] }), 'pod.json: volumes[0].kind: expected "host" or "empty", got 1'],
  [manifest({ apps: [app], volumes: [{ name: 'd', kind: 'host' }] }), 'pod.json: volumes[0].source: expected a host directory (a volume of kind "host" needs one), got nothing'],
  [manifest({ apps: [app], volumes: [{ name: 'd', kind: 'empty', source: '/srv' }] }), 'pod.json: volumes[0].source: only a volume of kind "host" has a source'],
  [manifest({ apps: [app], volumes: [{ name: 'd', kind: 'host', source: '' }] }), 'pod.json: volumes[0].source: expected a host directory, got ""'],
  [manifest({ apps: [app], volumes: [{ name: 'd', kind: 'host', source: ['/srv'] }] }), 'pod.json: volumes[0].source: expected a host directory, got an array'],
  [manifest({ apps: [app], volumes: [{ name: 'd', kind: 'host', source: '/s\u0000x' }] }), 'pod.json: volumes[0].source: expected a string without NUL characters, got "/s\\u0000x"'],
  [manifest({ apps: [app], volumes: [{ name: 'd', kind: 'host', source: `/${'x'.repeat(MAX_PATH_BYTES)}` }] }), `pod.json: volumes[0].source: expected a path of at most ${MAX_PATH_BYTES} bytes, got ${MAX_PATH_BYTES + 1}`],
  [manifest({ apps: [app], volumes: [{ name: 'd', kind: 'empty', readOnly: 'true' }] }), 'pod.json: volumes[0].readOnly: expected true or false, got "true"'],
  // mounts
  [manifest({ apps: [{ image: 'a', mounts: { volume: 'd' } }] }), 'pod.json: apps[0].mounts: expected an array of mounts, got an object'],
  [manifest({ volumes: [{ name: 'd', kind: 'empty' }], apps: [{ image: 'a', mounts: Array.from({ length: MAX_MOUNTS + 1 }, (_, i) => ({ volume: 'd', target: `/m${i}` })) }] }), `pod.json: apps[0].mounts: expected at most ${MAX_MOUNTS} mounts, got ${MAX_MOUNTS + 1}`],
  [manifest({ apps: [{ image: 'a', mounts: ['d:/data'] }] }), 'pod.json: apps[0].mounts[0]: expected a mount: an object with "volume" and "target", got "d:/data"'],
  [manifest({ volumes: [{ name: 'd', kind: 'empty' }], apps: [{ image: 'a', mounts: [{ volume: 'd', traget: '/d' }] }] }), 'pod.json: apps[0].mounts[0].traget: unknown field (did you mean "target"?)'],
  [manifest({ volumes: [{ name: 'd', kind: 'empty' }], apps: [{ image: 'a', mounts: [{ name: 'd', target: '/d' }] }] }), 'pod.json: apps[0].mounts[0].name: unknown field (expected one of volume, target, readOnly)'],
  [manifest({ volumes: [{ name: 'd', kind: 'empty' }], apps: [{ image: 'a', mounts: [{ target: '/d' }] }] }), 'pod.json: apps[0].mounts[0].volume: expected the name of one of the pod\'s volumes, got nothing'],
  [manifest({ volumes: [{ name: 'data', kind: 'empty' }, { name: 'cache', kind: 'empty' }], apps: [app, { image: 'a', mounts: [{ volume: 'logs', target: '/l' }] }] }), 'pod.json: apps[1].mounts[0].volume: no volume "logs" in the pod (its volumes: data, cache)'],
  [manifest({ apps: [{ image: 'a', mounts: [{ volume: 'logs', target: '/l' }] }] }), 'pod.json: apps[0].mounts[0].volume: no volume "logs" in the pod (it has none)'],
  [manifest({ volumes: [{ name: 'd', kind: 'empty' }], apps: [{ image: 'a', mounts: [{ volume: 'd' }] }] }), 'pod.json: apps[0].mounts[0].target: expected an absolute path, got nothing'],
  [manifest({ volumes: [{ name: 'd', kind: 'empty' }], apps: [{ image: 'a', mounts: [{ volume: 'd', target: 'data' }] }] }), 'pod.json: apps[0].mounts[0].target: expected an absolute path, got "data"'],
  [manifest({ volumes: [{ name: 'd', kind: 'empty' }], apps: [{ image: 'a', mounts: [{ volume: 'd', target: '' }] }] }), 'pod.json: apps[0].mounts[0].target: expected an absolute path, got ""'],
  [manifest({ volumes: [{ name: 'd', kind: 'empty' }], apps: [{ image: 'a', mounts: [{ volume: 'd', target: '/' }] }] }), 'pod.json: apps[0].mounts[0].target: expected a directory below /, got "/"'],
  [manifest({ volumes: [{ name: 'd', kind: 'empty' }], apps: [{ image: 'a', mounts: [{ volume: 'd', target: '//./' }] }] }), 'pod.json: apps[0].mounts[0].target: expected a directory below /, got "//./"'],
  [manifest({ volumes: [{ name: 'd', kind: 'empty' }], apps: [{ image: 'a', mounts: [{ volume: 'd', target: '/data/../etc' }] }] }), 'pod.json: apps[0].mounts[0].target: expected a path without ".." components, got "/data/../etc"'],
  [manifest({ volumes: [{ name: 'd', kind: 'empty' }], apps: [{ image: 'a', mounts: [{ volume: 'd', target: '/..' }] }] }), 'pod.json: apps[0].mounts[0].target: expected a path without ".." components, got "/.."'],
  [manifest({ volumes: [{ name: 'd', kind: 'empty' }], apps: [{ image: 'a', mounts: [{ volume: 'd', target: '/d\u0000' }] }] }), 'pod.json: apps[0].mounts[0].target: expected a string without NUL characters, got "/d\\u0000"'],
  [manifest({ volumes: [{ name: 'd', kind: 'empty' }], apps: [{ image: 'a', mounts: [{ volume: 'd', target: `/${'x'.repeat(MAX_PATH_BYTES)}` }] }] }), `pod.json: apps[0].mounts[0].target: expected a path of at most ${MAX_PATH_BYTES} bytes, got ${MAX_PATH_BYTES + 1}`],
  [manifest({ volumes: [{ name: 'd', kind: 'empty' }, { name: 'e', kind: 'empty' }], apps: [{ image: 'a', mounts: [{ volume: 'd', target: '/data' }, { volume: 'e', target: '/data/' }] }] }), 'pod.json: apps[0].mounts[1].target: "/data" is already the target of apps[0].mounts[0]'],
  [manifest({ volumes: [{ name: 'd', kind: 'empty' }], apps: [{ image: 'a', mounts: [{ volume: 'd', target: '/d', readOnly: 1 }] }] }), 'pod.json: apps[0].mounts[0].readOnly: expected true or false, got 1'],
];

test('every manifest mistake is one PodSpecError line naming the file, the field and what was expected', (t) => {
  for (const [text, message] of mistakes) {
    const err = t.throws(() => parsePodManifest(text, 'pod.json'), { instanceOf: PodSpecError }, text.slice(0, 80));
    t.is(err?.message, message, text.slice(0, 80));
    t.false(err?.message.includes('\n'), message);
  }
  t.regex(t.throws(() => parsePodManifest('{', 'dir/my pod.json'))?.message ?? '', /^dir\/my pod\.json:1:2: /, 'the source is named as given');
});

/** readJson's value with objects as plain objects, to compare with JSON.parse's. */
function plain(value: JsonValue): unknown {
  if (Array.isArray(value)) return value.map(plain);
  if (value instanceof Map) return Object.fromEntries([...value].map(([k, v]) => [k, plain(v)]));
  return value;
}

test('the JSON reader reads what JSON.parse reads', (t) => {
  const texts = [
    '{"a": [1, -0.5, 2e3, 1E-2, 0, -0], "b": {"c": null, "d": [true, false, []], "e": {}}}',
    ' "\\" \\\\ \\/ \\b \\f \\n \\r \\t \\u00e9 \\ud83d\\ude00 é 😀" ',
    '[]', '{}', '0', 'null', '\t\r\n[\n1\n]\n',
  ];
  for (const text of texts) t.deepEqual(plain(readJson(text)), JSON.parse(text), text);
  const proto = readJson('{"__proto__": {"polluted": true}}');
  t.true(proto instanceof Map && proto.get('__proto__') instanceof Map, 'a "__proto__" field is a field');
  t.is(({} as Record<string, unknown>).polluted, undefined);
  const err = t.throws(() => readJson('[\n  1,\n  "😀", 😀]'), { instanceOf: JsonSyntaxError });
  t.deepEqual([err?.line, err?.column, err?.reason], [3, 8, 'expected a value (an object, array, string, number, true, false or null), got "😀"'], 'a column counts characters, not UTF-16 units');
});
