/**
 * The agent (the QuickJS binary, natively) against a host that breaks the
 * protocol: it reports why, closes the channel and ends, and never allocates
 * what a bogus length asks for.
 */
import test from 'ava';
import { rm } from 'node:fs/promises';
import type { Duplex } from 'node:stream';
import { encodeControl } from '../../guest-agent/frames.js';
import { MessageType } from '../../guest-agent/protocol.js';
import { buildHelper, buildRootfs, runContainer, startAgent } from './fixtures.js';

let helper: string;
test.before(async () => {
  helper = await buildHelper();
});

async function violate(t: import('ava').ExecutionContext, wire: Uint8Array, reason: RegExp): Promise<void> {
  const agent = await startAgent(helper);
  // 'close', not 'exit': the agent's last stderr line may still be in the pipe at its exit.
  const exited = new Promise<number | null>((resolve) => agent.process.once('close', (code) => resolve(code)));
  (agent.process.stdio[3] as Duplex).write(wire);
  t.is(await exited, 0, agent.stderr());
  t.regex(agent.stderr(), reason);
}

test('a frame length beyond the limit ends the channel', (t) => violate(t, Uint8Array.from([0xff, 0xff, 0xff, 0xff, 1]), /channel out of step/));

test('a control frame that is not a JSON object ends the channel', (t) =>
  violate(t, Uint8Array.from([0, 0, 0, 3, MessageType.signal, 0x5b, 0x5d]), /not a JSON object/));

test('data the agent never asked for ends the channel', (t) =>
  violate(t, Uint8Array.from([0, 0, 0, 6, MessageType.stdout, 0, 0, 0, 1, 0x41]), /host sent stdout data/));

test('a signal out of range ends the channel', (t) =>
  violate(t, encodeControl({ type: MessageType.signal, body: { id: 1, signal: 99 } }), /signal needs a number from 1 to 64/));

test('fields of the wrong shape or size fail that container only', async (t) => {
  const agent = await startAgent(helper);
  const rootfs = await buildRootfs();
  try {
    const bad = async (spec: Record<string, unknown>) => (await runContainer(agent.client, spec as never)).exit;
    t.deepEqual(await bad({ rootfs: { directory: `${rootfs},upperdir=/` }, args: ['true'] }), {
      code: 125,
      error: 'rootfs must be {device, fstype}, {share} or {directory} with absolute paths (a directory without , : or \\), or {container}',
    });
    for (const share of ['../etc', 'a/b', 'x,upperdir=/', '.', '']) {
      t.deepEqual(await bad({ rootfs: { share }, args: ['true'] }), { code: 125, error: 'rootfs share must be a directory name of letters, digits, "_", "." or "-"' });
    }
    for (const container of [0, -1, 1.5, 2 ** 32, '1', null]) {
      t.deepEqual(await bad({ rootfs: { container }, args: ['true'] }), { code: 125, error: 'rootfs container must be a process id from 1 to 2^32-1' });
    }
    t.like(await bad({ rootfs: { directory: rootfs }, args: Array(3000).fill('x') }), { code: 125, error: 'args has 3000 items, at most 2048 allowed' });
    t.like(await bad({ rootfs: { directory: rootfs }, args: ['true'], rlimits: Array(17).fill({ type: 'nofile', soft: 1, hard: 1 }) }), { code: 125 });
    t.like(await bad({ rootfs: { directory: rootfs }, args: ['true'], tty: { rows: 0, cols: 1e9 } }), { code: 125 });
    t.deepEqual(await bad({ rootfs: { directory: rootfs }, args: ['true'], env: ['__proto__=x'] }), { code: 0 });
  } finally {
    t.is(await agent.stop(), 0, agent.stderr());
    await rm(rootfs, { recursive: true, force: true });
  }
});
