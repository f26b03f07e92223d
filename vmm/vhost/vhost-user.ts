// A vhost-user front-end (QEMU docs/interop/vhost-user.rst): hands a
// device's virtio queues to a back-end in another process, such as
// virtiofsd, over the back-end's Unix socket. Guest RAM is shared with it
// as the regions' memfds (SET_MEM_TABLE), the rings are given as this
// process's addresses of them, and each queue's kick and call eventfds (a
// KVM ioeventfd and irqfd) are passed to it, so neither notifications nor
// data go through the VMM. Synchronous: a request returns once the back-end
// replied or, with REPLY_ACK, acknowledged it, within the socket's timeout.
// After any failure the stream may be out of step, so the connection is
// refused from then on ("Communication": a wrong reply ends the connection).
import { closeSync } from 'node:fs';
import { native } from '../kvm/native.js';
import type { GuestMemory } from '../memory/guest-memory.js';
import type { VirtioMemory } from '../virtio/memory.js';
import { featureBit } from '../virtio/spec.js';
import { ringHostAddresses } from './ring-address.js';
import {
  F_PROTOCOL_FEATURES,
  HEADER_SIZE,
  ProtocolFeature,
  Request,
  checkReplyHeader,
  decodeAck,
  decodeU64Reply,
  decodeVringStateReply,
  encodeRequest,
  memTablePayload,
  requestError,
  requestName,
  u64Payload,
  vringAddrPayload,
  vringFdPayload,
  vringStatePayload,
  type VringAddr,
} from './vhost-user-message.js';

const PROTOCOL_FEATURES = featureBit(F_PROTOCOL_FEATURES);
/** The protocol features implemented here: MQ (GET_QUEUE_NUM) and REPLY_ACK. */
const SUPPORTED_PROTOCOL_FEATURES = featureBit(ProtocolFeature.MQ) | featureBit(ProtocolFeature.REPLY_ACK);
/** No reply carries fds: up to this many are taken with one so that it is refused (and they closed); the addon closes any more. */
const MAX_REPLY_FDS = 8;
/** A larger GET_QUEUE_NUM is not believed (rust-vmm's VHOST_USER_MAX_VRINGS). */
const MAX_QUEUE_NUM = 0x8000;
/** A split ring's available index is 16 bits. */
const MAX_VRING_BASE = 0xffff;

/** A queue as the driver set it up, and the eventfds that signal it. */
export interface QueueSetup {
  size: number;
  /** Guest addresses of the descriptor table, available and used rings. */
  desc: number;
  avail: number;
  used: number;
  /** Signalled by the driver's notifications (a KVM ioeventfd). */
  kickFd: number;
  /** Interrupts the guest (a KVM irqfd). */
  callFd: number;
}

export class VhostUserFrontend {
  /** GET_FEATURES' and GET_PROTOCOL_FEATURES' answers, once asked. */
  private offered: bigint | undefined;
  private offeredProtocol: bigint | undefined;
  /** What SET_FEATURES and SET_PROTOCOL_FEATURES set. */
  private acked = 0n;
  private protocol = 0n;
  private failure: string | undefined;
  private closed = false;

  private constructor(
    private readonly fd: number,
    private readonly timeoutMs: number,
  ) {}

  /** Connects to the back-end listening on `socketPath`; a request it leaves unanswered for `timeoutMs` fails. */
  static connect(socketPath: string, options: { timeoutMs: number }): VhostUserFrontend {
    try {
      return new VhostUserFrontend(native.unixStreamConnect(socketPath, options.timeoutMs), options.timeoutMs);
    } catch (e) {
      throw new Error(`vhost-user: cannot connect to ${socketPath}: ${(e as Error).message}`, { cause: e });
    }
  }

  /** SET_OWNER: this connection is the session's front-end. */
  setOwner(): void {
    this.send(Request.SET_OWNER);
  }

  /** GET_FEATURES: the virtio features the back-end has, with F_PROTOCOL_FEATURES if it negotiates protocol features. */
  getFeatures(): bigint {
    this.offered = this.query(Request.GET_FEATURES, undefined, (m, fds) => decodeU64Reply(Request.GET_FEATURES, m, fds));
    return this.offered;
  }

  /**
   * SET_FEATURES: `features` (those the driver accepted, all offered by the
   * back-end) and F_PROTOCOL_FEATURES when offered, with which the rings
   * start disabled until SET_VRING_ENABLE ("Ring states").
   */
  setFeatures(features: bigint): void {
    const offered = this.offeredFeatures(Request.SET_FEATURES);
    const value = features | (offered & PROTOCOL_FEATURES);
    const missing = value & ~offered;
    if (missing) throw requestError(Request.SET_FEATURES, `the back-end does not offer features 0x${missing.toString(16)}`);
    this.send(Request.SET_FEATURES, u64Payload(value));
    this.acked = value;
  }

  /** GET_PROTOCOL_FEATURES: only for a back-end that offers F_PROTOCOL_FEATURES. */
  getProtocolFeatures(): bigint {
    this.requireProtocolFeatures(Request.GET_PROTOCOL_FEATURES);
    this.offeredProtocol = this.query(Request.GET_PROTOCOL_FEATURES, undefined, (m, fds) => decodeU64Reply(Request.GET_PROTOCOL_FEATURES, m, fds));
    return this.offeredProtocol;
  }

  /** SET_PROTOCOL_FEATURES: offered ones implemented here. With REPLY_ACK, every later request without a reply of its own is acknowledged. */
  setProtocolFeatures(features: bigint): void {
    this.requireProtocolFeatures(Request.SET_PROTOCOL_FEATURES);
    if (this.offeredProtocol === undefined) throw requestError(Request.SET_PROTOCOL_FEATURES, 'GET_PROTOCOL_FEATURES comes first');
    const unsupported = features & ~(SUPPORTED_PROTOCOL_FEATURES & this.offeredProtocol);
    if (unsupported) throw requestError(Request.SET_PROTOCOL_FEATURES, `protocol features 0x${unsupported.toString(16)} are not offered by the back-end or not implemented here`);
    this.send(Request.SET_PROTOCOL_FEATURES, u64Payload(features));
    this.protocol = features;
  }

  /** GET_PROTOCOL_FEATURES, then SET_PROTOCOL_FEATURES of those offered that are implemented here; returns them. */
  negotiateProtocolFeatures(): bigint {
    const features = this.getProtocolFeatures() & SUPPORTED_PROTOCOL_FEATURES;
    this.setProtocolFeatures(features);
    return features;
  }

  /** GET_QUEUE_NUM: how many queues the back-end serves (MQ negotiated). */
  getQueueNum(): number {
    if (!(this.protocol & featureBit(ProtocolFeature.MQ))) throw requestError(Request.GET_QUEUE_NUM, 'protocol feature MQ is not negotiated');
    return this.query(Request.GET_QUEUE_NUM, undefined, (m, fds) => {
      const n = decodeU64Reply(Request.GET_QUEUE_NUM, m, fds);
      if (n < 1n || n > BigInt(MAX_QUEUE_NUM)) throw requestError(Request.GET_QUEUE_NUM, `the back-end reports ${n} queues, not 1 to ${MAX_QUEUE_NUM}`);
      return Number(n);
    });
  }

  /** SET_MEM_TABLE: all of guest RAM, each region as its memfd and where it is mapped here; the memory must be shared. */
  setMemTable(memory: GuestMemory): void {
    const fds: number[] = [];
    const regions = memory.regions.map((r) => {
      if (r.fd === undefined) throw requestError(Request.SET_MEM_TABLE, 'guest memory is not shared (GuestMemory.allocate with shared: true)');
      fds.push(r.fd);
      return { guestPhysAddr: BigInt(r.base), memorySize: BigInt(r.size), userspaceAddr: native.bufferAddress(r.buffer), mmapOffset: 0n };
    });
    this.send(Request.SET_MEM_TABLE, memTablePayload(regions), fds);
  }

  setVringNum(index: number, num: number): void {
    this.send(Request.SET_VRING_NUM, vringStatePayload({ index, num }));
  }

  /** SET_VRING_BASE: the available ring entry the back-end starts from. */
  setVringBase(index: number, base: number): void {
    this.send(Request.SET_VRING_BASE, vringStatePayload({ index, num: base }));
  }

  /** SET_VRING_ADDR: the rings' addresses in this process. */
  setVringAddr(addr: VringAddr): void {
    this.send(Request.SET_VRING_ADDR, vringAddrPayload(addr));
  }

  /** GET_VRING_BASE: stops the ring and returns the next available ring entry the back-end would have taken. */
  getVringBase(index: number): number {
    return this.query(Request.GET_VRING_BASE, vringStatePayload({ index, num: 0 }), (m, fds) => {
      const state = decodeVringStateReply(Request.GET_VRING_BASE, m, fds);
      if (state.index !== index) throw requestError(Request.GET_VRING_BASE, `the reply is for vring ${state.index}, not ${index}`);
      if (state.num > MAX_VRING_BASE) throw requestError(Request.GET_VRING_BASE, `base ${state.num} is not a 16-bit ring index`);
      return state.num;
    });
  }

  setVringKick(index: number, eventFd: number): void {
    this.send(Request.SET_VRING_KICK, vringFdPayload(index), [eventFd]);
  }

  setVringCall(index: number, eventFd: number): void {
    this.send(Request.SET_VRING_CALL, vringFdPayload(index), [eventFd]);
  }

  /** SET_VRING_ENABLE: only once F_PROTOCOL_FEATURES is acknowledged (without it the rings are always enabled). */
  setVringEnable(index: number, enable: boolean): void {
    if (!this.ringsStartDisabled) throw requestError(Request.SET_VRING_ENABLE, 'F_PROTOCOL_FEATURES is not negotiated');
    this.send(Request.SET_VRING_ENABLE, vringStatePayload({ index, num: enable ? 1 : 0 }));
  }

  /**
   * Hands queue `index` to the back-end from its first entry: size, base,
   * ring addresses (checked to lie in `mem`), the eventfds, and enabled
   * where rings start disabled.
   */
  startQueue(index: number, queue: QueueSetup, mem: VirtioMemory): void {
    const addr = { index, ...ringHostAddresses(mem, queue.size, queue.desc, queue.avail, queue.used) };
    this.setVringNum(index, queue.size);
    this.setVringBase(index, 0);
    this.setVringAddr(addr);
    // The call eventfd first: once it has the kick, the back-end may complete requests.
    this.setVringCall(index, queue.callFd);
    this.setVringKick(index, queue.kickFd);
    if (this.ringsStartDisabled) this.setVringEnable(index, true);
  }

  /** Disables queue `index` (where rings can be disabled) and stops it: the back-end no longer touches its rings. Returns GET_VRING_BASE's answer. */
  stopQueue(index: number): number {
    if (this.ringsStartDisabled) this.setVringEnable(index, false);
    return this.getVringBase(index);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    closeSync(this.fd);
  }

  private get ringsStartDisabled(): boolean {
    return (this.acked & PROTOCOL_FEATURES) !== 0n;
  }

  private offeredFeatures(request: Request): bigint {
    if (this.offered === undefined) throw requestError(request, 'GET_FEATURES comes first');
    return this.offered;
  }

  private requireProtocolFeatures(request: Request): void {
    if (!(this.offeredFeatures(request) & PROTOCOL_FEATURES)) throw requestError(request, 'the back-end does not offer F_PROTOCOL_FEATURES');
  }

  /** A request without a reply of its own: with REPLY_ACK it is sent with NEED_REPLY and its acknowledgement awaited. */
  private send(request: Request, payload?: Uint8Array, fds: readonly number[] = []): void {
    const ack = (this.protocol & featureBit(ProtocolFeature.REPLY_ACK)) !== 0n;
    this.exchange(request, encodeRequest(request, payload, ack), fds, ack ? (m, replyFds) => decodeAck(request, m, replyFds) : undefined);
  }

  /** A request with a reply ("Communication"), decoded by `decode`. */
  private query<T>(request: Request, payload: Uint8Array | undefined, decode: (message: Uint8Array, fds: number[]) => T): T {
    return this.exchange(request, encodeRequest(request, payload), [], decode) as T;
  }

  private exchange<T>(request: Request, message: Uint8Array, fds: readonly number[], decode?: (message: Uint8Array, fds: number[]) => T): T | undefined {
    if (this.closed) throw requestError(request, 'the connection is closed');
    if (this.failure !== undefined) throw requestError(request, `the connection failed earlier (${this.failure})`);
    try {
      this.io(request, () => native.sendWithFds(this.fd, message, fds));
      return decode && this.receiveReply(request, decode);
    } catch (e) {
      this.failure = (e as Error).message;
      throw e;
    }
  }

  /** One reply: its header checked before the payload is read, so a bad size is never waited for. */
  private receiveReply<T>(request: Request, decode: (message: Uint8Array, fds: number[]) => T): T {
    const fds: number[] = [];
    let message: Uint8Array;
    try {
      const header = this.receive(request, HEADER_SIZE, fds);
      message = Buffer.concat([header, this.receive(request, checkReplyHeader(request, header), fds)]);
    } catch (e) {
      for (const fd of fds) closeSync(fd);
      throw e;
    }
    return decode(message, fds);
  }

  /** Exactly `length` bytes, however the stream splits them; fds that come with them are added to `fds`. */
  private receive(request: Request, length: number, fds: number[]): Buffer {
    const chunks: Buffer[] = [];
    for (let got = 0; got < length; ) {
      const { bytes, fds: received } = this.io(request, () => native.recvWithFds(this.fd, length - got, MAX_REPLY_FDS));
      fds.push(...received);
      if (bytes.length === 0) throw requestError(request, 'the back-end closed the connection');
      chunks.push(bytes);
      got += bytes.length;
    }
    return Buffer.concat(chunks);
  }

  /** A socket call, its error one line naming the request; the timeout said as such. */
  private io<T>(request: Request, call: () => T): T {
    try {
      return call();
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      const why = code === 'EAGAIN' ? `the back-end did not respond within ${this.timeoutMs} ms` : (e as Error).message;
      throw new Error(`vhost-user ${requestName(request)}: ${why}`, { cause: e });
    }
  }
}
