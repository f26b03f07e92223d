import test from 'ava';
import { GuestMemory } from '../../vmm/memory/guest-memory.js';
import { FuzzFailure, MemoryWatch } from './invariants.js';
import { DEFAULT_SEED, runCase, targets } from './targets.js';

// CI's share of bench/fuzz: a seeded few hundred cases of every target
// (a few thousand in all), each under the same invariants and deadline.
// A failure names its case; `runCase(target, seed, index)` replays it.

/** Cases per target: the virtio targets cost milliseconds a case, the parsers tens of microseconds. */
const CASES: Record<string, number> = {
  'virtio-console': 300,
  'virtio-rng': 300,
  'virtio-blk': 300,
  'mmio-transport': 400,
  'blk-request': 1000,
  'elf-pvh': 1000,
  'agent-frames': 1000,
};
/** Generous against a busy 2-core CI machine: the slowest case here takes well under 100 ms. */
const DEADLINE_MS = 2000;

for (const target of targets) {
  const cases = CASES[target.name] ?? 300;
  test(`fuzz ${target.name}: ${cases} cases (seed 0x${DEFAULT_SEED.toString(16)})`, (t) => {
    const failures: string[] = [];
    for (let i = 0; i < cases; i++) {
      const r = runCase(target, DEFAULT_SEED, i, DEADLINE_MS);
      if (r.failure) failures.push(`case ${i}: ${r.failure}`);
    }
    t.deepEqual(failures, []);
  });
}

test('the memory watch catches a host write the guest did not allow, and passes one it did', (t) => {
  const mem = GuestMemory.allocate([{ base: 0, size: 0x4000 }]);
  const watch = new MemoryWatch(mem);
  watch.write(0x100, Uint8Array.of(1, 2, 3));
  watch.allow(0x2000, 16);
  mem.writeU32(0x2004, 0xdeadbeef);
  t.notThrows(() => watch.check('the host'));
  mem.writeU8(0x2010, 1);
  t.throws(() => watch.check('the host'), { instanceOf: FuzzFailure, message: /guest byte 0x2010/ });
  mem.close();
});
