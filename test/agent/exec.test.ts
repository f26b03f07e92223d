/**
 * Processes joining a running container (`rootfs: {container: id}`, what
 * `vmctr exec` sends): they run in its root (its overlay, as it is now) and
 * UTS namespace with their own stdio, tty, user, env and exit, and end when
 * the container's main process does.
 */
import test from 'ava';
import { readlink, rm } from 'node:fs/promises';
import type { AgentClient, ContainerProcess } from '../../guest-agent/client.js';
import type { ContainerSpec } from '../../guest-agent/protocol.js';
import { buildHelper, buildRootfs, collect, runContainer, startAgent, TextSink, type AgentUnderTest } from './fixtures.js';

/** Long enough to outlive any test: a process still running at its end was not killed. */
const LONG_SLEEP = 'sleep 600';
/** A test that waits for a kill that never comes fails here instead of at ava's 10 minutes. */
const TEST_TIMEOUT_MS = 30_000;

let helper: string;
let agent: AgentUnderTest;
let rootfs: string;

test.before(async () => {
  rootfs = await buildRootfs();
  helper = await buildHelper();
  agent = await startAgent(helper);
});

test.after.always(async (t) => {
  if (agent) t.is(await agent.stop(), 0, agent.stderr());
  await rm(rootfs, { recursive: true, force: true });
});

const sh = (script: string): Pick<ContainerSpec, 'args'> => ({ args: ['sh', '-c', script] });
const join = (container: ContainerProcess, script: string): ContainerSpec => ({ rootfs: { container: container.id }, ...sh(script) });

interface Running {
  proc: ContainerProcess;
  out: TextSink;
  /** Lets the container's main process go on to its `finale`. */
  end(): void;
}

/** A container (hostname box7) that runs `prelude`, says ready, waits for a line on stdin, then runs `finale`. */
async function runningContainer(client: AgentClient, prelude = 'true', finale = 'exit 0', extra: Partial<ContainerSpec> = {}): Promise<Running> {
  const proc = client.startContainer({ rootfs: { directory: rootfs }, ...sh(`${prelude}; echo ready; read line; ${finale}`), stdin: true, hostname: 'box7', ...extra });
  const out = new TextSink(proc.stdout);
  proc.stderr.resume();
  await out.waitFor(/ready\n/);
  // Joinable from its `started` on, which may come after its first output (PROTOCOL.md).
  await proc.pid;
  return { proc, out, end: () => proc.stdin!.end('\n') };
}

test('an exec sees what the container wrote in its root, the container what the exec wrote; same hostname and UTS namespace', async (t) => {
  const c = await runningContainer(agent.client, 'echo from-container > /root/data; echo in-tmp > /tmp/t; readlink /proc/self/ns/uts', 'cat /root/back');
  const exec = await runContainer(agent.client, join(c.proc, 'cat /root/data /tmp/t; hostname; echo "$HOSTNAME"; readlink /proc/self/ns/uts; echo from-exec > /root/back'));
  t.deepEqual(exec.exit, { code: 0 }, exec.stderr.toString());
  const containerNamespace = c.out.text.split('\n')[0]!;
  t.regex(containerNamespace, /^uts:\[\d+\]$/);
  t.not(containerNamespace, await readlink('/proc/self/ns/uts'), 'the container has a UTS namespace of its own');
  t.is(exec.stdout.toString(), `from-container\nin-tmp\nbox7\nbox7\n${containerNamespace}\n`);
  // An exec's exit is its own: the container runs on and can be joined again.
  t.deepEqual((await runContainer(agent.client, join(c.proc, 'exit 5'))).exit, { code: 5 });
  t.deepEqual((await runContainer(agent.client, join(c.proc, 'cat /root/back'))).stdout.toString(), 'from-exec\n');
  c.end();
  t.deepEqual(await c.proc.exit, { code: 0 });
  t.is(await c.out.ended, `${containerNamespace}\nready\nfrom-exec\n`);
});

test('an exec with a tty: a pts device, the size set at start, resize, input echoed; ^C interrupts it', async (t) => {
  t.timeout(TEST_TIMEOUT_MS);
  const c = await runningContainer(agent.client);
  const ttyExec = (script: string) => agent.client.startContainer({ ...join(c.proc, script), stdin: true, tty: { rows: 24, cols: 80 } });
  const session = ttyExec('tty; stty size; read line; stty size; echo "[$line] $TERM"');
  const out = new TextSink(session.stdout);
  const err = new TextSink(session.stderr);
  await out.waitFor(/24 80\r\n/);
  session.resize(40, 100);
  session.stdin!.write('hello\n');
  t.deepEqual(await session.exit, { code: 0 });
  t.regex(await out.ended, /^\/dev\/pts\/\d+\r\n24 80\r\nhello\r\n40 100\r\n\[hello\] xterm\r\n$/);
  t.is(await err.ended, '');

  const interrupted = ttyExec(`echo ready; ${LONG_SLEEP}; echo after`);
  const interruptedOut = new TextSink(interrupted.stdout);
  interrupted.stderr.resume();
  await interruptedOut.waitFor(/ready/);
  interrupted.stdin!.write('\x03');
  t.deepEqual(await interrupted.exit, { signal: 2 });
  t.notRegex(await interruptedOut.ended, /after/);
  c.end();
  t.deepEqual(await c.proc.exit, { code: 0 }, 'the container outlives its execs');
});

test('an exec gets the user, env, cwd, rlimits and signals its start gives, resolved in the container\'s files as they are now', async (t) => {
  t.timeout(TEST_TIMEOUT_MS);
  // A user the image does not have: only the container's own overlay knows it.
  const c = await runningContainer(agent.client, 'echo late:x:3000:3001:Late:/home/late:/bin/sh >> /etc/passwd', 'exit 0', { env: ['OWNER=1'] });
  const given = await runContainer(agent.client, {
    ...join(c.proc, 'echo "$FOO"; pwd; id; echo "$HOME"; echo "$HOSTNAME"; echo "$PATH"; ulimit -n'),
    user: 'late',
    env: ['FOO=bar baz', 'PATH=/bin'],
    cwd: '/home/late/work',
    rlimits: [{ type: 'nofile', soft: 100, hard: 200 }],
  });
  t.deepEqual(given.exit, { code: 0 }, given.stderr.toString());
  t.deepEqual(given.stdout.toString().split('\n'), ['bar baz', '/home/late/work', 'uid=3000(late) gid=3001 groups=3001', '/home/late', 'box7', '/bin', '100', '']);

  // Nothing of the container's own start is inherited: the host sends what the exec should have.
  const bare = await runContainer(agent.client, join(c.proc, 'id; pwd; echo "$HOME"; echo "$PATH"; echo "${OWNER-unset}"'));
  t.deepEqual(bare.stdout.toString().split('\n'), [
    'uid=0(root) gid=0(root) groups=0(root)',
    '/',
    '/root',
    '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
    'unset',
    '',
  ]);
  t.deepEqual((await runContainer(agent.client, { ...join(c.proc, 'true'), user: 'ghost' })).exit, {
    code: 125,
    error: 'unable to find user ghost: no matching entries in passwd file',
  });

  const sleeper = agent.client.startContainer({ rootfs: { container: c.proc.id }, args: LONG_SLEEP.split(' ') });
  t.true((await sleeper.pid)! > 0);
  sleeper.signal(15);
  t.deepEqual((await collect(sleeper)).exit, { signal: 15 });
  c.end();
  t.deepEqual(await c.proc.exit, { code: 0 });
});

test('joining a container that never existed, has ended, failed to start, or is an exec is a one-line 125 error', async (t) => {
  const gone = (id: number) => ({ code: 125, error: `no running container ${id} to join` });
  t.deepEqual((await runContainer(agent.client, { rootfs: { container: 999999 }, ...sh('true') })).exit, gone(999999));

  const exited = agent.client.startContainer({ rootfs: { directory: rootfs }, ...sh('true') });
  t.deepEqual((await collect(exited)).exit, { code: 0 });
  t.deepEqual((await runContainer(agent.client, join(exited, 'true'))).exit, gone(exited.id));

  const failed = agent.client.startContainer({ rootfs: { directory: rootfs }, ...sh('true'), user: 'ghost' });
  t.like((await collect(failed)).exit, { code: 125 });
  t.deepEqual((await runContainer(agent.client, join(failed, 'true'))).exit, gone(failed.id));

  const c = await runningContainer(agent.client);
  const exec = agent.client.startContainer(join(c.proc, `echo ready; ${LONG_SLEEP}`));
  const execOut = new TextSink(exec.stdout);
  exec.stderr.resume();
  await execOut.waitFor(/ready/);
  t.deepEqual((await runContainer(agent.client, join(exec, 'true'))).exit, gone(exec.id), 'an exec is not a container');
  t.deepEqual((await runContainer(agent.client, { ...join(c.proc, 'true'), hostname: 'other' })).exit, {
    code: 125,
    error: 'hostname cannot be set when joining a container: the process has the container\'s',
  });
  c.end();
  t.deepEqual(await c.proc.exit, { code: 0 });
  t.deepEqual(await exec.exit, { signal: 9 });
  t.deepEqual((await runContainer(agent.client, join(c.proc, 'true'))).exit, gone(c.proc.id), 'nor is a container that has just ended');
});

test('an ended exec is forgotten: its id can be used again', async (t) => {
  const c = await runningContainer(agent.client);
  const first = agent.client.startContainer(join(c.proc, 'echo first'));
  t.deepEqual((await collect(first)).exit, { code: 0 });
  // The client numbers its starts; made to repeat one (at once: the other tests start theirs meanwhile), it sends the agent an id it has seen.
  const ids = agent.client as unknown as { nextId: number };
  const next = ids.nextId;
  ids.nextId = first.id;
  const again = agent.client.startContainer(join(c.proc, 'echo again'));
  ids.nextId = next;
  const { exit, stdout, stderr } = await collect(again);
  t.deepEqual(exit, { code: 0 }, stderr.toString());
  t.is(stdout.toString(), 'again\n');
  c.end();
  t.deepEqual(await c.proc.exit, { code: 0 });
});

test('the container\'s main process ending kills its execs, and what they left behind; every exit is reported', async (t) => {
  t.timeout(TEST_TIMEOUT_MS);
  const c = await runningContainer(agent.client, 'true', 'exit 3');
  // The exec's own child, in the background: it must not outlive the container either.
  const piped = agent.client.startContainer(join(c.proc, `${LONG_SLEEP} & echo $!; wait`));
  const pipedOut = new TextSink(piped.stdout);
  piped.stderr.resume();
  const onTty = agent.client.startContainer({ ...join(c.proc, `echo ready; ${LONG_SLEEP}`), tty: { rows: 24, cols: 80 } });
  const onTtyOut = new TextSink(onTty.stdout);
  onTty.stderr.resume();
  await Promise.all([pipedOut.waitFor(/^\d+\n/), onTtyOut.waitFor(/ready/)]);
  const background = Number(pipedOut.text.trim());

  const started = performance.now();
  c.end();
  t.deepEqual(await c.proc.exit, { code: 3 }, 'the container\'s own exit, while its execs still ran');
  t.deepEqual(await piped.exit, { signal: 9 });
  t.deepEqual(await onTty.exit, { signal: 9 });
  t.true(performance.now() - started < TEST_TIMEOUT_MS / 3);
  t.throws(() => process.kill(background, 0), { code: 'ESRCH' }, `the exec's background sleep ${background} was killed`);
});

test('execs count towards the 128 processes at once, and all of them end with the container', async (t) => {
  t.timeout(TEST_TIMEOUT_MS * 2);
  const own = await startAgent(helper);
  try {
    const c = await runningContainer(own.client);
    const execs = Array.from({ length: 127 }, () => own.client.startContainer({ rootfs: { container: c.proc.id }, args: LONG_SLEEP.split(' ') }));
    for (const exec of execs) {
      exec.stdout.resume();
      exec.stderr.resume();
    }
    t.true((await Promise.all(execs.map((exec) => exec.pid))).every((pid) => pid! > 0));
    t.deepEqual((await runContainer(own.client, join(c.proc, 'true'))).exit, { code: 125, error: '128 processes are running, at most 128 at once' });
    c.end();
    t.deepEqual(await c.proc.exit, { code: 0 });
    t.true((await Promise.all(execs.map((exec) => exec.exit))).every((exit) => 'signal' in exit && exit.signal === 9));
  } finally {
    t.is(await own.stop(), 0, own.stderr());
  }
});

test('a shutdown while an exec runs ends both, unmounts and exits cleanly', async (t) => {
  t.timeout(TEST_TIMEOUT_MS);
  const own = await startAgent(helper);
  const c = await runningContainer(own.client);
  const exec = own.client.startContainer(join(c.proc, `echo ready; ${LONG_SLEEP}`));
  const out = new TextSink(exec.stdout);
  exec.stderr.resume();
  await out.waitFor(/ready/);
  t.is(await own.stop(), 0, own.stderr());
  t.is(own.stderr(), '', 'no unmount trouble');
  t.deepEqual(await c.proc.exit, { signal: 9 });
  t.deepEqual(await exec.exit, { signal: 9 });
});
