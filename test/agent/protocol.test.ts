import test from 'ava';
import { duplexPair } from 'node:stream';
import { AgentClient } from '../../guest-agent/client.js';
import { CreditedSender, CreditReceiver } from '../../guest-agent/flow-control.js';
import { encodeControl, encodeDataHeader, FrameDecoder, ProtocolError } from '../../guest-agent/frames.js';
import { CREDIT_BATCH, INITIAL_CREDIT, MAX_DATA, MessageType, PROTOCOL_VERSION, type Message } from '../../guest-agent/protocol.js';

const hello = (protocol = PROTOCOL_VERSION) =>
  encodeControl({ type: MessageType.hello, body: { protocol, agent: '0.1.0', kernel: '6.1.0', node: 'v24', uptime: 1, agentStartMs: 1 } });

function dataFrame(type: typeof MessageType.stdout, id: number, payload: Buffer): Buffer {
  return Buffer.concat([encodeDataHeader(type, id, payload.length), payload]);
}

test('frames survive any chunking; data payloads are raw and byte-exact', (t) => {
  const payload = Buffer.from(Array.from({ length: MAX_DATA }, (_, i) => i % 251));
  const wire = Buffer.concat([
    hello(),
    dataFrame(MessageType.stdout, 7, payload),
    encodeControl({ type: MessageType.exit, body: { id: 7, code: 3 } }),
    dataFrame(MessageType.stdout, 8, Buffer.alloc(0)),
  ]);
  // 9 bytes of framing per data frame: no base64, no JSON around stdio.
  t.is(wire.length - hello().length, 9 + MAX_DATA + encodeControl({ type: MessageType.exit, body: { id: 7, code: 3 } }).length + 9);
  for (const size of [1, 3, 9, 4096, wire.length]) {
    const decoder = new FrameDecoder();
    const messages: Message[] = [];
    for (let at = 0; at < wire.length; at += size) messages.push(...decoder.push(wire.subarray(at, at + size)));
    t.is(messages.length, 4, `chunks of ${size}`);
    t.deepEqual(messages[0]!.type, MessageType.hello);
    t.true('payload' in messages[1]! && messages[1].id === 7 && Buffer.from(messages[1].payload).equals(payload), `payload, chunks of ${size}`);
    t.deepEqual(messages[2], { type: MessageType.exit, body: { id: 7, code: 3 } });
    t.true('payload' in messages[3]! && messages[3].payload.length === 0);
  }
});

test('a stream out of step is an error, not a giant allocation', (t) => {
  t.throws(() => new FrameDecoder().push(Buffer.from('HTTP/1.1 200 OK\r\n')), { instanceOf: ProtocolError, message: /out of step/ });
  const oversized = Buffer.alloc(9);
  oversized.writeUInt32BE(5 + MAX_DATA + 1, 0);
  oversized.writeUInt8(MessageType.stdout, 4);
  t.throws(() => new FrameDecoder().push(Buffer.concat([oversized, Buffer.alloc(MAX_DATA + 1)])), { message: /above/ });
  const notJson = Buffer.from([0, 0, 0, 3, MessageType.exit, 0x7b, 0x7b]);
  t.throws(() => new FrameDecoder().push(notJson), { message: /not JSON/ });
});

test('a sender waits for credit and never has more than the credit in flight', async (t) => {
  const sent: number[] = [];
  const sender = new CreditedSender((payload) => sent.push(payload.length));
  let done = false;
  const sending = sender.send(Buffer.alloc(INITIAL_CREDIT + 100_000)).then(() => (done = true));
  await new Promise((resolve) => setImmediate(resolve));
  t.false(done);
  t.is(sent.reduce((a, b) => a + b, 0), INITIAL_CREDIT);
  t.true(sent.every((n) => n <= MAX_DATA));
  sender.grant(100_000);
  await sending;
  t.is(sent.reduce((a, b) => a + b, 0), INITIAL_CREDIT + 100_000);
});

test('a receiver returns credit in batches and refuses a peer that exceeds it', (t) => {
  const returned: number[] = [];
  const receiver = new CreditReceiver('test', (bytes) => returned.push(bytes));
  receiver.received(INITIAL_CREDIT);
  receiver.consumed(CREDIT_BATCH - 1);
  t.deepEqual(returned, []);
  receiver.consumed(1);
  t.deepEqual(returned, [CREDIT_BATCH]);
  receiver.received(CREDIT_BATCH);
  t.throws(() => receiver.received(1), { instanceOf: ProtocolError, message: /credit/ });
});

test('a protocol version mismatch is a one-line error', async (t) => {
  const [host, guest] = duplexPair();
  const connecting = AgentClient.connect(host);
  guest.write(hello(2));
  const err = await t.throwsAsync(connecting);
  t.regex(err!.message, /^guest agent speaks protocol 2, this vmctr speaks 1: rebuild the agent image/);
  t.false(err!.message.includes('\n'));
});

test('no hello in time is an error', async (t) => {
  const [host] = duplexPair();
  await t.throwsAsync(AgentClient.connect(host, { timeoutMs: 50 }), { message: /did not say hello within 50 ms/ });
});

test('a guest sending beyond its credit fails the channel, not the host', async (t) => {
  const [host, guest] = duplexPair();
  const connecting = AgentClient.connect(host);
  guest.write(hello());
  const client = await connecting;
  const proc = client.startContainer({ rootfs: { directory: '/' }, args: ['x'] });
  proc.stdout.on('error', () => {});
  proc.stderr.on('error', () => {});
  for (let sent = 0; sent <= INITIAL_CREDIT; sent += MAX_DATA) guest.write(dataFrame(MessageType.stdout, 1, Buffer.alloc(MAX_DATA)));
  await t.throwsAsync(proc.exit, { message: /channel closed: container 1 stdout: peer sent \d+ bytes on a credit of/ });
});

test('the channel closing fails running containers and later starts', async (t) => {
  const [host, guest] = duplexPair();
  const connecting = AgentClient.connect(host);
  guest.write(hello());
  const client = await connecting;
  const proc = client.startContainer({ rootfs: { directory: '/' }, args: ['x'] });
  proc.stdout.on('error', () => {});
  proc.stderr.on('error', () => {});
  guest.destroy();
  await t.throwsAsync(proc.exit, { message: /guest agent channel closed/ });
  const late = client.startContainer({ rootfs: { directory: '/' }, args: ['x'] });
  late.stdout.on('error', () => {});
  late.stderr.on('error', () => {});
  await t.throwsAsync(late.exit, { message: /guest agent channel closed/ });
  await client.shutdown();
});
