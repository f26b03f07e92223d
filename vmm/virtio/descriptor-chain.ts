// A descriptor chain (virtio 1.2, 2.7.5 and 2.7.5.3), parsed eagerly and
// defensively: the guest is hostile. Every index, flag, length and buffer
// address is checked before a device sees the chain; a looping or
// overlong chain, an out-of-range index, nested indirection or a buffer
// outside guest memory is a VirtioError.
import { DESCRIPTOR_SIZE, DescFlag } from './spec.js';
import { VirtioError, type VirtioMemory } from './memory.js';

export interface Descriptor {
  addr: number;
  len: number;
  writable: boolean;
}

const MAX_CHAIN_BYTES = 2 ** 32 - 1;

/** A view onto a descriptor table: guest bytes, read on demand. */
interface DescriptorTable {
  view: DataView;
  count: number;
}

function readDescriptor(table: DescriptorTable, i: number) {
  const at = i * DESCRIPTOR_SIZE;
  return {
    addr: Number(table.view.getBigUint64(at, true)),
    len: table.view.getUint32(at + 8, true),
    flags: table.view.getUint16(at + 12, true),
    next: table.view.getUint16(at + 14, true),
  };
}

export class DescriptorChain {
  readonly head: number;
  readonly descriptors: readonly Descriptor[];

  private constructor(head: number, descriptors: Descriptor[]) {
    this.head = head;
    this.descriptors = descriptors;
  }

  /**
   * Walks the chain starting at `head` of a queue of `queueSize` entries.
   * The walk is bounded by the table size (a time-to-live), so a loop ends
   * in an error instead of spinning. A chain, indirect part included, is at
   * most `queueSize` descriptors (2.7.5.3.1: the driver MUST NOT make it
   * longer), so a zero-length chain cannot cost a 65536-entry walk.
   */
  static parse(mem: VirtioMemory, table: DataView, queueSize: number, head: number, indirectAllowed: boolean): DescriptorChain {
    if (head >= queueSize) throw new VirtioError(`descriptor head ${head} is outside a queue of ${queueSize}`);
    const out: Descriptor[] = [];
    let total = 0;
    let sawWritable = false;
    const push = (addr: number, len: number, flags: number) => {
      const writable = (flags & DescFlag.WRITE) !== 0;
      if (sawWritable && !writable) throw new VirtioError('a device-readable descriptor follows a device-writable one');
      sawWritable ||= writable;
      total += len;
      if (total > MAX_CHAIN_BYTES) throw new VirtioError('descriptor chain is longer than 4 GiB');
      if (!mem.checkRange(addr, len)) throw new VirtioError(`descriptor buffer 0x${addr.toString(16)}+${len} is outside guest memory`);
      out.push({ addr, len, writable });
    };

    const main: DescriptorTable = { view: table, count: queueSize };
    let index = head;
    for (let ttl = queueSize; ; ttl--) {
      if (ttl === 0) throw new VirtioError('descriptor chain loops or is longer than the queue');
      const d = readDescriptor(main, index);
      if (d.flags & DescFlag.INDIRECT) {
        if (!indirectAllowed) throw new VirtioError('indirect descriptor without VIRTIO_F_INDIRECT_DESC');
        if (d.flags & DescFlag.NEXT) throw new VirtioError('indirect descriptor also has NEXT set');
        DescriptorChain.walkIndirect(mem, d.addr, d.len, queueSize - out.length, push);
        break; // an indirect descriptor ends the chain (2.7.5.3.1)
      }
      push(d.addr, d.len, d.flags);
      if (!(d.flags & DescFlag.NEXT)) break;
      if (d.next >= queueSize) throw new VirtioError(`descriptor next ${d.next} is outside a queue of ${queueSize}`);
      index = d.next;
    }
    return new DescriptorChain(head, out);
  }

  /** Walks an indirect table; `room` is how many descriptors the chain may still have. */
  private static walkIndirect(mem: VirtioMemory, addr: number, len: number, room: number, push: (addr: number, len: number, flags: number) => void): void {
    if (len === 0 || len % DESCRIPTOR_SIZE !== 0) throw new VirtioError(`indirect table length ${len} is not a non-zero multiple of 16`);
    const count = len / DESCRIPTOR_SIZE;
    if (count > 65536) throw new VirtioError('indirect table has more than 65536 entries');
    if (!mem.checkRange(addr, len)) throw new VirtioError(`indirect table 0x${addr.toString(16)}+${len} is outside guest memory`);
    const bytes = mem.slice(addr, len);
    const table: DescriptorTable = { view: new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength), count };
    let index = 0;
    for (let ttl = Math.min(count, room); ; ttl--) {
      if (ttl === 0) throw new VirtioError(count <= room ? 'indirect descriptor chain loops' : 'descriptor chain is longer than the queue');
      const d = readDescriptor(table, index);
      if (d.flags & DescFlag.INDIRECT) throw new VirtioError('nested indirect descriptor');
      push(d.addr, d.len, d.flags);
      if (!(d.flags & DescFlag.NEXT)) return;
      if (d.next >= count) throw new VirtioError(`indirect descriptor next ${d.next} is outside a table of ${count}`);
      index = d.next;
    }
  }

  /** Total bytes in device-readable and device-writable buffers. */
  get readableBytes(): number {
    return this.descriptors.reduce((n, d) => (d.writable ? n : n + d.len), 0);
  }

  get writableBytes(): number {
    return this.descriptors.reduce((n, d) => (d.writable ? n + d.len : n), 0);
  }
}

/** Reads the device-readable part of a chain in order, without copying unless asked. */
export class ChainReader {
  private readonly mem: VirtioMemory;
  private readonly parts: Descriptor[];
  private part = 0;
  private offset = 0;
  remaining: number;

  constructor(mem: VirtioMemory, chain: DescriptorChain) {
    this.mem = mem;
    this.parts = chain.descriptors.filter((d) => !d.writable);
    this.remaining = chain.readableBytes;
  }

  /** Views of the next `n` bytes (spanning descriptors); throws if the chain has fewer. */
  views(n: number): Uint8Array[] {
    if (n > this.remaining) throw new VirtioError(`request needs ${n} more readable bytes, the chain has ${this.remaining}`);
    const out: Uint8Array[] = [];
    while (n > 0) {
      const d = this.parts[this.part]!;
      const take = Math.min(n, d.len - this.offset);
      if (take > 0) out.push(this.mem.slice(d.addr + this.offset, take));
      this.offset += take;
      n -= take;
      this.remaining -= take;
      if (this.offset === d.len) {
        this.part++;
        this.offset = 0;
      }
    }
    return out;
  }

  /** The next `n` bytes as one copy (for headers). */
  read(n: number): Uint8Array {
    const views = this.views(n);
    if (views.length === 1) return views[0]!.slice();
    const out = new Uint8Array(n);
    let at = 0;
    for (const v of views) {
      out.set(v, at);
      at += v.byteLength;
    }
    return out;
  }

  /** All remaining readable bytes, as views. */
  rest(): Uint8Array[] {
    return this.views(this.remaining);
  }
}

/** Writes into the device-writable part of a chain in order. */
export class ChainWriter {
  private readonly mem: VirtioMemory;
  private readonly parts: Descriptor[];
  private part = 0;
  private offset = 0;
  written = 0;
  remaining: number;

  constructor(mem: VirtioMemory, chain: DescriptorChain) {
    this.mem = mem;
    this.parts = chain.descriptors.filter((d) => d.writable);
    this.remaining = chain.writableBytes;
  }

  /** Writes as much of `data` as fits; returns the number of bytes written. */
  write(data: Uint8Array): number {
    let done = 0;
    while (done < data.byteLength && this.part < this.parts.length) {
      const d = this.parts[this.part]!;
      const take = Math.min(data.byteLength - done, d.len - this.offset);
      if (take > 0) this.mem.slice(d.addr + this.offset, take).set(data.subarray(done, done + take));
      this.offset += take;
      done += take;
      if (this.offset === d.len) {
        this.part++;
        this.offset = 0;
      }
    }
    this.written += done;
    this.remaining -= done;
    return done;
  }

  /** Writes all of `data` or throws (for status bytes the protocol requires). */
  writeAll(data: Uint8Array): void {
    if (data.byteLength > this.remaining) throw new VirtioError(`reply needs ${data.byteLength} writable bytes, the chain has ${this.remaining}`);
    this.write(data);
  }
}
