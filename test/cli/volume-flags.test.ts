import test from 'ava';
import { commandLineVolumes, type AppVolumeFlags } from '../../cli/volume-flags.js';
import { MAX_MOUNTS, MAX_PATH_BYTES, MAX_VOLUMES, VolumeSpecError } from '../../pod/volume-spec.js';

// run's volume flags, pure: the pod's --volume (rkt's syntax), each app's
// --mount (rkt's, with a readOnly of its own) and -v (docker's), relative
// host paths against the base given. Every mistake is one line naming the
// flag as given and the part at fault.

const BASE = '/work/dir';
const app = (mount: string[] = [], bind: string[] = []): AppVolumeFlags => ({ mount, 'mount-host': bind });
const NAME_EXPECTED = 'expected a name of 1 to 63 letters, digits, "_", "." or "-", starting with a letter or digit';

function refused(t: import('ava').ExecutionContext, volumes: string[], apps: AppVolumeFlags[], message: string) {
  const err = t.throws(() => commandLineVolumes(volumes, apps, BASE), { instanceOf: VolumeSpecError }, message);
  t.is(err?.message, message);
}

test('--volume: rkt\'s NAME,kind=host,source=PATH and NAME,kind=empty, readOnly and the keys in any order', (t) => {
  const { volumes, mounts } = commandLineVolumes(
    ['data,kind=host,source=/srv/data', 'cache,kind=empty', 'ro,kind=host,source=rel/dir/,readOnly=true', 'up,source=../up,kind=host', 'rw,readOnly=false,kind=empty'],
    [app()],
    BASE,
  );
  t.deepEqual(volumes, [
    { name: 'data', kind: 'host', source: '/srv/data', readOnly: false },
    { name: 'cache', kind: 'empty', readOnly: false },
    { name: 'ro', kind: 'host', source: '/work/dir/rel/dir', readOnly: true },
    { name: 'up', kind: 'host', source: '/work/up', readOnly: false },
    { name: 'rw', kind: 'empty', readOnly: false },
  ]);
  t.deepEqual(mounts, [[]], 'a volume no app mounts is allowed');
  t.deepEqual(commandLineVolumes([], [app(), app()], BASE), { volumes: [], origins: [], mounts: [[], []] });
});

test('--mount and -v: each app\'s own; -v is a host volume of its own, named v1, v2, ... around the names given', (t) => {
  const { volumes, mounts, origins } = commandLineVolumes(
    ['data,kind=host,source=/srv/data', 'v1,kind=empty', 'ro,kind=host,source=/srv/ro,readOnly=true'],
    [
      app(['volume=data,target=/data', 'volume=ro,target=/ro', 'volume=v1,target=/scratch/,readOnly=true'], ['/srv/logs:/var/log', './conf:/etc/app:ro']),
      app(['target=/data//x,volume=data,readOnly=false', 'volume=ro,target=/ro,readOnly=false']),
      app([], ['/srv/logs:/var/log:rw']),
    ],
    BASE,
  );
  t.deepEqual(volumes.slice(3), [
    { name: 'v2', kind: 'host', source: '/srv/logs', readOnly: false },
    { name: 'v3', kind: 'host', source: '/work/dir/conf', readOnly: true },
    { name: 'v4', kind: 'host', source: '/srv/logs', readOnly: false },
  ], 'v1 is a given name: the -v volumes skip it');
  t.deepEqual(mounts, [
    [
      { volume: 'data', target: '/data', readOnly: false },
      { volume: 'ro', target: '/ro', readOnly: true },
      { volume: 'v1', target: '/scratch', readOnly: true },
      { volume: 'v2', target: '/var/log', readOnly: false },
      { volume: 'v3', target: '/etc/app', readOnly: true },
    ],
    [{ volume: 'data', target: '/data/x', readOnly: false }, { volume: 'ro', target: '/ro', readOnly: true }],
    [{ volume: 'v4', target: '/var/log', readOnly: false }],
  ], '--mount\'s first, then -v\'s; a read-only volume is read-only whatever the mount says');
  t.deepEqual(origins.map((o) => o.label), [
    '--volume data,kind=host,source=/srv/data', '--volume v1,kind=empty', '--volume ro,kind=host,source=/srv/ro,readOnly=true',
    '-v /srv/logs:/var/log', '-v ./conf:/etc/app:ro', '-v /srv/logs:/var/log:rw',
  ]);
  t.is(origins[4]!.field('source'), 'app 1: -v ./conf:/etc/app:ro: HOST-DIR', 'a -v\'s parts are named as its syntax names them');
  t.is(origins[0]!.field('source'), '--volume data,kind=host,source=/srv/data: source');
});

test('--volume: each mistake names the flag as given and the part at fault', (t) => {
  const cases: [string[], string][] = [
    [['data'], '--volume data: kind: expected "host" or "empty", got nothing'],
    [['data,kind=hostpath'], '--volume data,kind=hostpath: kind: expected "host" or "empty", got "hostpath"'],
    [['data,kind='], '--volume data,kind=: kind: expected "host" or "empty", got ""'],
    [['data,kind=host'], '--volume data,kind=host: source: expected a host directory (a volume of kind "host" needs one), got nothing'],
    [['data,kind=empty,source=/srv'], '--volume data,kind=empty,source=/srv: source: only a volume of kind "host" has a source'],
    [['data,kind=host,source='], '--volume data,kind=host,source=: source: expected a host directory, got ""'],
    [['data,host'], '--volume data,host: expected NAME,kind=host|empty[,source=PATH][,readOnly=true|false], got "host" where a KEY=VALUE goes'],
    [['data,kind=host,,source=/s'], '--volume data,kind=host,,source=/s: expected NAME,kind=host|empty[,source=PATH][,readOnly=true|false], got "" where a KEY=VALUE goes'],
    [['data,kind=empty,readonly=true'], '--volume data,kind=empty,readonly=true: unknown key "readonly" (did you mean "readOnly"?)'],
    [['data,kind=empty,mode=0700'], '--volume data,kind=empty,mode=0700: unknown key "mode" (expected one of kind, source, readOnly)'],
    [['data,kind=empty,kind=host'], '--volume data,kind=empty,kind=host: kind given twice: give it once'],
    [['data,kind=empty,readOnly=yes'], '--volume data,kind=empty,readOnly=yes: readOnly: expected true or false, got "yes"'],
    [['data,kind=empty,readOnly'], '--volume data,kind=empty,readOnly: expected NAME,kind=host|empty[,source=PATH][,readOnly=true|false], got "readOnly" where a KEY=VALUE goes'],
    [['kind=host,source=/srv'], `--volume kind=host,source=/srv: name: ${NAME_EXPECTED}, got "kind=host"`],
    [[',kind=empty'], `--volume ,kind=empty: name: ${NAME_EXPECTED}, got ""`],
    [['my data,kind=empty'], `--volume "my data,kind=empty": name: ${NAME_EXPECTED}, got "my data"`],
    [['d,kind=empty', 'e,kind=empty', 'd,kind=host,source=/s'], '--volume d,kind=host,source=/s: name: "d" is already the name of --volume d,kind=empty'],
    [['d,kind=host,source=/s\0x'], '--volume "d,kind=host,source=/s\\u0000x": source: expected a path without NUL characters, got "/s\\u0000x"'],
  ];
  for (const [volumes, message] of cases) refused(t, volumes, [app()], message);
  const deep = `/${'d'.repeat(MAX_PATH_BYTES - 11)}`; // with "/0123456789": one byte too many
  const err = t.throws(() => commandLineVolumes(['d,kind=host,source=0123456789'], [app()], deep), { instanceOf: VolumeSpecError });
  t.is(err?.message, `--volume d,kind=host,source=0123456789: source: expected a path of at most ${MAX_PATH_BYTES} bytes, got ${MAX_PATH_BYTES + 1}`, 'the bound is on the path resolved');
});

test('--mount and -v: each mistake names the flag, and the app in a pod of several', (t) => {
  const data = ['data,kind=empty'];
  const cases: [AppVolumeFlags[], string][] = [
    [[app(['volume=data'])], '--mount volume=data: target: expected an absolute path, got nothing'],
    [[app(['target=/d'])], '--mount target=/d: volume: expected the name of one of the pod\'s volumes, got nothing'],
    [[app(['volume=data,target=/d,ro'])], '--mount volume=data,target=/d,ro: expected volume=NAME,target=PATH[,readOnly=true|false], got "ro" where a KEY=VALUE goes'],
    [[app(['volume=data,target=/d,readonly=true'])], '--mount volume=data,target=/d,readonly=true: unknown key "readonly" (did you mean "readOnly"?)'],
    [[app(['volume=data,target=/d,target=/e'])], '--mount volume=data,target=/d,target=/e: target given twice: give it once'],
    [[app(['volume=data,target=/d,readOnly=1'])], '--mount volume=data,target=/d,readOnly=1: readOnly: expected true or false, got "1"'],
    [[app(['volume=logs,target=/l'])], '--mount volume=logs,target=/l: volume: no volume "logs" in the pod (its volumes: data)'],
    [[app(['volume=data,target=d'])], '--mount volume=data,target=d: target: expected an absolute path, got "d"'],
    [[app(['volume=data,target=/'])], '--mount volume=data,target=/: target: expected a directory below /, got "/"'],
    [[app(['volume=data,target=/a/../etc'])], '--mount volume=data,target=/a/../etc: target: expected a path without ".." components, got "/a/../etc"'],
    [[app(['volume=data,target=/data']), app(['volume=data,target=/d', 'volume=data,target=/d/'])], 'app 2: --mount volume=data,target=/d/: target: "/d" is already the target of --mount volume=data,target=/d'],
    [[app(['volume=data,target=/data'], ['/srv:/data/'])], '-v /srv:/data/: CONTAINER-DIR: "/data" is already the target of --mount volume=data,target=/data'],
    [[app([], ['/srv:/a']), app(['volume=v1,target=/x'])], 'app 2: --mount volume=v1,target=/x: volume: no volume "v1" in the pod (its volumes: data)'],
    [[app([], ['/srv'])], '-v /srv: expected HOST-DIR:CONTAINER-DIR[:ro|:rw]'],
    [[app(), app([], ['/a:/b:ro:x'])], 'app 2: -v /a:/b:ro:x: expected HOST-DIR:CONTAINER-DIR[:ro|:rw]'],
    [[app([], ['/a:/b:z'])], '-v /a:/b:z: expected ro or rw after CONTAINER-DIR, got "z"'],
    [[app([], ['/a:/b:'])], '-v /a:/b:: expected ro or rw after CONTAINER-DIR, got ""'],
    [[app([], [':/b'])], '-v :/b: HOST-DIR: expected a host directory, got ""'],
    [[app([], ['/a:b'])], '-v /a:b: CONTAINER-DIR: expected an absolute path, got "b"'],
    [[app([], ['/a:/'])], '-v /a:/: CONTAINER-DIR: expected a directory below /, got "/"'],
    [[app([], ['/a:/../b'])], '-v /a:/../b: CONTAINER-DIR: expected a path without ".." components, got "/../b"'],
  ];
  for (const [apps, message] of cases) refused(t, data, apps, message);
});

test(`at most MAX_VOLUMES (${MAX_VOLUMES}) volumes in a pod and MAX_MOUNTS (${MAX_MOUNTS}) mounts in an app, -v's counted`, (t) => {
  const empties = (n: number) => Array.from({ length: n }, (_, i) => `e${i},kind=empty`);
  const binds = (n: number) => Array.from({ length: n }, (_, i) => `/srv/${i}:/b${i}`);
  t.is(commandLineVolumes(empties(MAX_VOLUMES - 2), [app([], binds(2))], BASE).volumes.length, MAX_VOLUMES);
  refused(t, empties(MAX_VOLUMES - 2), [app([], binds(2)), app([], binds(1))], `a pod has at most ${MAX_VOLUMES} volumes (--volume and -v), got ${MAX_VOLUMES + 1}`);
  const mounts = (n: number) => Array.from({ length: n }, (_, i) => `volume=e0,target=/m${i}`);
  t.is(commandLineVolumes(empties(1), [app(mounts(MAX_MOUNTS - 2), binds(2))], BASE).mounts[0]!.length, MAX_MOUNTS);
  refused(t, empties(1), [app(), app(mounts(MAX_MOUNTS - 1), binds(2))], `app 2: an app has at most ${MAX_MOUNTS} mounts (--mount and -v), got ${MAX_MOUNTS + 1}`);
});
