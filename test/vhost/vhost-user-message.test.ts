import test from 'ava';
import { fstatSync } from 'node:fs';
import { native } from '../../vmm/kvm/native.js';
import {
  HEADER_SIZE,
  HeaderFlag,
  MAX_MEM_REGIONS,
  Request,
  checkReplyHeader,
  decodeAck,
  decodeU64Reply,
  decodeVringStateReply,
  encodeRequest,
  memTablePayload,
  u64Payload,
  vringAddrPayload,
  vringFdPayload,
  vringStatePayload,
} from '../../vmm/vhost/vhost-user-message.js';

// The vhost-user codec: requests laid out as docs/interop/vhost-user.rst
// has them, and replies checked field by field, every bad one refused with
// a one-line error naming the request and any fd it carried closed.

const view = (bytes: Uint8Array) => new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
const header = (bytes: Uint8Array) => ({ request: view(bytes).getUint32(0, true), flags: view(bytes).getUint32(4, true), size: view(bytes).getUint32(8, true) });

/** A reply as a back-end would send it, with each field open to being wrong. */
function reply(request: number, payload: Uint8Array, o: { flags?: number; size?: number } = {}): Uint8Array {
  const message = new Uint8Array(HEADER_SIZE + payload.length);
  view(message).setUint32(0, request, true);
  view(message).setUint32(4, o.flags ?? HeaderFlag.VERSION | HeaderFlag.REPLY, true);
  view(message).setUint32(8, o.size ?? payload.length, true);
  message.set(payload, HEADER_SIZE);
  return message;
}

const isOpen = (fd: number): boolean => {
  try {
    fstatSync(fd);
    return true;
  } catch {
    return false;
  }
};

test('a request is its code, version 1 (NEED_REPLY when asked) and its payload size, then the payload', (t) => {
  for (const [name, code] of Object.entries(Request)) {
    const plain = encodeRequest(code);
    t.deepEqual(header(plain), { request: code, flags: 1, size: 0 }, name);
    t.is(plain.length, HEADER_SIZE);
  }
  const payload = u64Payload(0x1_2345_6789n);
  const message = encodeRequest(Request.SET_FEATURES, payload, true);
  t.deepEqual(header(message), { request: 2, flags: 0x9, size: 8 });
  t.deepEqual([...message.subarray(HEADER_SIZE)], [...payload]);
});

test('payloads: u64, vring state, vring address, vring fd index and the memory table', (t) => {
  t.is(view(u64Payload((1n << 64n) - 2n)).getBigUint64(0, true), (1n << 64n) - 2n);
  t.throws(() => u64Payload(1n << 64n), { instanceOf: RangeError });
  t.throws(() => u64Payload(-1n), { instanceOf: RangeError });

  const state = vringStatePayload({ index: 1, num: 256 });
  t.deepEqual([view(state).getUint32(0, true), view(state).getUint32(4, true)], [1, 256]);
  t.throws(() => vringStatePayload({ index: -1, num: 0 }), { instanceOf: RangeError });
  t.throws(() => vringStatePayload({ index: 0, num: 2 ** 32 }), { instanceOf: RangeError });
  t.throws(() => vringStatePayload({ index: 0.5, num: 0 }), { instanceOf: RangeError });

  // index, flags, desc, used, avail, log: the order is the spec's, not the ring's.
  const addr = vringAddrPayload({ index: 3, desc: 0x1000n, used: 0x3000n, avail: 0x2000n });
  const a = view(addr);
  t.is(addr.length, 40);
  t.deepEqual([a.getUint32(0, true), a.getUint32(4, true)], [3, 0]);
  t.deepEqual([8, 16, 24, 32].map((at) => a.getBigUint64(at, true)), [0x1000n, 0x3000n, 0x2000n, 0n]);

  t.is(view(vringFdPayload(255)).getBigUint64(0, true), 255n);
  t.throws(() => vringFdPayload(256), { message: /vring index 256/ });

  const regions = [
    { guestPhysAddr: 0n, memorySize: 0x10000n, userspaceAddr: 0x7f00_0000_0000n, mmapOffset: 0n },
    { guestPhysAddr: 0x1_0000_0000n, memorySize: 0x20000n, userspaceAddr: 0x7f10_0000_0000n, mmapOffset: 0x1000n },
  ];
  const table = memTablePayload(regions);
  const m = view(table);
  t.is(table.length, 8 + 32 * 2);
  t.deepEqual([m.getUint32(0, true), m.getUint32(4, true)], [2, 0]);
  regions.forEach((r, i) => {
    const at = 8 + 32 * i;
    t.deepEqual([0, 8, 16, 24].map((off) => m.getBigUint64(at + off, true)), [r.guestPhysAddr, r.memorySize, r.userspaceAddr, r.mmapOffset]);
  });
  t.throws(() => memTablePayload([]), { message: /0 memory regions/ });
  t.throws(() => memTablePayload(Array.from({ length: MAX_MEM_REGIONS + 1 }, () => regions[0]!)), { message: /9 memory regions, not 1 to 8/ });
});

test('good replies decode: a u64, a vring state, an ack; a NEED_REPLY bit echoed back is accepted', (t) => {
  const features = (1n << 32n) | (1n << 30n) | (1n << 29n);
  t.is(decodeU64Reply(Request.GET_FEATURES, reply(Request.GET_FEATURES, u64Payload(features)), []), features);
  t.deepEqual(decodeVringStateReply(Request.GET_VRING_BASE, reply(Request.GET_VRING_BASE, vringStatePayload({ index: 1, num: 7 })), []), { index: 1, num: 7 });
  // Bits 0-3 are the spec's; only bits 4-31 are refused (as rust-vmm's header check does).
  const echoed = reply(Request.SET_MEM_TABLE, u64Payload(0n), { flags: HeaderFlag.VERSION | HeaderFlag.REPLY | HeaderFlag.NEED_REPLY });
  t.notThrows(() => decodeAck(Request.SET_MEM_TABLE, echoed, []));
  t.is(checkReplyHeader(Request.GET_FEATURES, reply(Request.GET_FEATURES, u64Payload(0n)).subarray(0, HEADER_SIZE)), 8);
});

test('bad replies are refused with one line naming the request', (t) => {
  const good = u64Payload(1n);
  const cases: Array<[string, Uint8Array, RegExp]> = [
    ['another request', reply(Request.SET_FEATURES, good), /^vhost-user GET_FEATURES: the reply is for request 2$/],
    ['no reply flag', reply(Request.GET_FEATURES, good, { flags: HeaderFlag.VERSION }), /GET_FEATURES: the reply flag is not set/],
    ['version 0', reply(Request.GET_FEATURES, good, { flags: HeaderFlag.REPLY }), /GET_FEATURES: reply version 0, not 1/],
    ['version 2', reply(Request.GET_FEATURES, good, { flags: 2 | HeaderFlag.REPLY }), /reply version 2/],
    ['an unknown flag', reply(Request.GET_FEATURES, good, { flags: 0x10 | HeaderFlag.VERSION | HeaderFlag.REPLY }), /unknown reply flags 0x10/],
    ['an empty payload', reply(Request.GET_FEATURES, new Uint8Array(0)), /reply payload of 0 bytes, not 8/],
    ['a longer payload', reply(Request.GET_FEATURES, new Uint8Array(16)), /reply payload of 16 bytes/],
    ['an oversize claim', reply(Request.GET_FEATURES, good, { size: 0xffffffff }), /reply payload of 4294967295 bytes/],
    ['a truncated payload', reply(Request.GET_FEATURES, good).subarray(0, HEADER_SIZE + 4), /reply of 16 bytes, not 20/],
    ['a truncated header', reply(Request.GET_FEATURES, good).subarray(0, 8), /reply header of 8 bytes/],
  ];
  for (const [what, message, expected] of cases) {
    const error = t.throws(() => decodeU64Reply(Request.GET_FEATURES, message, []), { message: expected }, what);
    t.false(error?.message.includes('\n'), what);
  }
  t.throws(() => decodeAck(Request.SET_VRING_ADDR, reply(Request.SET_VRING_ADDR, u64Payload(1n)), []), {
    message: 'vhost-user SET_VRING_ADDR: the back-end failed the request (status 1)',
  });
});

test('a reply with fds is refused and the fds are closed, as they are when it is refused for another reason', (t) => {
  const good = reply(Request.GET_QUEUE_NUM, u64Payload(2n));
  const fds = [native.createEventFd(), native.createEventFd()];
  t.throws(() => decodeU64Reply(Request.GET_QUEUE_NUM, good, fds), { message: /GET_QUEUE_NUM: the reply carries 2 unexpected fds/ });
  t.deepEqual(fds.map(isOpen), [false, false]);

  const fd = native.createEventFd();
  t.throws(() => decodeU64Reply(Request.GET_QUEUE_NUM, reply(Request.GET_FEATURES, u64Payload(2n)), [fd]), { message: /the reply is for request 1/ });
  t.false(isOpen(fd));
});
