// Address buses for port I/O and MMIO: devices own disjoint ranges, and an
// access is routed with the offset into the device's range.

/** A device reached through a bus: `data` is the access, sized 1-8 bytes. */
export interface BusDevice {
  read(offset: number, data: Uint8Array): void;
  write(offset: number, data: Uint8Array): void;
}

interface BusRange {
  base: number;
  len: number;
  name: string;
  device: BusDevice;
}

export class Bus {
  readonly name: string;
  private readonly ranges: BusRange[] = [];

  constructor(name: string) {
    this.name = name;
  }

  /** Claims [base, base+len) for `device`; refuses overlaps. */
  insert(base: number, len: number, name: string, device: BusDevice): void {
    if (len <= 0) throw new RangeError(`${this.name}: empty range for ${name}`);
    const clash = this.ranges.find((r) => base < r.base + r.len && r.base < base + len);
    if (clash) throw new Error(`${this.name}: ${name} at 0x${base.toString(16)} overlaps ${clash.name} at 0x${clash.base.toString(16)}`);
    this.ranges.push({ base, len, name, device });
    this.ranges.sort((a, b) => a.base - b.base);
  }

  private find(addr: number, size: number): { device: BusDevice; offset: number } | undefined {
    let lo = 0;
    let hi = this.ranges.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const r = this.ranges[mid]!;
      if (addr < r.base) hi = mid - 1;
      else if (addr >= r.base + r.len) lo = mid + 1;
      else return addr + size <= r.base + r.len ? { device: r.device, offset: addr - r.base } : undefined;
    }
    return undefined;
  }

  /** Routes a read; an access nobody claims reads as all ones, like an empty bus. Returns whether a device took it. */
  read(addr: number, data: Uint8Array): boolean {
    const hit = this.find(addr, data.byteLength);
    if (!hit) {
      data.fill(0xff);
      return false;
    }
    hit.device.read(hit.offset, data);
    return true;
  }

  /** Routes a write; an unclaimed write is dropped. Returns whether a device took it. */
  write(addr: number, data: Uint8Array): boolean {
    const hit = this.find(addr, data.byteLength);
    if (!hit) return false;
    hit.device.write(hit.offset, data);
    return true;
  }
}
