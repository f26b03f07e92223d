// The vhost-user message format (QEMU docs/interop/vhost-user.rst, "Message
// Specification"): a 12-byte header (request, flags, payload size), then the
// request's payload, all in the host's byte order (little-endian here).
// Encoding the front-end's requests and checking the back-end's replies are
// pure functions apart from closing fds: the back-end is another process
// and is not trusted, so a reply is checked field by field before use.
import { closeSync } from 'node:fs';

/** "Front-end message types": the requests vmctr sends. */
export const Request = {
  GET_FEATURES: 1,
  SET_FEATURES: 2,
  SET_OWNER: 3,
  SET_MEM_TABLE: 5,
  SET_VRING_NUM: 8,
  SET_VRING_ADDR: 9,
  SET_VRING_BASE: 10,
  GET_VRING_BASE: 11,
  SET_VRING_KICK: 12,
  SET_VRING_CALL: 13,
  GET_PROTOCOL_FEATURES: 15,
  SET_PROTOCOL_FEATURES: 16,
  GET_QUEUE_NUM: 17,
  SET_VRING_ENABLE: 18,
} as const;
export type Request = (typeof Request)[keyof typeof Request];

const REQUEST_NAMES = new Map<number, string>(Object.entries(Request).map(([name, code]) => [code, name]));

/** The request's name, for messages. */
export const requestName = (request: Request): string => REQUEST_NAMES.get(request)!;

/** "Header": the flags field. */
export const HeaderFlag = { VERSION: 0x1, VERSION_MASK: 0x3, REPLY: 0x4, NEED_REPLY: 0x8 } as const;
const KNOWN_FLAGS = HeaderFlag.VERSION_MASK | HeaderFlag.REPLY | HeaderFlag.NEED_REPLY;
export const HEADER_SIZE = 12;

/** "Communication": the virtio feature bit (reserved in virtio) that gates GET/SET_PROTOCOL_FEATURES. */
export const F_PROTOCOL_FEATURES = 30;
/** "Protocol features": the ones vmctr negotiates. */
export const ProtocolFeature = { MQ: 0, REPLY_ACK: 3 } as const;

/** "Memory regions description": room for VHOST_MEMORY_BASELINE_NREGIONS, one fd each. */
export const MAX_MEM_REGIONS = 8;
const MEM_REGION_SIZE = 32;
/** "VHOST_USER_SET_VRING_KICK": bits 0-7 of the u64 are the vring index. */
export const MAX_VRING_INDEX = 0xff;
/** "A vring address description": index, flags, then desc, used, avail and log addresses. */
const VRING_ADDR_SIZE = 40;

/** Every reply vmctr asks for (u64, vring state, REPLY_ACK's u64 status) has an 8-byte payload. */
export const REPLY_PAYLOAD_SIZE = 8;

export interface VringState {
  index: number;
  num: number;
}

/** Ring addresses in the front-end's address space ("a user address" without VIRTIO_F_IOMMU_PLATFORM). */
export interface VringAddr {
  index: number;
  desc: bigint;
  used: bigint;
  avail: bigint;
}

export interface MemRegion {
  guestPhysAddr: bigint;
  memorySize: bigint;
  /** Where the region is mapped in the front-end: the back-end translates ring addresses with it. */
  userspaceAddr: bigint;
  /** Where the region starts in its fd. */
  mmapOffset: bigint;
}

const U64_MAX = (1n << 64n) - 1n;

function checkU32(what: string, v: number): number {
  if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new RangeError(`vhost-user: ${what} ${v} is not a u32`);
  return v;
}

function checkU64(what: string, v: bigint): bigint {
  if (v < 0n || v > U64_MAX) throw new RangeError(`vhost-user: ${what} 0x${v.toString(16)} is not a u64`);
  return v;
}

/** A request message: the header (version 1, NEED_REPLY if asked) and `payload`. */
export function encodeRequest(request: Request, payload: Uint8Array = new Uint8Array(0), needReply = false): Uint8Array {
  const message = new Uint8Array(HEADER_SIZE + payload.length);
  const view = new DataView(message.buffer);
  view.setUint32(0, request, true);
  view.setUint32(4, HeaderFlag.VERSION | (needReply ? HeaderFlag.NEED_REPLY : 0), true);
  view.setUint32(8, payload.length, true);
  message.set(payload, HEADER_SIZE);
  return message;
}

/** "A single 64-bit integer". */
export function u64Payload(value: bigint): Uint8Array {
  const payload = new Uint8Array(8);
  new DataView(payload.buffer).setBigUint64(0, checkU64('value', value), true);
  return payload;
}

/** "A vring state description". */
export function vringStatePayload(state: VringState): Uint8Array {
  const payload = new Uint8Array(8);
  const view = new DataView(payload.buffer);
  view.setUint32(0, checkU32('vring index', state.index), true);
  view.setUint32(4, checkU32('vring num', state.num), true);
  return payload;
}

/** "A vring address description", with no flags (VHOST_VRING_F_LOG) and no log address: vmctr does not log dirty pages. */
export function vringAddrPayload(addr: VringAddr): Uint8Array {
  const payload = new Uint8Array(VRING_ADDR_SIZE);
  const view = new DataView(payload.buffer);
  view.setUint32(0, checkU32('vring index', addr.index), true);
  view.setBigUint64(8, checkU64('descriptor table address', addr.desc), true);
  view.setBigUint64(16, checkU64('used ring address', addr.used), true);
  view.setBigUint64(24, checkU64('available ring address', addr.avail), true);
  return payload;
}

/** SET_VRING_KICK/CALL's u64: the vring index, its eventfd in the ancillary data (bit 8, "no fd", clear). */
export function vringFdPayload(index: number): Uint8Array {
  if (!Number.isInteger(index) || index < 0 || index > MAX_VRING_INDEX) throw new RangeError(`vhost-user: vring index ${index} is not 0 to ${MAX_VRING_INDEX}`);
  return u64Payload(BigInt(index));
}

/** "Memory regions description": nregions, padding, then the regions, which come with one fd each in the same order. */
export function memTablePayload(regions: readonly MemRegion[]): Uint8Array {
  if (regions.length === 0 || regions.length > MAX_MEM_REGIONS) throw new RangeError(`vhost-user: ${regions.length} memory regions, not 1 to ${MAX_MEM_REGIONS}`);
  const payload = new Uint8Array(8 + MEM_REGION_SIZE * regions.length);
  const view = new DataView(payload.buffer);
  view.setUint32(0, regions.length, true);
  regions.forEach((r, i) => {
    const at = 8 + MEM_REGION_SIZE * i;
    view.setBigUint64(at, checkU64('guest address', r.guestPhysAddr), true);
    view.setBigUint64(at + 8, checkU64('region size', r.memorySize), true);
    view.setBigUint64(at + 16, checkU64('user address', r.userspaceAddr), true);
    view.setBigUint64(at + 24, checkU64('mmap offset', r.mmapOffset), true);
  });
  return payload;
}

/** About `request`: a reply that breaks the protocol, a request the back-end failed, or one that cannot be made. */
export function requestError(request: Request, why: string): Error {
  return new Error(`vhost-user ${requestName(request)}: ${why}`);
}

/**
 * Checks a reply's header for `request`: the request code echoed, version
 * 1, the reply flag, no unknown flag, and the payload size every reply
 * vmctr asks for has. Returns that size, what is left to read.
 */
export function checkReplyHeader(request: Request, header: Uint8Array): number {
  if (header.length !== HEADER_SIZE) throw requestError(request, `reply header of ${header.length} bytes, not ${HEADER_SIZE}`);
  const view = new DataView(header.buffer, header.byteOffset, HEADER_SIZE);
  const code = view.getUint32(0, true);
  const flags = view.getUint32(4, true);
  const size = view.getUint32(8, true);
  if (code !== request) throw requestError(request, `the reply is for request ${code}`);
  if ((flags & HeaderFlag.VERSION_MASK) !== HeaderFlag.VERSION) throw requestError(request, `reply version ${flags & HeaderFlag.VERSION_MASK}, not ${HeaderFlag.VERSION}`);
  if (!(flags & HeaderFlag.REPLY)) throw requestError(request, `the reply flag is not set (flags 0x${flags.toString(16)})`);
  if (flags & ~KNOWN_FLAGS) throw requestError(request, `unknown reply flags 0x${(flags & ~KNOWN_FLAGS).toString(16)}`);
  if (size !== REPLY_PAYLOAD_SIZE) throw requestError(request, `reply payload of ${size} bytes, not ${REPLY_PAYLOAD_SIZE}`);
  return size;
}

/** The payload of a whole reply (header and payload) to `request`. Closes `fds`: no reply vmctr asks for carries any. */
function checkReply(request: Request, message: Uint8Array, fds: readonly number[]): DataView {
  try {
    const size = checkReplyHeader(request, message.subarray(0, HEADER_SIZE));
    if (message.length !== HEADER_SIZE + size) throw requestError(request, `reply of ${message.length} bytes, not ${HEADER_SIZE + size}`);
    if (fds.length) throw requestError(request, `the reply carries ${fds.length} unexpected fds`);
    return new DataView(message.buffer, message.byteOffset + HEADER_SIZE, size);
  } finally {
    for (const fd of fds) closeSync(fd);
  }
}

/** A u64 reply (GET_FEATURES, GET_PROTOCOL_FEATURES, GET_QUEUE_NUM). */
export function decodeU64Reply(request: Request, message: Uint8Array, fds: readonly number[]): bigint {
  return checkReply(request, message, fds).getBigUint64(0, true);
}

/** A vring state reply (GET_VRING_BASE). */
export function decodeVringStateReply(request: Request, message: Uint8Array, fds: readonly number[]): VringState {
  const view = checkReply(request, message, fds);
  return { index: view.getUint32(0, true), num: view.getUint32(4, true) };
}

/** REPLY_ACK's answer to a request with NEED_REPLY: a u64 status, zero for success. */
export function decodeAck(request: Request, message: Uint8Array, fds: readonly number[]): void {
  const status = decodeU64Reply(request, message, fds);
  if (status !== 0n) throw requestError(request, `the back-end failed the request (status ${status})`);
}
