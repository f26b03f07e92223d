// Invariants every fuzz case checks. A violation is a FuzzFailure: the
// runner tells it apart from the errors a module documents (which are the
// correct answer to a malformed input, not a bug).
import type { GuestMemory } from '../../vmm/memory/guest-memory.js';
import type { Rng } from './prng.js';

export class FuzzFailure extends Error {
  override name = 'FuzzFailure';
}

const PAGE = 4096;

/**
 * What guest memory should hold if the host wrote nothing but what the
 * guest let it: a copy kept in step with the (test) guest's own writes,
 * plus a mask of the bytes the host may write (device-writable buffers,
 * used rings, boot structures). Guest RAM is a mapping of known size, so a
 * write past its end cannot happen through GuestMemory; a write to the
 * wrong guest bytes (a used ring at the wrong index, data into a
 * device-readable buffer, a segment loaded at the wrong address) can, and
 * `check` catches it, once per case, wherever it happened.
 */
export class MemoryWatch {
  private readonly expected: Buffer[];
  private readonly mayWrite: Uint8Array[];

  constructor(private readonly mem: GuestMemory) {
    this.expected = mem.regions.map((r) => Buffer.from(r.bytes));
    this.mayWrite = mem.regions.map((r) => new Uint8Array(r.size));
  }

  /** A guest write: to memory and to the expected copy. Out-of-range parts are dropped (the guest cannot write there either). */
  write(addr: number, bytes: Uint8Array): void {
    this.each(addr, bytes.byteLength, (ri, from, to, skip) => {
      const part = bytes.subarray(skip, skip + to - from);
      this.mem.regions[ri]!.bytes.set(part, from);
      this.expected[ri]!.set(part, from);
    });
  }

  writeU16(addr: number, v: number): void {
    this.write(addr, Uint8Array.of(v & 0xff, (v >>> 8) & 0xff));
  }

  writeU32(addr: number, v: number): void {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setUint32(0, v >>> 0, true);
    this.write(addr, b);
  }

  writeU64(addr: number, v: bigint): void {
    const b = new Uint8Array(8);
    new DataView(b.buffer).setBigUint64(0, BigInt.asUintN(64, v), true);
    this.write(addr, b);
  }

  /** Ranges already marked: a hostile table names the same 1 MiB buffer hundreds of times a step. */
  private readonly allowed = new Set<string>();

  /** The host may write [addr, addr+len) (the part of it in guest RAM). */
  allow(addr: number, len: number): void {
    const key = `${addr}+${len}`;
    if (this.allowed.has(key)) return;
    this.allowed.add(key);
    this.each(addr, len, (ri, from, to) => this.mayWrite[ri]!.fill(1, from, to));
  }

  /** Throws a FuzzFailure naming the first byte the host changed outside every allowed range. */
  check(what: string): void {
    this.mem.regions.forEach((region, ri) => {
      const now = Buffer.from(region.buffer);
      const then = this.expected[ri]!;
      const may = this.mayWrite[ri]!;
      for (let page = 0; page < region.size; page += PAGE) {
        const end = Math.min(page + PAGE, region.size);
        if (now.compare(then, page, end, page, end) === 0) continue;
        for (let i = page; i < end; i++) {
          if (now[i] === then[i] || may[i]) continue;
          throw new FuzzFailure(`${what} wrote guest byte 0x${(region.base + i).toString(16)} (0x${then[i]!.toString(16)} to 0x${now[i]!.toString(16)}), outside every range the guest allowed`);
        }
      }
    });
  }

  /** Calls `f(region, from, to, skip)` for each region's share of [addr, addr+len). */
  private each(addr: number, len: number, f: (ri: number, from: number, to: number, skip: number) => void): void {
    if (!Number.isFinite(addr) || !Number.isFinite(len) || len <= 0) return;
    this.mem.regions.forEach((r, ri) => {
      const from = Math.max(addr, r.base);
      const to = Math.min(addr + len, r.base + r.size);
      if (from < to) f(ri, from - r.base, to - r.base, from - addr);
    });
  }
}

/** Bounded work: the host took no more than `limit` from the guest in one step. */
export function checkBound(value: number, limit: number, what: string): void {
  if (value > limit) throw new FuzzFailure(`${what}: ${value}, above the bound ${limit}`);
}

/** One fuzz target: `run` builds case `caseIndex` from `rng` and throws a FuzzFailure when an invariant breaks. */
export interface FuzzTarget {
  name: string;
  run(rng: Rng, caseIndex: number): void;
}
