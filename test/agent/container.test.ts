import test from 'ava';
import { randomBytes } from 'node:crypto';
import { access, readFile, rm } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { exitCode } from '../../guest-agent/client.js';
import { INITIAL_CREDIT } from '../../guest-agent/protocol.js';
import { buildHelper, buildRootfs, collect, GROUP, runContainer, startAgent, TextSink, type AgentUnderTest } from './fixtures.js';

let agent: AgentUnderTest;
let rootfs: string;

test.before(async (t) => {
  rootfs = await buildRootfs();
  agent = await startAgent(await buildHelper());
  t.log(`agent: hello ${agent.helloMs.toFixed(0)} ms after spawn (${agent.client.hello.agentStartMs} ms of it inside the agent), node ${agent.client.hello.node}`);
});

test.after.always(async (t) => {
  if (agent) t.is(await agent.stop(), 0, agent.stderr());
  await rm(rootfs, { recursive: true, force: true });
});

const sh = (script: string) => ({ rootfs: { directory: rootfs }, args: ['sh', '-c', script] });

test('hello carries the protocol version, the agent version and the kernel', (t) => {
  const { hello } = agent.client;
  t.is(hello.protocol, 1);
  t.regex(hello.agent, /^\d+\.\d+\.\d+$/);
  t.truthy(hello.kernel);
  t.true(hello.uptime > 0);
});

test('exit codes: 0, 3, and a process that kills itself with SIGKILL', async (t) => {
  const [zero, three, killed] = await Promise.all([
    runContainer(agent.client, sh('true')),
    runContainer(agent.client, sh('exit 3')),
    runContainer(agent.client, sh('kill -9 $$')),
  ]);
  t.deepEqual(zero.exit, { code: 0 });
  t.deepEqual(three.exit, { code: 3 });
  t.deepEqual(killed.exit, { signal: 9 });
  t.is(exitCode(killed.exit), 137);
});

function numbers(from: number, to: number): string {
  return Array.from({ length: to - from + 1 }, (_, i) => `${from + i}\n`).join('');
}

test('10 MiB on stdout and on stderr at once arrive complete, separate and in order', async (t) => {
  const started = performance.now();
  const { stdout, stderr, exit } = await runContainer(agent.client, sh('seq 1 1500000 >&2 & seq 2 1500001; wait'));
  const seconds = (performance.now() - started) / 1000;
  t.deepEqual(exit, { code: 0 });
  t.true(stdout.length > 10 * 1024 * 1024);
  t.true(stdout.toString() === numbers(2, 1500001), 'stdout is exactly seq 2 1500001');
  t.true(stderr.toString() === numbers(1, 1500000), 'stderr is exactly seq 1 1500000');
  t.log(`${((stdout.length + stderr.length) / 1024 / 1024).toFixed(1)} MiB in ${seconds.toFixed(2)} s`);
});

test('a reader that stops reading stops the producer: buffering stays within the credit', async (t) => {
  const proc = agent.client.startContainer(sh('head -c 20971520 /dev/zero; echo done >&2'));
  const stderr = new TextSink(proc.stderr);
  await sleep(1000);
  // Nobody reads stdout: the host holds at most one credit's worth and the producer is blocked.
  t.true(proc.stdout.readableLength <= INITIAL_CREDIT, `${proc.stdout.readableLength} bytes buffered`);
  t.is(stderr.text, '');
  let total = 0;
  for await (const chunk of proc.stdout) total += (chunk as Buffer).length;
  t.is(total, 20 * 1024 * 1024);
  t.is(await stderr.ended, 'done\n');
  t.deepEqual(await proc.exit, { code: 0 });
});

test('stdin is piped through, and its end reaches the process', async (t) => {
  const input = randomBytes(3 * 1024 * 1024);
  const { stdout, stderr, exit } = await runContainer(agent.client, sh('cat; echo eof >&2'), input);
  t.deepEqual(exit, { code: 0 });
  t.true(stdout.equals(input));
  t.is(stderr.toString(), 'eof\n');
});

test('without stdin the process reads end of file at once', async (t) => {
  const proc = agent.client.startContainer(sh('cat; echo eof'));
  t.is(proc.stdin, null);
  const { stdout, exit } = await collect(proc);
  t.deepEqual(exit, { code: 0 });
  t.is(stdout.toString(), 'eof\n');
});

test('env, cwd, hostname, and a user by name from the container\'s own /etc/passwd', async (t) => {
  const { stdout, exit } = await runContainer(agent.client, {
    ...sh('echo "$FOO"; pwd; id; echo "$HOME"; hostname; cat /etc/hostname; echo "$HOSTNAME"'),
    env: ['FOO=bar baz', 'PATH=/bin'],
    cwd: '/home/app/work',
    user: 'app',
    hostname: 'box1',
  });
  t.deepEqual(exit, { code: 0 });
  t.deepEqual(stdout.toString().split('\n'), [
    'bar baz',
    '/home/app/work',
    'uid=1000(app) gid=1000(app) groups=1000(app),2000(extra)',
    '/home/app',
    'box1',
    'box1',
    'box1',
    '',
  ]);
  t.not(hostname(), 'box1', 'the hostname is the container\'s own (a UTS namespace)');
});

test('numeric user and group, and additional groups by name', async (t) => {
  const { stdout, exit } = await runContainer(agent.client, { ...sh('id; echo "$HOME"'), user: '4242:2000', additionalGroups: ['app'] });
  t.deepEqual(exit, { code: 0 });
  // The kernel keeps supplementary groups sorted.
  t.is(stdout.toString(), 'uid=4242 gid=2000(extra) groups=1000(app),2000(extra)\n/\n');
});

test('an unknown user name is an error (125), as with runc', async (t) => {
  const { exit } = await runContainer(agent.client, { ...sh('true'), user: 'nobody2' });
  t.deepEqual(exit, { code: 125, error: 'unable to find user nobody2: no matching entries in passwd file' });
});

test('a missing command is 127, a file that is not executable 126', async (t) => {
  const [missing, notExecutable, missingPath] = await Promise.all([
    runContainer(agent.client, { rootfs: { directory: rootfs }, args: ['nope'] }),
    runContainer(agent.client, { rootfs: { directory: rootfs }, args: ['/etc/passwd'] }),
    runContainer(agent.client, { rootfs: { directory: rootfs }, args: ['/bin/nope'] }),
  ]);
  t.deepEqual(missing.exit, { code: 127, error: 'exec: "nope": executable file not found in $PATH' });
  t.deepEqual(notExecutable.exit, { code: 126, error: 'exec: "/etc/passwd": permission denied' });
  t.deepEqual(missingPath.exit, { code: 127, error: 'exec: "/bin/nope": no such file or directory' });
});

test('signals are forwarded to the process', async (t) => {
  const trapped = agent.client.startContainer(sh('trap "echo term; exit 7" TERM; echo ready; while :; do sleep 0.05; done'));
  const out = new TextSink(trapped.stdout);
  trapped.stderr.resume();
  await out.waitFor(/ready/);
  trapped.signal(15);
  t.deepEqual(await trapped.exit, { code: 7 });
  t.is(await out.ended, 'ready\nterm\n');

  const sleeper = agent.client.startContainer({ rootfs: { directory: rootfs }, args: ['sleep', '30'] });
  t.true((await sleeper.pid)! > 0);
  sleeper.signal(2);
  const { exit } = await collect(sleeper);
  t.deepEqual(exit, { signal: 2 });
});

test('rlimits are set before the process starts', async (t) => {
  const { stdout, exit } = await runContainer(agent.client, {
    ...sh('ulimit -n; ulimit -Hn'),
    user: 'app',
    rlimits: [{ type: 'nofile', soft: 100, hard: 200 }],
  });
  t.deepEqual(exit, { code: 0 });
  t.is(stdout.toString(), '100\n200\n');
});

test('processes left behind end with the main process, which ends the output', async (t) => {
  const started = performance.now();
  const { stdout, exit } = await runContainer(agent.client, sh('(sleep 30; echo late) & echo main'));
  t.deepEqual(exit, { code: 0 });
  t.is(stdout.toString(), 'main\n');
  t.true(performance.now() - started < 10_000);
});

test('the container writes to an overlay: the root filesystem directory is never modified', async (t) => {
  const { exit } = await runContainer(agent.client, { ...sh('echo x > /written && rm /etc/group && test ! -e /etc/group'), hostname: 'h' });
  t.deepEqual(exit, { code: 0 });
  await t.throwsAsync(access(join(rootfs, 'written')));
  await t.throwsAsync(access(join(rootfs, 'etc/hostname')));
  t.is(await readFile(join(rootfs, 'etc/group'), 'utf8'), GROUP);
});

test('a bad spec fails that container only, with a one-line reason', async (t) => {
  const { exit } = await runContainer(agent.client, { rootfs: { directory: 'relative' }, args: ['true'] });
  t.is((exit as { code: number }).code, 125);
  t.regex((exit as { error: string }).error, /rootfs must be/);
  t.deepEqual((await runContainer(agent.client, sh('true'))).exit, { code: 0 });
});

test('a networked pod\'s /etc/resolv.conf and /etc/hosts are written into the container\'s root; bad ones are refused', async (t) => {
  const network = { resolvConf: 'nameserver 10.88.0.1\noptions ndots:0\n', hosts: '127.0.0.1 localhost\n10.88.0.5 web\n' };
  const { stdout, exit } = await runContainer(agent.client, { ...sh('cat /etc/resolv.conf /etc/hosts'), network });
  t.deepEqual(exit, { code: 0 });
  t.is(stdout.toString(), network.resolvConf + network.hosts);
  for (const [bad, why] of [
    [{ resolvConf: 'x' }, /network must be \{resolvConf, hosts\}/],
    ['nameserver 1.1.1.1', /network must be/],
    [{ resolvConf: 'a\0b', hosts: '' }, /network must be/],
    [{ resolvConf: 'x'.repeat(65 * 1024), hosts: '' }, /at most 65536 bytes/],
  ] as const) {
    const r = await runContainer(agent.client, { ...sh('true'), network: bad as unknown as { resolvConf: string; hosts: string } });
    t.like(r.exit, { code: 125 });
    t.regex((r.exit as { error: string }).error, why);
  }
});

test('bad volume mounts are refused before anything is mounted, with a one-line reason', async (t) => {
  for (const [bad, why] of [
    ['data', /volumes must be a list/],
    [[{ name: '../x', target: '/data', readOnly: false }], /volume name must be/],
    [[{ name: 'data', target: 'data', readOnly: false }], /volume target must be an absolute path/],
    [[{ name: 'data', target: '/', readOnly: false }], /volume target must be an absolute path other than \//],
    [[{ name: 'data', target: '/a/../../etc', readOnly: false }], /without \. or \.\. components/],
    [[{ name: 'data', target: '/data', readOnly: 'yes' }], /volume readOnly must be true or false/],
    [Array.from({ length: 17 }, (_, i) => ({ name: `v${i}`, target: `/v${i}`, readOnly: false })), /volumes has 17 items, at most 16/],
  ] as const) {
    const r = await runContainer(agent.client, { ...sh('true'), volumes: bad as unknown as [] });
    t.like(r.exit, { code: 125 });
    t.regex((r.exit as { error: string }).error, why);
  }
});
