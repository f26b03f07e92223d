// Guest RAM reused across fuzz cases, zeroed for each. Allocating it per
// case is not bounded: a mapping is unmapped only when the collector
// finalizes its ArrayBuffer, which it does not hurry to do for memory it
// does not count, and a 20000-case run died with V8 out of address space.
import { GuestMemory } from '../../vmm/memory/guest-memory.js';

const cache = new Map<number, GuestMemory>();

/** Zeroed RAM of `size` bytes from address 0, the same mapping every time for a size. */
export function freshRam(size: number): GuestMemory {
  let mem = cache.get(size);
  if (!mem) {
    mem = GuestMemory.allocate([{ base: 0, size }]);
    cache.set(size, mem);
  }
  mem.regions[0]!.bytes.fill(0);
  return mem;
}
