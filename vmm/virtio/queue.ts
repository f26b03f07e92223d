// A split virtqueue (virtio 1.2, 2.7), device side. The driver's
// configuration is validated as it is written and once more as a whole on
// activation; the rings are then accessed through views made once, and
// every index the driver publishes is checked before use.
import { DescriptorChain } from './descriptor-chain.js';
import { VirtioError, type VirtioMemory } from './memory.js';
import {
  AVAIL_F_NO_INTERRUPT, AVAIL_RING_ALIGN, DESCRIPTOR_SIZE, DESC_TABLE_ALIGN, MAX_QUEUE_SIZE, USED_RING_ALIGN,
} from './spec.js';

interface Rings {
  desc: DataView;
  avail: DataView;
  /** avail.idx, read atomically: the driver updates it from another CPU. */
  availIdx: Uint16Array;
  used: DataView;
  /** used.idx, published atomically after the element it covers. */
  usedIdx: Uint16Array;
  /** avail_event (after used.ring), stored atomically before avail.idx is read again. */
  availEvent: Uint16Array;
}

/** A Uint16Array over one aligned u16 in guest memory (for Atomics). */
function u16At(mem: VirtioMemory, addr: number): Uint16Array {
  const b = mem.slice(addr, 2);
  return new Uint16Array(b.buffer, b.byteOffset, 1);
}

function dataView(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

export class Queue {
  readonly maxSize: number;
  size: number;
  ready = false;
  descTable = 0;
  availRing = 0;
  usedRing = 0;
  /** Negotiated features that change queue behaviour, set on activation. */
  eventIdx = false;
  indirect = false;

  private rings: Rings | undefined;
  private mem: VirtioMemory | undefined;
  private nextAvail = 0;
  private nextUsed = 0;
  /** used.idx when the driver was last interrupted, for event-index suppression. */
  private signalledUsed: number | undefined;

  constructor(maxSize: number) {
    if (maxSize < 1 || maxSize > MAX_QUEUE_SIZE || (maxSize & (maxSize - 1)) !== 0) throw new RangeError(`queue max size ${maxSize} must be a power of two up to ${MAX_QUEUE_SIZE}`);
    this.maxSize = maxSize;
    this.size = maxSize;
  }

  /** 4.2.3.2: QueueNum must be a power of two no larger than QueueNumMax. */
  setSize(n: number): void {
    if (n < 1 || n > this.maxSize || (n & (n - 1)) !== 0) throw new VirtioError(`queue size ${n} is not a power of two up to ${this.maxSize}`);
    this.size = n;
  }

  /** Checks the rings' alignment and that they lie in guest memory (2.7). */
  isValid(mem: VirtioMemory): boolean {
    const s = this.size;
    return this.ready
      && this.descTable % DESC_TABLE_ALIGN === 0 && this.availRing % AVAIL_RING_ALIGN === 0 && this.usedRing % USED_RING_ALIGN === 0
      && mem.checkRange(this.descTable, DESCRIPTOR_SIZE * s)
      && mem.checkRange(this.availRing, 6 + 2 * s)
      && mem.checkRange(this.usedRing, 6 + 8 * s);
  }

  /** Maps the rings; the queue must be valid. Called when the driver sets DRIVER_OK. */
  activate(mem: VirtioMemory, features: { eventIdx: boolean; indirect: boolean }): void {
    if (!this.isValid(mem)) throw new VirtioError('queue rings are misaligned or outside guest memory');
    const s = this.size;
    this.mem = mem;
    this.eventIdx = features.eventIdx;
    this.indirect = features.indirect;
    this.rings = {
      desc: dataView(mem.slice(this.descTable, DESCRIPTOR_SIZE * s)),
      avail: dataView(mem.slice(this.availRing, 6 + 2 * s)),
      availIdx: u16At(mem, this.availRing + 2),
      used: dataView(mem.slice(this.usedRing, 6 + 8 * s)),
      usedIdx: u16At(mem, this.usedRing + 2),
      availEvent: u16At(mem, this.usedRing + 4 + 8 * s),
    };
    this.nextAvail = 0;
    this.nextUsed = 0;
    this.signalledUsed = undefined;
  }

  get active(): boolean {
    return this.rings !== undefined;
  }

  /**
   * The next available chain, or undefined when the driver has offered
   * none. An avail index more than a queue-size ahead is a hostile driver
   * (it would make us walk stale entries forever): VirtioError.
   */
  pop(): DescriptorChain | undefined {
    const r = this.rings;
    if (!r || !this.mem) return undefined;
    let pending = this.pending(r);
    if (pending === 0 && this.eventIdx) {
      // The queue looks empty: ask to be notified at the next new buffer
      // (avail_event, 2.7.10), then look again. The driver publishes
      // avail.idx, then reads avail_event to decide whether to notify; we
      // store avail_event, then read avail.idx. Unless our store is visible
      // before our load, both sides can miss the other's write and a buffer
      // waits with no notification coming (Firecracker and cloud-hypervisor
      // put a SeqCst fence here). JavaScript has no fence, but Atomics.store
      // is a sequentially consistent store, which V8 emits as XCHG on
      // x86-64 on any buffer, shared or not: a locked instruction, so the
      // store is globally visible before the Atomics.load that follows.
      // (The ECMAScript memory model promises nothing for a non-shared
      // buffer, whose other side is not JavaScript anyway; used.idx relies
      // on the same instruction for its release ordering.)
      Atomics.store(r.availEvent, 0, this.nextAvail);
      pending = this.pending(r);
    }
    if (pending === 0) return undefined;
    if (pending > this.size) throw new VirtioError(`driver published ${pending} buffers in a queue of ${this.size}`);
    const head = r.avail.getUint16(4 + 2 * (this.nextAvail % this.size), true);
    this.nextAvail = (this.nextAvail + 1) & 0xffff;
    return DescriptorChain.parse(this.mem, r.desc, this.size, head, this.indirect);
  }

  /** Buffers the driver has published that the device has not taken. */
  private pending(r: Rings): number {
    return (Atomics.load(r.availIdx, 0) - this.nextAvail) & 0xffff;
  }

  /** Returns a chain to the driver with `len` bytes written into it. */
  addUsed(head: number, len: number): void {
    const r = this.rings;
    if (!r) return;
    const at = 4 + 8 * (this.nextUsed % this.size);
    r.used.setUint32(at, head, true);
    r.used.setUint32(at + 4, len, true);
    this.nextUsed = (this.nextUsed + 1) & 0xffff;
    // The element must be visible before the index that publishes it.
    Atomics.store(r.usedIdx, 0, this.nextUsed);
  }

  /** Whether the driver wants an interrupt for the buffers used since the last one (2.7.7, 2.7.10). */
  needsInterrupt(): boolean {
    const r = this.rings;
    if (!r) return false;
    if (!this.eventIdx) {
      return (r.avail.getUint16(0, true) & AVAIL_F_NO_INTERRUPT) === 0;
    }
    const old = this.signalledUsed;
    const now = this.nextUsed;
    this.signalledUsed = now;
    if (old === undefined) return true;
    const usedEvent = r.avail.getUint16(4 + 2 * this.size, true);
    // vring_need_event: did used.idx move past used_event since the last interrupt?
    return ((now - usedEvent - 1) & 0xffff) < ((now - old) & 0xffff);
  }

  reset(): void {
    this.ready = false;
    this.size = this.maxSize;
    this.descTable = this.availRing = this.usedRing = 0;
    this.rings = undefined;
    this.mem = undefined;
    this.nextAvail = this.nextUsed = 0;
    this.signalledUsed = undefined;
  }
}
