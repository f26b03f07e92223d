import test, { type ExecutionContext } from 'ava';
import { closeSync, readSync, readdirSync, writeSync } from 'node:fs';
import { native } from '../../vmm/kvm/native.js';
import { GuestMemory } from '../../vmm/memory/guest-memory.js';
import { VhostUserFrontend } from '../../vmm/vhost/vhost-user.js';
import {
  F_PROTOCOL_FEATURES,
  HEADER_SIZE,
  HeaderFlag,
  ProtocolFeature,
  Request,
  u64Payload,
  vringStatePayload,
} from '../../vmm/vhost/vhost-user-message.js';
import { Feature, featureBit } from '../../vmm/virtio/spec.js';
import { listenStream, type StreamPeer } from './stream-peer.js';

// The vhost-user front-end against a scripted back-end: the test's end of
// the socket has the replies queued before each call (the front-end is
// synchronous, so nothing could answer it while it waits) and reads what
// was sent afterwards: the requests as the spec lays them out, NEED_REPLY
// once REPLY_ACK is negotiated, memfds and eventfds passed, and every
// broken reply, hang-up or silence a one-line error that ends the
// connection. virtiofsd itself is in virtiofsd.test.ts.

const VERSION_1 = featureBit(Feature.VERSION_1);
const PROTOCOL_FEATURES = featureBit(F_PROTOCOL_FEATURES);
const MQ = featureBit(ProtocolFeature.MQ);
const REPLY_ACK = featureBit(ProtocolFeature.REPLY_ACK);
/** Offered by the script and not implemented by the front-end: never set. */
const SLAVE_REQ = 1n << 5n;

interface Wire {
  peer: StreamPeer;
  server: number;
  frontend: VhostUserFrontend;
}

async function connect(t: ExecutionContext, timeoutMs = 2000): Promise<Wire> {
  const peer = await listenStream();
  const frontend = VhostUserFrontend.connect(peer.path, { timeoutMs });
  const server = await peer.accept();
  t.teardown(async () => {
    frontend.close();
    await peer.close();
  });
  return { peer, server, frontend };
}

/** Queues a reply to `request` on the back-end's side, with `fds`, or with another request's code. */
function reply(wire: Wire, request: number, payload: Uint8Array, o: { fds?: number[]; code?: number } = {}): void {
  const message = new Uint8Array(HEADER_SIZE + payload.length);
  const view = new DataView(message.buffer);
  view.setUint32(0, o.code ?? request, true);
  view.setUint32(4, HeaderFlag.VERSION | HeaderFlag.REPLY, true);
  view.setUint32(8, payload.length, true);
  message.set(payload, HEADER_SIZE);
  native.sendWithFds(wire.server, message, o.fds ?? []);
}

interface Sent {
  request: number;
  flags: number;
  payload: DataView;
  fds: number[];
}

/** The next request the front-end sent (already in the socket: it sends before it returns). */
function sent(wire: Wire): Sent {
  const head = native.recvWithFds(wire.server, HEADER_SIZE, 16);
  const header = new DataView(head.bytes.buffer, head.bytes.byteOffset, HEADER_SIZE);
  const size = header.getUint32(8, true);
  const body = size ? native.recvWithFds(wire.server, size, 16) : { bytes: Buffer.alloc(0), fds: [] };
  return {
    request: header.getUint32(0, true),
    flags: header.getUint32(4, true),
    payload: new DataView(body.bytes.buffer, body.bytes.byteOffset, body.bytes.length),
    fds: [...head.fds, ...body.fds],
  };
}

const nothingSent = (wire: Wire): boolean => {
  try {
    native.recvWithFds(wire.server, 1, 0);
    return false;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EAGAIN';
  }
};

const u64 = (s: Sent): bigint => s.payload.getBigUint64(0, true);
const state = (s: Sent) => ({ index: s.payload.getUint32(0, true), num: s.payload.getUint32(4, true) });
const openFds = (): number => readdirSync('/proc/self/fd').length;

test('requests as the spec lays them out; without REPLY_ACK nothing is waited for but replies; SET_FEATURES adds F_PROTOCOL_FEATURES when offered', async (t) => {
  const wire = await connect(t);
  reply(wire, Request.GET_FEATURES, u64Payload(VERSION_1 | PROTOCOL_FEATURES | featureBit(Feature.RING_EVENT_IDX)));
  wire.frontend.setOwner();
  t.is(wire.frontend.getFeatures(), VERSION_1 | PROTOCOL_FEATURES | featureBit(Feature.RING_EVENT_IDX));
  wire.frontend.setFeatures(VERSION_1);

  const owner = sent(wire);
  t.deepEqual([owner.request, owner.flags, owner.payload.byteLength], [Request.SET_OWNER, HeaderFlag.VERSION, 0]);
  const get = sent(wire);
  t.deepEqual([get.request, get.flags, get.payload.byteLength], [Request.GET_FEATURES, HeaderFlag.VERSION, 0]);
  const set = sent(wire);
  t.deepEqual([set.request, set.flags, u64(set)], [Request.SET_FEATURES, HeaderFlag.VERSION, VERSION_1 | PROTOCOL_FEATURES]);
  t.throws(() => wire.frontend.setFeatures(featureBit(Feature.RING_INDIRECT_DESC)), { message: 'vhost-user SET_FEATURES: the back-end does not offer features 0x10000000' });
  t.true(nothingSent(wire));
});

test('REPLY_ACK and MQ are negotiated when offered, nothing else; then every request without a reply has NEED_REPLY and waits for its ack', async (t) => {
  const wire = await connect(t, 200);
  reply(wire, Request.GET_FEATURES, u64Payload(VERSION_1 | PROTOCOL_FEATURES));
  reply(wire, Request.GET_PROTOCOL_FEATURES, u64Payload(MQ | REPLY_ACK | SLAVE_REQ));
  reply(wire, Request.GET_QUEUE_NUM, u64Payload(2n));
  reply(wire, Request.SET_VRING_NUM, u64Payload(0n));
  wire.frontend.getFeatures();
  t.is(wire.frontend.negotiateProtocolFeatures(), MQ | REPLY_ACK);
  t.is(wire.frontend.getQueueNum(), 2);
  wire.frontend.setVringNum(1, 256);

  t.is(sent(wire).request, Request.GET_FEATURES);
  t.is(sent(wire).request, Request.GET_PROTOCOL_FEATURES);
  const set = sent(wire);
  t.deepEqual([set.request, set.flags, u64(set)], [Request.SET_PROTOCOL_FEATURES, HeaderFlag.VERSION, MQ | REPLY_ACK], 'no ack asked before REPLY_ACK is set');
  const queues = sent(wire);
  t.deepEqual([queues.request, queues.flags], [Request.GET_QUEUE_NUM, HeaderFlag.VERSION], 'a request with a reply of its own asks for no ack');
  const num = sent(wire);
  t.deepEqual([num.request, num.flags, state(num)], [Request.SET_VRING_NUM, HeaderFlag.VERSION | HeaderFlag.NEED_REPLY, { index: 1, num: 256 }]);

  // No ack queued this time: the request waits for it, up to the timeout.
  t.throws(() => wire.frontend.setVringBase(1, 0), { message: 'vhost-user SET_VRING_BASE: the back-end did not respond within 200 ms' });
});

test('SET_MEM_TABLE: each region with its memfd and this process\'s address of it; private memory is refused before anything is sent', async (t) => {
  const wire = await connect(t);
  const mem = GuestMemory.allocate([{ base: 0, size: 0x10000 }, { base: 0x100000, size: 0x20000 }], { shared: true });
  t.teardown(() => mem.close());
  wire.frontend.setMemTable(mem);
  const table = sent(wire);
  t.is(table.request, Request.SET_MEM_TABLE);
  t.is(table.payload.byteLength, 8 + 32 * 2);
  t.is(table.payload.getUint32(0, true), 2);
  mem.regions.forEach((r, i) => {
    const at = 8 + 32 * i;
    t.deepEqual([0, 8, 16, 24].map((off) => table.payload.getBigUint64(at + off, true)), [BigInt(r.base), BigInt(r.size), native.bufferAddress(r.buffer), 0n]);
  });
  t.is(table.fds.length, 2);
  // The fds are the regions' memory, in the table's order.
  writeSync(table.fds[1]!, Buffer.from('guest'), 0, 5, 0x10);
  t.is(Buffer.from(mem.read(0x100010, 5)).toString(), 'guest');
  table.fds.forEach((fd) => closeSync(fd));

  const privateMem = GuestMemory.allocate([{ base: 0, size: 0x10000 }]);
  t.throws(() => wire.frontend.setMemTable(privateMem), { message: 'vhost-user SET_MEM_TABLE: guest memory is not shared (GuestMemory.allocate with shared: true)' });
  t.true(nothingSent(wire));
  wire.frontend.setOwner();
  t.is(sent(wire).request, Request.SET_OWNER, 'a refused call does not end the connection');
});

test('startQueue: size, base, the rings at this process\'s addresses, call before kick, enable; stopQueue disables and reads the base', async (t) => {
  const wire = await connect(t);
  const mem = GuestMemory.allocate([{ base: 0, size: 0x10000 }], { shared: true });
  const kick = native.createEventFd();
  const call = native.createEventFd();
  t.teardown(() => [kick, call].forEach((fd) => closeSync(fd)));
  t.teardown(() => mem.close());
  reply(wire, Request.GET_FEATURES, u64Payload(VERSION_1 | PROTOCOL_FEATURES));
  wire.frontend.getFeatures();
  wire.frontend.setFeatures(VERSION_1);
  sent(wire);
  sent(wire);

  const setup = { size: 16, desc: 0x1000, avail: 0x2000, used: 0x3000, kickFd: kick, callFd: call };
  t.throws(() => wire.frontend.startQueue(1, { ...setup, used: 0xfff0 }, mem), { message: /not in guest memory/ });
  t.true(nothingSent(wire), 'a ring outside guest memory sends nothing');

  wire.frontend.startQueue(1, setup, mem);
  const base = native.bufferAddress(mem.regions[0]!.buffer);
  const requests = Array.from({ length: 6 }, () => sent(wire));
  t.deepEqual(requests.map((r) => r.request), [Request.SET_VRING_NUM, Request.SET_VRING_BASE, Request.SET_VRING_ADDR, Request.SET_VRING_CALL, Request.SET_VRING_KICK, Request.SET_VRING_ENABLE]);
  const [num, vringBase, addr, callFd, kickFd, enable] = requests as [Sent, Sent, Sent, Sent, Sent, Sent];
  t.deepEqual(state(num), { index: 1, num: 16 });
  t.deepEqual(state(vringBase), { index: 1, num: 0 });
  t.is(addr.payload.getUint32(0, true), 1);
  t.deepEqual([8, 16, 24].map((at) => addr.payload.getBigUint64(at, true)), [base + 0x1000n, base + 0x3000n, base + 0x2000n]);
  t.deepEqual(state(enable), { index: 1, num: 1 });
  for (const [message, fd] of [[callFd, call], [kickFd, kick]] as const) {
    t.is(u64(message), 1n);
    t.is(message.fds.length, 1);
    native.writeEventFd(message.fds[0]!, 3);
    closeSync(message.fds[0]!);
    const count = Buffer.alloc(8);
    readSync(fd, count);
    t.is(count.readBigUInt64LE(0), 3n, 'the back-end gets the queue\'s own eventfd');
  }

  reply(wire, Request.GET_VRING_BASE, vringStatePayload({ index: 1, num: 5 }));
  t.is(wire.frontend.stopQueue(1), 5);
  const disable = sent(wire);
  t.deepEqual([disable.request, state(disable)], [Request.SET_VRING_ENABLE, { index: 1, num: 0 }]);
  const get = sent(wire);
  t.deepEqual([get.request, state(get)], [Request.GET_VRING_BASE, { index: 1, num: 0 }]);
});

test('a reply that breaks the protocol fails its request with one line, and the connection with it', async (t) => {
  const wire = await connect(t);
  reply(wire, Request.GET_FEATURES, u64Payload(VERSION_1), { code: Request.SET_FEATURES });
  t.throws(() => wire.frontend.getFeatures(), { message: 'vhost-user GET_FEATURES: the reply is for request 2' });
  t.throws(() => wire.frontend.setOwner(), { message: 'vhost-user SET_OWNER: the connection failed earlier (vhost-user GET_FEATURES: the reply is for request 2)' });
});

test('a reply with an fd is refused and the fd closed', async (t) => {
  const wire = await connect(t);
  const event = native.createEventFd();
  t.teardown(() => closeSync(event));
  reply(wire, Request.GET_FEATURES, u64Payload(VERSION_1), { fds: [event] });
  const before = openFds();
  t.throws(() => wire.frontend.getFeatures(), { message: 'vhost-user GET_FEATURES: the reply carries 1 unexpected fds' });
  t.is(openFds(), before);
});

test('answers out of range are refused: another vring\'s base, a base beyond 16 bits, no queues', async (t) => {
  for (const [answer, expected] of [
    [{ index: 0, num: 0 }, 'vhost-user GET_VRING_BASE: the reply is for vring 0, not 1'],
    [{ index: 1, num: 0x10000 }, 'vhost-user GET_VRING_BASE: base 65536 is not a 16-bit ring index'],
  ] as const) {
    const wire = await connect(t);
    reply(wire, Request.GET_VRING_BASE, vringStatePayload(answer));
    t.throws(() => wire.frontend.getVringBase(1), { message: expected });
  }
  const wire = await connect(t);
  reply(wire, Request.GET_FEATURES, u64Payload(PROTOCOL_FEATURES));
  reply(wire, Request.GET_PROTOCOL_FEATURES, u64Payload(MQ));
  reply(wire, Request.GET_QUEUE_NUM, u64Payload(0n));
  wire.frontend.getFeatures();
  wire.frontend.negotiateProtocolFeatures();
  t.throws(() => wire.frontend.getQueueNum(), { message: 'vhost-user GET_QUEUE_NUM: the back-end reports 0 queues, not 1 to 32768' });
});

test('requests the negotiation does not allow are refused before anything is sent', async (t) => {
  const wire = await connect(t);
  t.throws(() => wire.frontend.setFeatures(VERSION_1), { message: 'vhost-user SET_FEATURES: GET_FEATURES comes first' });
  reply(wire, Request.GET_FEATURES, u64Payload(VERSION_1));
  wire.frontend.getFeatures();
  sent(wire);
  t.throws(() => wire.frontend.getProtocolFeatures(), { message: 'vhost-user GET_PROTOCOL_FEATURES: the back-end does not offer F_PROTOCOL_FEATURES' });
  t.throws(() => wire.frontend.getQueueNum(), { message: 'vhost-user GET_QUEUE_NUM: protocol feature MQ is not negotiated' });
  t.throws(() => wire.frontend.setVringEnable(0, true), { message: 'vhost-user SET_VRING_ENABLE: F_PROTOCOL_FEATURES is not negotiated' });
  t.true(nothingSent(wire));
});

test('a back-end that hangs up mid-reply, or before the request, is a one-line error', async (t) => {
  const wire = await connect(t);
  // Half a reply, then EOF: the header is read, the payload never comes.
  const half = new Uint8Array(HEADER_SIZE);
  new DataView(half.buffer).setUint32(0, Request.GET_FEATURES, true);
  new DataView(half.buffer).setUint32(4, HeaderFlag.VERSION | HeaderFlag.REPLY, true);
  new DataView(half.buffer).setUint32(8, 8, true);
  native.sendWithFds(wire.server, half, []);
  await wire.peer.endWrites();
  t.throws(() => wire.frontend.getFeatures(), { message: 'vhost-user GET_FEATURES: the back-end closed the connection' });

  const gone = await connect(t);
  await gone.peer.hangUp();
  t.throws(() => gone.frontend.setOwner(), { message: /^vhost-user SET_OWNER: sendmsg failed: EPIPE [^\n]*$/ });
});
