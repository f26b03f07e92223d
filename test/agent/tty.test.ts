import test from 'ava';
import { rm } from 'node:fs/promises';
import { buildHelper, buildRootfs, startAgent, TextSink, type AgentUnderTest } from './fixtures.js';

let agent: AgentUnderTest;
let rootfs: string;

test.before(async () => {
  rootfs = await buildRootfs();
  agent = await startAgent(await buildHelper());
});

test.after.always(async (t) => {
  if (agent) t.is(await agent.stop(), 0, agent.stderr());
  await rm(rootfs, { recursive: true, force: true });
});

const ttySpec = (script: string) => ({
  rootfs: { directory: rootfs },
  args: ['sh', '-c', script],
  stdin: true,
  tty: { rows: 24, cols: 80 },
});

test('a tty session: a pts device, the window size set at start, resize, input echoed', async (t) => {
  const proc = agent.client.startContainer(ttySpec('tty; stty size; read line; stty size; echo "[$line] $TERM"'));
  const out = new TextSink(proc.stdout);
  const err = new TextSink(proc.stderr);
  await out.waitFor(/24 80\r\n/);
  proc.resize(40, 100);
  proc.stdin!.write('hello\n');
  t.deepEqual(await proc.exit, { code: 0 });
  const text = await out.ended;
  // The terminal echoes input and turns \n into \r\n, as a terminal does.
  t.regex(text, /^\/dev\/pts\/\d+\r\n24 80\r\nhello\r\n40 100\r\n\[hello\] xterm\r\n$/);
  t.is(await err.ended, '', 'with a tty, stderr goes to the terminal');
});

test('with a tty, ^C interrupts the foreground process group', async (t) => {
  const proc = agent.client.startContainer(ttySpec('echo ready; sleep 30; echo after'));
  const out = new TextSink(proc.stdout);
  proc.stderr.resume();
  await out.waitFor(/ready/);
  proc.stdin!.write('\x03');
  t.deepEqual(await proc.exit, { signal: 2 });
  t.notRegex(await out.ended, /after/);
});

test('with a tty, a forwarded signal reaches the whole process group', async (t) => {
  const proc = agent.client.startContainer(ttySpec('echo ready; sleep 30; echo after'));
  const out = new TextSink(proc.stdout);
  proc.stderr.resume();
  await out.waitFor(/ready/);
  proc.signal(15);
  t.deepEqual(await proc.exit, { signal: 15 });
  t.notRegex(await out.ended, /after/);
});

test('tty output written just before exit is not lost', async (t) => {
  const proc = agent.client.startContainer({ ...ttySpec('seq 1 20000'), stdin: false });
  const out = new TextSink(proc.stdout);
  proc.stderr.resume();
  t.deepEqual(await proc.exit, { code: 0 });
  const expected = Array.from({ length: 20000 }, (_, i) => `${i + 1}\r\n`).join('');
  t.true((await out.ended) === expected);
});
