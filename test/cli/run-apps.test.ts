import test from 'ava';
import { mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { parseRunApps, type ManifestReader, type PodFlags } from '../../cli/run-apps.js';
import { parseRunArgv } from './run-argv.js';
import { UserError } from '../../cli/user-error.js';
import { MAX_APPS, MAX_POD_DEVICES, type AppSpec } from '../../pod/pod-spec.js';
import { MAX_CPUS } from '../../vmm/vm.js';
import { repoRoot } from '../lab/exec.js';

// `vmctr run`'s pod of several apps: `---` between them, the pod's flags
// before the first image only, or a manifest with --pod. Every mistake is
// one line with exit status 125, as run's own.

const podDefaults: PodFlags = { rm: false, detach: false, name: undefined, hostname: undefined, interactive: false, tty: false, cpus: 1, memory: 256, net: undefined, port: [], ip: undefined, dns: [], 'storage-size': undefined, rootfs: undefined, 'insecure-options': undefined, root: undefined };
const noFiles: ManifestReader = (path) => {
  throw new Error(`ENOENT: no such file or directory, open '${path}'`);
};
const app = (name: string, image: string, more: Partial<AppSpec> = {}): AppSpec => ({ name, image, command: [], env: [], mounts: [], ...more });

function parsed(argv: string[], read = noFiles) {
  const result = parseRunApps(argv, read);
  if (result === 'help') throw new Error(`${argv.join(' ')}: help`);
  return result;
}

function refused(t: import('ava').ExecutionContext, argv: string[], message: string, read = noFiles) {
  const err = t.throws(() => parseRunApps(argv, read), { instanceOf: UserError }, argv.join(' '));
  t.is(err?.message, message, argv.join(' '));
  t.is(err?.exitCode, 125, argv.join(' '));
}

test('one app: the command line run reads today, its app named after its image', (t) => {
  const argvs = [
    ['default'],
    ['default', '--', 'echo', 'hi'],
    ['default', 'ls', '-l', '--rm'],
    ['--', 'default', '--', '--', 'x'],
    ['--rm', '-it', '-e', 'A=1', '-eB=2', '--env=C=x=y', '-w/tmp', '-u', 'vmctr:1', '--name=p', '--hostname', 'h', '--cpus=2', '--memory', '64', '--root', '/r', './rootfs.tar', 'sh'],
  ];
  for (const argv of argvs) {
    const today = parseRunArgv(argv);
    if (today === 'help') return t.fail();
    const { env, workdir, user, ...pod } = today.flags;
    const name = argv.includes('./rootfs.tar') ? 'rootfs' : 'default';
    t.deepEqual(parsed(argv), {
      request: { flags: pod },
      pod: { apps: [{ name, image: today.rootfs, command: today.command, env, ...(workdir ? { workdir } : {}), ...(user ? { user } : {}), mounts: [] }], volumes: [], exitOnFirst: false },
    }, argv.join(' '));
  }
});

test('two and three apps, each with its own flags, image and command', (t) => {
  t.deepEqual(parsed(['--rm', '--memory', '512', '-e', 'A=1', 'default', 'sleep', '1', '---', '-e', 'B=2', '-u', 'nobody', 'docker.io/library/alpine:3.19']), {
    request: { flags: { ...podDefaults, rm: true, memory: 512 } },
    pod: { apps: [app('default', 'default', { command: ['sleep', '1'], env: ['A=1'] }), app('alpine', 'docker.io/library/alpine:3.19', { env: ['B=2'], user: 'nobody' })], volumes: [], exitOnFirst: false },
  });
  t.deepEqual(parsed(['--exit-on-first', '--app-name', 'main', 'alpine', '---', 'alpine', '---', '-w', '/srv', '--app-name=web', '-e', 'PORT=80', '--', './nginx.tar.gz', 'nginx', '-g', 'daemon off;']), {
    request: { flags: podDefaults },
    pod: {
      apps: [app('main', 'alpine'), app('alpine', 'alpine'), app('web', './nginx.tar.gz', { command: ['nginx', '-g', 'daemon off;'], env: ['PORT=80'], workdir: '/srv' })],
      volumes: [],
      exitOnFirst: true,
    },
  });
  t.deepEqual(parsed(['-it', 'alpine', 'sh', '---', 'alpine']).request.flags, { ...podDefaults, interactive: true, tty: true }, '-i and -t are pod flags (the first app\'s terminal)');
  t.deepEqual(parsed(['alpine', '---', 'alpine:edge', '---', `localhost:5000/alpine@sha256:${'0'.repeat(64)}`]).pod.apps.map((a) => a.name), ['alpine', 'alpine-2', 'alpine-3']);
});

test('after an image, -- and flags are its command\'s, in every app', (t) => {
  const { pod } = parsed(['default', 'sh', '-c', 'x', '--', '-e', 'A', '---', 'alpine', '--', 'echo', '--', '--memory', '1', '-h', '---', 'busybox', '--rm', '--app-name', 'x']);
  t.deepEqual(pod.apps.map((a) => a.command), [['sh', '-c', 'x', '--', '-e', 'A'], ['echo', '--', '--memory', '1', '-h'], ['--rm', '--app-name', 'x']]);
  t.deepEqual(pod.apps.map((a) => a.env), [[], [], []]);
});

test('a pod flag after a --- is refused by name', (t) => {
  const cases: [string[], string][] = [
    [['default', '---', '--memory', '512', 'alpine'], 'app 2: --memory applies to the pod: put it before the first image'],
    [['default', '---', '--memory=512', 'alpine'], 'app 2: --memory applies to the pod: put it before the first image'],
    [['default', '---', 'alpine', '---', '-e', 'A=1', '--rm', 'alpine'], 'app 3: --rm applies to the pod: put it before the first image'],
    [['default', '---', '-i', 'alpine'], 'app 2: -i applies to the pod: put it before the first image'],
    [['default', '---', '-te', 'A=1', 'alpine'], 'app 2: -t applies to the pod: put it before the first image'],
    [['default', '---', '--name', 'p', 'alpine'], 'app 2: --name applies to the pod: put it before the first image'],
    [['default', '---', '--exit-on-first', 'alpine'], 'app 2: --exit-on-first applies to the pod: put it before the first image'],
    [['default', '---', '--pod', 'pod.json'], 'app 2: --pod applies to the pod: put it before the first image'],
    [['default', '---', '--root', '/r', 'alpine'], 'app 2: --root applies to the pod: put it before the first image'],
  ];
  for (const [argv, message] of cases) refused(t, argv, message);
});

test('every other mistake is one line, naming the app after the first', (t) => {
  const cases: [string[], string][] = [
    [[], 'ROOTFS is missing: default, a root filesystem directory or tar, or an image name'],
    [['---', 'alpine'], 'ROOTFS is missing: default, a root filesystem directory or tar, or an image name'],
    [['default', '---'], 'app 2: ROOTFS is missing: default, a root filesystem directory or tar, or an image name'],
    [['default', '---', '-e', 'FOO', 'alpine'], 'app 2: -e needs KEY=VALUE, got FOO'],
    [['default', '---', 'alpine', '---', '-w', 'srv', 'alpine'], 'app 3: -w needs an absolute path, got srv'],
    [['default', '---', '--frobnicate', 'alpine'], 'app 2: unknown flag --frobnicate: vmctr run ... --- takes -e/--env, -w/--workdir, -u/--user, --app-name, --mount, -v/--mount-host'],
    [['default', '---', '-u', 'a', '-u', 'b', 'alpine'], 'app 2: -u given more than once (-u a, then b): give it once'],
    [['--frobnicate', 'default'], 'unknown flag --frobnicate: vmctr run takes --rm, -d/--detach, --name, -e/--env, -w/--workdir, -u/--user, --hostname, -i/--interactive, -t/--tty, --cpus, --memory, --storage-size, --rootfs, --net, -p/--port, --ip, --dns, --insecure-options, --app-name, --mount, -v/--mount-host, --volume, --exit-on-first, --pod, --root'],
    [['--cpus', '0', 'default', '---', '-e', 'X', 'alpine'], `--cpus needs an integer from 1 to ${MAX_CPUS}, got 0`],
    [['--app-name', '-x', 'default'], '--app-name needs a name of 1 to 63 letters, digits, "_", "." or "-", starting with a letter or digit, got -x'],
    [['--app-name', 'web', 'default', '---', '--app-name', 'web', 'alpine'], 'app 2: --app-name: "web" is already the name of app 1'],
  ];
  for (const [argv, message] of cases) refused(t, argv, message);
});

/** `n` apps of alpine on the command line. */
const apps = (n: number) => Array.from({ length: n }, (_, i) => (i === 0 ? ['alpine'] : ['---', 'alpine'])).flat();

test('at most MAX_APPS (14) apps', (t) => {
  t.is(parsed(apps(MAX_APPS)).pod.apps.length, MAX_APPS);
  t.is(parsed(apps(MAX_APPS)).pod.apps.at(-1)?.name, `alpine-${MAX_APPS}`);
  refused(t, apps(MAX_APPS + 1), `a pod has at most ${MAX_APPS} apps (each has its own disk), got ${MAX_APPS + 1}`);
});

test('help wins in any app\'s flags, even after a mistake, but not in a command', (t) => {
  for (const argv of [['-h'], ['default', '---', '-h'], ['--cpus', '0', 'default', '---', '--help', 'alpine'], ['default', '---', '--memory', '1', '-h', 'alpine'], ['--pod', 'pod.json', '-h'], ['-v', 'nope', '--volume', 'x', '-h', 'default']]) {
    t.is(parseRunApps(argv, noFiles), 'help', argv.join(' '));
  }
  t.deepEqual(parsed(['default', '---', 'alpine', '-h']).pod.apps[1]?.command, ['-h']);
});

const manifests: Record<string, string> = {
  'pod.json': JSON.stringify({ apps: [{ image: 'alpine', env: ['A=1'] }, { name: 'web', image: './web.tar', command: ['httpd', '-f'] }], cpus: 2, memory: 512, hostname: 'pod-host', exitOnFirst: true }),
  'small.json': JSON.stringify({ apps: [{ image: 'default' }] }),
  'bad.json': '{"apps": [{"image": "alpine", "comand": ["x"]}]}',
  'broken.json': '{"apps": [\n',
};
const files: ManifestReader = (path) => manifests[path] ?? noFiles(path);

test('--pod FILE: the manifest gives the apps; cpus, memory and hostname given as flags win', (t) => {
  const apps = [app('alpine', 'alpine', { env: ['A=1'] }), app('web', './web.tar', { command: ['httpd', '-f'] })];
  t.deepEqual(parsed(['--pod', 'pod.json'], files), { request: { flags: { ...podDefaults, cpus: 2, memory: 512, hostname: 'pod-host' } }, pod: { apps, volumes: [], exitOnFirst: true } });
  t.deepEqual(parsed(['--rm', '--cpus', '4', '--memory=1024', '--hostname', 'mine', '--pod', 'pod.json'], files), {
    request: { flags: { ...podDefaults, rm: true, cpus: 4, memory: 1024, hostname: 'mine' } },
    pod: { apps, volumes: [], exitOnFirst: true },
  });
  t.deepEqual(parsed(['--pod', 'small.json'], files), { request: { flags: podDefaults }, pod: { apps: [app('default', 'default')], volumes: [], exitOnFirst: false } }, 'what neither says is the default');
  t.true(parsed(['--exit-on-first', '--pod', 'small.json'], files).pod.exitOnFirst);
  const read: string[] = [];
  parsed(['--pod', 'small.json'], (path) => (read.push(path), files(path)));
  t.deepEqual(read, ['small.json'], 'the file is read once, by the path given');
});

test('--pod FILE refuses an image, app flags and ---, and reports the manifest\'s mistakes', (t) => {
  const cases: [string[], string][] = [
    [['--pod', 'pod.json', 'alpine'], '--pod pod.json gives the apps: no ROOTFS after the flags, got alpine'],
    [['--pod', 'pod.json', '--', 'alpine', 'sh'], '--pod pod.json gives the apps: no ROOTFS after the flags, got alpine'],
    [['--pod', 'pod.json', '---', 'alpine'], '--pod pod.json gives the apps: no --- after the flags'],
    [['-e', 'A=1', '--pod', 'pod.json'], '-e/--env cannot be used with --pod: give each app\'s "env" in pod.json'],
    [['--pod', 'pod.json', '-w', '/srv'], '-w/--workdir cannot be used with --pod: give each app\'s "workdir" in pod.json'],
    [['--pod', 'pod.json', '-u', 'nobody'], '-u/--user cannot be used with --pod: give each app\'s "user" in pod.json'],
    [['--pod', 'pod.json', '--app-name', 'x'], '--app-name cannot be used with --pod: give each app\'s "name" in pod.json'],
    [['--pod', 'bad.json'], 'bad.json: apps[0].comand: unknown field (did you mean "command"?)'],
    [['--pod', 'broken.json'], 'broken.json:2:1: expected a value (an object, array, string, number, true, false or null), got the end of the file'],
    [['--pod', 'none.json'], 'cannot read the pod manifest: ENOENT: no such file or directory, open \'none.json\''],
    [['--pod'], '--pod needs a value, got nothing'],
  ];
  for (const [argv, message] of cases) refused(t, argv, message, files);
  t.is(parseRunApps(['-it', '--pod', 'none.json', '--help'], noFiles), 'help', 'help reads no file');
});

test('docs/pod-manifest.md: its manifest and its command line are the same pod', (t) => {
  const doc = readFileSync(join(repoRoot, 'docs/pod-manifest.md'), 'utf8');
  const json = /```json\n([^`]*)```/.exec(doc)?.[1];
  t.truthy(json);
  const fromManifest = parsed(['--rm', '--pod', 'pod.json'], () => json!);
  const fromArgv = parsed([
    '--rm', '--exit-on-first', '--cpus', '2', '--memory', '512', '--hostname', 'web',
    '--app-name', 'web', '-e', 'NGINX_PORT=8080', '-w', '/usr/share/nginx/html', '-u', 'nginx', 'docker.io/library/nginx:1.25', 'nginx', '-g', 'daemon off;',
    '---', './sidecar.tar', '/bin/sidecar', '--interval', '5',
    '---', 'default', 'sh', '-c', 'sleep 3600',
  ]);
  t.deepEqual(fromManifest, fromArgv);
  t.deepEqual(fromManifest.pod.apps.map((a) => a.name), ['web', 'sidecar', 'default']);
});

// Host directories for the volume tests: real paths, as the pod is given them.
const work = realpathSync(mkdtempSync(join(tmpdir(), 'vmctr-run-apps-')));
mkdirSync(join(work, 'data'));
mkdirSync(join(work, 'logs'));
writeFileSync(join(work, 'file'), '');
symlinkSync(join(work, 'data'), join(work, 'link'));
test.after.always(() => rmSync(work, { recursive: true, force: true }));
/** `work`'s `path` as a path relative to the working directory, which -v and --volume resolve it against. */
const fromCwd = (path: string) => relative(process.cwd(), join(work, path));

test('volumes: --volume for the pod, --mount and -v for each app; host directories as their real paths', (t) => {
  const { request, pod } = parsed([
    '--volume', `data,kind=host,source=${work}/link,readOnly=true`, '--volume=cache,kind=empty',
    '--mount', 'volume=data,target=/data', '--mount=volume=cache,target=/cache/', '-v', `${fromCwd('logs')}:/var/log`, 'default', 'sh',
    '---', '--mount', 'volume=cache,target=/cache,readOnly=true', `-v${work}/data:/srv:ro`, '--mount-host', `${fromCwd('link')}/:/link`, 'alpine',
    '---', 'busybox',
  ]);
  t.deepEqual(pod.volumes, [
    { name: 'data', kind: 'host', source: `${work}/data`, readOnly: true },
    { name: 'cache', kind: 'empty', readOnly: false },
    { name: 'v1', kind: 'host', source: `${work}/logs`, readOnly: false },
    { name: 'v2', kind: 'host', source: `${work}/data`, readOnly: true },
    { name: 'v3', kind: 'host', source: `${work}/data`, readOnly: false },
  ]);
  t.deepEqual(pod.apps.map((a) => a.mounts), [
    [{ volume: 'data', target: '/data', readOnly: true }, { volume: 'cache', target: '/cache', readOnly: false }, { volume: 'v1', target: '/var/log', readOnly: false }],
    [{ volume: 'cache', target: '/cache', readOnly: true }, { volume: 'v2', target: '/srv', readOnly: true }, { volume: 'v3', target: '/link', readOnly: false }],
    [],
  ]);
  t.deepEqual(pod.apps.map((a) => a.command), [['sh'], [], []]);
  t.deepEqual(request.flags, podDefaults, 'the volumes are the pod\'s, not flags');
});

test('volumes: each mistake is one line naming the flag, the app after the first and the part at fault; the host is looked at last', (t) => {
  const cases: [string[], string][] = [
    [['--volume', `d,kind=host,source=${work}/nope`, 'default'], `--volume d,kind=host,source=${work}/nope: source: "${work}/nope" does not exist`],
    [['--volume', `d,kind=host,source=${fromCwd('nope')}`, 'default'], `--volume d,kind=host,source=${fromCwd('nope')}: source: "${work}/nope" does not exist`],
    [['-v', `${work}/file:/f`, 'default'], `-v ${work}/file:/f: HOST-DIR: "${work}/file" is not a directory (only a directory can be a volume)`],
    [['default', '---', '-v', `${fromCwd('nope')}:/n`, 'alpine'], `app 2: -v ${fromCwd('nope')}:/n: HOST-DIR: "${work}/nope" does not exist`],
    [['--volume', 'd,kind=host,source=/no/such/dir', '--mount', 'volume=e,target=/e', 'default'], '--mount volume=e,target=/e: volume: no volume "e" in the pod (its volumes: d)'],
    [['--volume', 'd,kind=empty', 'default', '---', '--mount', 'volume=d', 'alpine'], 'app 2: --mount volume=d: target: expected an absolute path, got nothing'],
    [['--volume', 'd,kind=tmpfs', 'default'], '--volume d,kind=tmpfs: kind: expected "host" or "empty", got "tmpfs"'],
    [['-v', '/srv', 'default'], '-v /srv: expected HOST-DIR:CONTAINER-DIR[:ro|:rw]'],
    [['default', '---', '--volume', 'd,kind=empty', 'alpine'], 'app 2: --volume applies to the pod: put it before the first image'],
    [['default', '---', '-v'], 'app 2: -v needs a value, got nothing'],
    [['--mount'], '--mount needs a value, got nothing'],
  ];
  for (const [argv, message] of cases) refused(t, argv, message);
});

test('volumes in a manifest: a relative source from the manifest\'s directory, its host checked; --volume, --mount and -v go in the manifest', (t) => {
  const manifest = JSON.stringify({
    volumes: [{ name: 'data', kind: 'host', source: 'link' }, { name: 'cache', kind: 'empty' }],
    apps: [{ image: 'alpine', mounts: [{ volume: 'data', target: '/data', readOnly: true }] }, { image: 'busybox', mounts: [{ volume: 'cache', target: '/cache' }] }],
  });
  for (const path of [join(work, 'pod.json'), fromCwd('pod.json')]) {
    const { pod } = parsed(['--pod', path], () => manifest);
    t.deepEqual(pod.volumes, [{ name: 'data', kind: 'host', source: `${work}/data`, readOnly: false }, { name: 'cache', kind: 'empty', readOnly: false }], path);
    t.deepEqual(pod.apps.map((a) => a.mounts), [[{ volume: 'data', target: '/data', readOnly: true }], [{ volume: 'cache', target: '/cache', readOnly: false }]], path);
  }
  const missing = JSON.stringify({ volumes: [{ name: 'a', kind: 'empty' }, { name: 'b', kind: 'host', source: 'nope' }], apps: [{ image: 'alpine' }] });
  refused(t, ['--pod', 'pods/pod.json'], `pods/pod.json: volumes[1].source: "${join(process.cwd(), 'pods/nope')}" does not exist`, () => missing);
  const cases: [string[], string][] = [
    [['--volume', 'd,kind=empty', '--pod', 'pod.json'], '--volume cannot be used with --pod: give the pod\'s "volumes" in pod.json'],
    [['--pod', 'pod.json', '--mount', 'volume=d,target=/d'], '--mount cannot be used with --pod: give each app\'s "mounts" in pod.json'],
    [['-v', '/srv:/srv', '--pod', 'pod.json'], '-v/--mount-host cannot be used with --pod: give each app\'s "mounts" in pod.json'],
  ];
  for (const [argv, message] of cases) refused(t, argv, message, () => manifest);
});

test(`a pod's apps, volumes and network share ${MAX_POD_DEVICES} devices: a disk per app, one for all volumes, one for --net`, (t) => {
  const n = MAX_POD_DEVICES;
  t.is(parsed(['--net', 'none', ...apps(n)]).pod.apps.length, n, '--net none takes no device');
  t.is(parsed(['--net', 'vmctr0', ...apps(n - 1)]).pod.apps.length, n - 1);
  t.is(parsed(['--volume', 'a,kind=empty', '--volume', 'b,kind=empty', ...apps(n - 1)]).pod.volumes.length, 2, 'all volumes are one device');
  refused(t, ['--net', 'vmctr0', ...apps(n)], `a pod has ${n} devices for its apps, volumes and network: ${n} apps (a disk each) and --net vmctr0 (one) need ${n + 1}`);
  refused(t, ['-v', `${work}/data:/d`, ...apps(n)], `a pod has ${n} devices for its apps, volumes and network: ${n} apps (a disk each) and volumes (one device for all) need ${n + 1}`);
  refused(t, ['--net=vmctr0', '--volume', 'a,kind=empty', ...apps(n - 1)], `a pod has ${n} devices for its apps, volumes and network: ${n - 1} apps (a disk each), volumes (one device for all) and --net vmctr0 (one) need ${n + 1}`);
  const full = JSON.stringify({ volumes: [{ name: 'a', kind: 'empty' }], apps: Array.from({ length: n }, () => ({ image: 'alpine' })) });
  refused(t, ['--pod', 'pod.json'], `a pod has ${n} devices for its apps, volumes and network: ${n} apps (a disk each) and volumes (one device for all) need ${n + 1}`, () => full);
});

test('docs/pod-manifest.md: its volumes manifest and its command line are the same pod', (t) => {
  const doc = readFileSync(join(repoRoot, 'docs/pod-manifest.md'), 'utf8');
  const json = [...doc.matchAll(/```json\n([^`]*)```/g)].map((m) => m[1]!).find((text) => text.includes('"volumes"'));
  t.truthy(json);
  const dir = join(work, 'docs');
  mkdirSync(join(dir, 'site'), { recursive: true });
  const fromManifest = parsed(['--pod', join(dir, 'pod.json')], () => json!);
  const fromArgv = parsed([
    '--volume', `site,kind=host,source=${relative(process.cwd(), join(dir, 'site'))},readOnly=true`, '--volume', 'cache,kind=empty',
    '--app-name', 'web', '--mount', 'volume=site,target=/usr/share/nginx/html', '--mount', 'volume=cache,target=/var/cache/nginx', 'docker.io/library/nginx:1.25',
    '---', '--app-name', 'warmer', '--mount', 'volume=cache,target=/cache,readOnly=true', 'default', 'sh', '-c', 'sleep 3600',
  ]);
  t.deepEqual(fromManifest, fromArgv);
  t.deepEqual(fromManifest.pod.volumes, [{ name: 'site', kind: 'host', source: join(dir, 'site'), readOnly: true }, { name: 'cache', kind: 'empty', readOnly: false }]);
  t.deepEqual(fromManifest.pod.apps.map((a) => a.mounts.map((m) => `${m.volume}:${m.target}:${m.readOnly ? 'ro' : 'rw'}`)), [
    ['site:/usr/share/nginx/html:ro', 'cache:/var/cache/nginx:rw'],
    ['cache:/cache:ro'],
  ]);
});
