import test from 'ava';
import { containerEnv } from '../../guest-agent/container-env.js';
import { resolveUser } from '../../guest-agent/users.js';
import { GROUP, PASSWD } from './fixtures.js';

test('no user is root, with root\'s memberships', (t) => {
  t.deepEqual(resolveUser(undefined, [], PASSWD, GROUP), { uid: 0, gid: 0, groups: [0], home: '/root' });
});

test('a name resolves through passwd, memberships through group', (t) => {
  t.deepEqual(resolveUser('app', [], PASSWD, GROUP), { uid: 1000, gid: 1000, groups: [1000, 2000], home: '/home/app' });
});

test('an explicit group replaces the memberships', (t) => {
  t.deepEqual(resolveUser('app:extra', [], PASSWD, GROUP), { uid: 1000, gid: 2000, groups: [2000], home: '/home/app' });
  t.deepEqual(resolveUser('app:3000', ['app'], PASSWD, GROUP), { uid: 1000, gid: 3000, groups: [3000, 1000], home: '/home/app' });
});

test('a uid matching an entry takes its group and home; a bare uid takes group 0 and /', (t) => {
  t.deepEqual(resolveUser('1000', [], PASSWD, GROUP), { uid: 1000, gid: 1000, groups: [1000, 2000], home: '/home/app' });
  t.deepEqual(resolveUser('4242', [], PASSWD, GROUP), { uid: 4242, gid: 0, groups: [0], home: '/' });
  t.deepEqual(resolveUser('4242', [], '', ''), { uid: 4242, gid: 0, groups: [0], home: '/' });
});

test('unknown names are errors, as with runc', (t) => {
  t.throws(() => resolveUser('ghost', [], PASSWD, GROUP), { message: 'unable to find user ghost: no matching entries in passwd file' });
  t.throws(() => resolveUser('app:ghosts', [], PASSWD, GROUP), { message: 'unable to find group ghosts: no matching entries in group file' });
  t.throws(() => resolveUser('app', ['ghosts'], PASSWD, GROUP), { message: /unable to find group ghosts/ });
  t.throws(() => resolveUser('a:b:c', [], PASSWD, GROUP), { message: /bad user spec/ });
  t.throws(() => resolveUser('99999999999', [], PASSWD, GROUP), { message: /unable to find user/ });
});

test('malformed passwd lines are skipped, not trusted', (t) => {
  const passwd = '# comment\nbroken\nx:x:notanumber:0::/:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n';
  t.deepEqual(resolveUser('app', [], passwd, ''), { uid: 1000, gid: 1000, groups: [1000], home: '/home/app' });
  t.throws(() => resolveUser('x', [], passwd, ''));
});

test('the environment gets PATH, HOME, HOSTNAME and TERM only where the spec leaves them unset', (t) => {
  const user = { uid: 1000, gid: 1000, groups: [1000], home: '/home/app' };
  const spec = { id: 1, rootfs: { directory: '/' }, args: ['sh'] };
  t.deepEqual(containerEnv({ ...spec, env: ['A=1=2', 'B='], hostname: 'h', tty: { rows: 1, cols: 1 } }, user), {
    A: '1=2',
    B: '',
    PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
    HOME: '/home/app',
    HOSTNAME: 'h',
    TERM: 'xterm',
  });
  t.deepEqual(containerEnv({ ...spec, env: ['PATH=/bin', 'HOME=/x'] }, user), { PATH: '/bin', HOME: '/x' });
});
