import { closeSync } from 'node:fs';
import { native } from '../kvm/native.js';

/** A guest access outside guest RAM, or a malformed address/length. */
export class GuestMemoryError extends Error {
  readonly addr: number;
  readonly len: number;

  constructor(addr: number, len: number, why = 'is not in guest memory') {
    super(`guest range 0x${addr.toString(16)}+${len} ${why}`);
    this.addr = addr;
    this.len = len;
  }
}

/** One contiguous piece of guest RAM backed by a memfd mapping. */
export interface GuestRegion {
  readonly base: number;
  readonly size: number;
  /** The whole mapping; KVM registers the same ArrayBuffer, so views are zero-copy. */
  readonly buffer: ArrayBuffer;
  readonly bytes: Uint8Array;
  readonly view: DataView;
  /** memfd of the mapping when allocated shared (for vhost-user backends); private memory has none. */
  readonly fd: number | undefined;
}

/**
 * Guest RAM: sorted, non-overlapping regions, and the one place where guest
 * physical addresses are translated and bounds-checked. Devices and loaders
 * only resolve, read, write and check ranges through it.
 */
export class GuestMemory {
  readonly regions: readonly GuestRegion[];

  private constructor(regions: GuestRegion[]) {
    this.regions = regions;
  }

  /**
   * Allocates RAM for the given [base, size) ranges (page-aligned, sorted,
   * disjoint): private memory on transparent huge pages, or with `shared`
   * a memfd per region that another process can map.
   */
  static allocate(ranges: readonly { base: number; size: number }[], options: { shared?: boolean } = {}): GuestMemory {
    const sorted = [...ranges].sort((a, b) => a.base - b.base);
    const regions: GuestRegion[] = [];
    try {
      for (const [i, r] of sorted.entries()) {
        if (r.base % 4096 || r.size % 4096 || r.size <= 0) throw new Error(`guest region 0x${r.base.toString(16)}+0x${r.size.toString(16)} is not page-aligned`);
        const prev = sorted[i - 1];
        if (prev && prev.base + prev.size > r.base) throw new Error(`guest regions overlap at 0x${r.base.toString(16)}`);
        const { fd, buffer } = native.createGuestMemory(r.size, `vmctr-ram-${i}`, options.shared ?? false);
        regions.push({ base: r.base, size: r.size, buffer, bytes: new Uint8Array(buffer), view: new DataView(buffer), fd: fd >= 0 ? fd : undefined });
      }
    } catch (e) {
      for (const r of regions) if (r.fd !== undefined) closeSync(r.fd);
      throw e;
    }
    return new GuestMemory(regions);
  }

  /** Total RAM in bytes. */
  get size(): number {
    return this.regions.reduce((n, r) => n + r.size, 0);
  }

  /** The region holding all of [addr, addr+len) and the offset into it; throws otherwise. */
  resolve(addr: number, len: number): { region: GuestRegion; offset: number } {
    if (!Number.isSafeInteger(addr) || !Number.isSafeInteger(len) || addr < 0 || len < 0) throw new GuestMemoryError(addr, len, 'is malformed');
    // Binary search: the last region whose base <= addr.
    let lo = 0;
    let hi = this.regions.length - 1;
    let found: GuestRegion | undefined;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const r = this.regions[mid]!;
      if (r.base <= addr) {
        found = r;
        lo = mid + 1;
      } else {
        hi = mid - 1;
      }
    }
    if (!found || addr - found.base + len > found.size) throw new GuestMemoryError(addr, len);
    return { region: found, offset: addr - found.base };
  }

  checkRange(addr: number, len: number): boolean {
    try {
      this.resolve(addr, len);
      return true;
    } catch {
      return false;
    }
  }

  /** A zero-copy view of guest bytes; valid while the VM lives. */
  slice(addr: number, len: number): Uint8Array {
    const { region, offset } = this.resolve(addr, len);
    return region.bytes.subarray(offset, offset + len);
  }

  read(addr: number, len: number): Uint8Array {
    return Uint8Array.prototype.slice.call(this.slice(addr, len));
  }

  write(addr: number, data: Uint8Array): void {
    this.slice(addr, data.byteLength).set(data);
  }

  readU8(addr: number): number {
    const { region, offset } = this.resolve(addr, 1);
    return region.view.getUint8(offset);
  }

  readU16(addr: number): number {
    const { region, offset } = this.resolve(addr, 2);
    return region.view.getUint16(offset, true);
  }

  readU32(addr: number): number {
    const { region, offset } = this.resolve(addr, 4);
    return region.view.getUint32(offset, true);
  }

  readU64(addr: number): bigint {
    const { region, offset } = this.resolve(addr, 8);
    return region.view.getBigUint64(offset, true);
  }

  writeU8(addr: number, v: number): void {
    const { region, offset } = this.resolve(addr, 1);
    region.view.setUint8(offset, v);
  }

  writeU16(addr: number, v: number): void {
    const { region, offset } = this.resolve(addr, 2);
    region.view.setUint16(offset, v, true);
  }

  writeU32(addr: number, v: number): void {
    const { region, offset } = this.resolve(addr, 4);
    region.view.setUint32(offset, v, true);
  }

  writeU64(addr: number, v: bigint): void {
    const { region, offset } = this.resolve(addr, 8);
    region.view.setBigUint64(offset, v, true);
  }

  /** Closes the memfds, if shared; the mappings go when the last view is collected. */
  close(): void {
    for (const r of this.regions) if (r.fd !== undefined) closeSync(r.fd);
  }
}
