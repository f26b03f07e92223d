import test from 'ava';
import { containerSpec, DEFAULT_PATH } from '../../image/run-spec.js';
import { parseGroup, parsePasswd, type Accounts } from '../../image/accounts.js';
import type { ImageConfig } from '../../image/image-config.js';

const accounts: Accounts = {
  passwd: parsePasswd('root:x:0:0:root:/root:/bin/sh\nnginx:x:101:101:nginx:/var/cache/nginx:/sbin/nologin\nbroken line\napp:x:1000:1000::/home/app:/bin/sh\n'),
  group: parseGroup('root:x:0:\nnginx:x:101:\nwww:x:33:nginx,app\nvideo:x:44:app\n'),
};

function image(config: ImageConfig['config']): ImageConfig {
  return { rootfs: { type: 'layers', diff_ids: [] }, ...(config ? { config } : {}) };
}

const nginx = image({
  Entrypoint: ['/docker-entrypoint.sh'],
  Cmd: ['nginx', '-g', 'daemon off;'],
  Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'NGINX_VERSION=1.25.3'],
  WorkingDir: '',
  ExposedPorts: { '80/tcp': {}, '53/udp': {}, '8000-8001': {} },
  Volumes: { '/var/cache/nginx': {}, '/data': {} },
  StopSignal: 'SIGQUIT',
  Labels: { maintainer: 'x' },
});

test('the image config as docker applies it', (t) => {
  t.deepEqual(containerSpec(nginx, {}, accounts), {
    args: ['/docker-entrypoint.sh', 'nginx', '-g', 'daemon off;'],
    env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'NGINX_VERSION=1.25.3', 'HOME=/root'],
    cwd: '/',
    user: { uid: 0, gid: 0, additionalGids: [] },
    exposedPorts: [{ port: 80, protocol: 'tcp' }, { port: 53, protocol: 'udp' }, { port: 8000, protocol: 'tcp' }, { port: 8001, protocol: 'tcp' }],
    volumes: ['/data', '/var/cache/nginx'],
    labels: { maintainer: 'x' },
    stopSignal: 'SIGQUIT',
  });
});

test('command arguments replace Cmd; --entrypoint replaces Entrypoint and drops Cmd', (t) => {
  t.deepEqual(containerSpec(nginx, { command: ['nginx', '-t'] }).args, ['/docker-entrypoint.sh', 'nginx', '-t']);
  t.deepEqual(containerSpec(nginx, { entrypoint: ['/bin/sh'] }).args, ['/bin/sh']);
  t.deepEqual(containerSpec(nginx, { entrypoint: ['/bin/sh'], command: ['-c', 'true'] }).args, ['/bin/sh', '-c', 'true']);
  t.deepEqual(containerSpec(nginx, { entrypoint: [], command: ['ls'] }).args, ['ls']);
  t.throws(() => containerSpec(nginx, { entrypoint: [] }), { message: /no command specified/ });
  t.throws(() => containerSpec(image(undefined)), { message: /no command specified/ });
});

test('environment: overrides by key, PATH and HOME defaults', (t) => {
  const spec = containerSpec(image({ Cmd: ['x'], Env: ['A=1', 'B=2'] }), { env: ['B=3', 'C=a=b'], user: 'app' }, accounts);
  t.deepEqual(spec.env, [`PATH=${DEFAULT_PATH}`, 'A=1', 'B=3', 'C=a=b', 'HOME=/home/app']);
  t.deepEqual(containerSpec(image({ Cmd: ['x'], Env: ['HOME=/custom'] })).env, [`PATH=${DEFAULT_PATH}`, 'HOME=/custom']);
  t.throws(() => containerSpec(nginx, { env: ['NOVALUE'] }), { message: 'invalid environment variable "NOVALUE": expected KEY=VALUE' });
});

test('working directory: image value, absolute override, relative override refused', (t) => {
  t.is(containerSpec(image({ Cmd: ['x'], WorkingDir: '/srv/app/' })).cwd, '/srv/app');
  t.is(containerSpec(image({ Cmd: ['x'], WorkingDir: 'rel' })).cwd, '/rel');
  t.is(containerSpec(nginx, { workdir: '/tmp' }).cwd, '/tmp');
  t.throws(() => containerSpec(nginx, { workdir: 'tmp' }), { message: /needs to be an absolute path/ });
});

test('users and groups resolve in the image accounts, as runc does', (t) => {
  const user = (spec: string, groupAdd: string[] = []) => containerSpec(image({ Cmd: ['x'], User: spec }), { groupAdd }, accounts).user;
  t.deepEqual(user('nginx'), { uid: 101, gid: 101, additionalGids: [33] });
  t.deepEqual(user('app'), { uid: 1000, gid: 1000, additionalGids: [33, 44] });
  t.deepEqual(user('1000'), { uid: 1000, gid: 1000, additionalGids: [33, 44] });
  // An explicit group replaces the primary group and the memberships.
  t.deepEqual(user('app:video'), { uid: 1000, gid: 44, additionalGids: [] });
  t.deepEqual(user('nginx:2000'), { uid: 101, gid: 2000, additionalGids: [] });
  // Numeric ids need no entry.
  t.deepEqual(user('4242'), { uid: 4242, gid: 0, additionalGids: [] });
  t.deepEqual(user('4242:4343'), { uid: 4242, gid: 4343, additionalGids: [] });
  t.deepEqual(user('', ['video', '77']), { uid: 0, gid: 0, additionalGids: [44, 77] });
  t.is(containerSpec(image({ Cmd: ['x'], User: '4242' }), {}, accounts).env.at(-1), 'HOME=/');
  t.deepEqual(containerSpec(image({ Cmd: ['x'], User: 'nginx' }), { user: '0' }, accounts).user, { uid: 0, gid: 0, additionalGids: [] });
  t.throws(() => user('nobody'), { message: "unable to find user nobody: no matching entries in the image's /etc/passwd" });
  t.throws(() => user('app:nogroup'), { message: "unable to find group nogroup: no matching entries in the image's /etc/group" });
  t.throws(() => user('', ['nogroup']), { message: /unable to find group nogroup/ });
});

test('bad exposed ports in a config are refused', (t) => {
  t.throws(() => containerSpec(image({ Cmd: ['x'], ExposedPorts: { 'eighty/tcp': {} } })), { message: /invalid exposed port "eighty\/tcp"/ });
  t.throws(() => containerSpec(image({ Cmd: ['x'], ExposedPorts: { '70000': {} } })), { message: /invalid exposed port/ });
});
