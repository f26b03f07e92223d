import test from 'ava';
import { ConsoleDevice } from '../../vmm/devices/console/device.js';
import { RngDevice } from '../../vmm/devices/rng/device.js';
import { BlockDevice } from '../../vmm/devices/block/device.js';
import type { VirtioDevice } from '../../vmm/virtio/device.js';
import { DeviceStatus as S } from '../../vmm/virtio/spec.js';
import { DATA_BASE, TestDriver } from './driver.js';
import { memoryBackend } from './memory-disk.js';

// Property: whatever a driver puts in the rings, a device either processes
// it or asks for a reset; it never throws into the VMM, never hangs, and
// never reports used lengths beyond what the chain offered.

/** xorshift32: reproducible runs, the seed is in the test title. */
function rng(seed: number) {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13; s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5; s >>>= 0;
    return s;
  };
}

const devices: [string, () => VirtioDevice][] = [
  ['virtio-console', () => new ConsoleDevice([{ console: true, handler: { output: () => {} } }, { name: 'agent', handler: { output: () => {} } }])],
  ['virtio-rng', () => new RngDevice()],
  ['virtio-blk', () => new BlockDevice(memoryBackend(), 'fuzz')],
];

for (const [name, make] of devices) {
  const SEED = 0x5eed;
  test(`fuzz ${name}: 1500 random descriptor tables and avail rings (seed ${SEED})`, (t) => {
    const next = rng(SEED);
    let broken = 0;
    for (let round = 0; round < 1500; round++) {
      const d = new TestDriver(make());
      d.negotiate();
      const size = 8;
      const queues = d.mmio.queues.length;
      for (let q = 0; q < queues; q++) d.setupQueue(q, size);
      d.driverOk();
      for (let q = 0; q < queues; q++) {
        const l = d.layouts[q]!;
        for (let i = 0; i < size; i++) {
          const r = next();
          // Mostly plausible addresses, sometimes wild ones.
          const addr = r % 5 === 0 ? next() * 4096 : DATA_BASE + (next() % 0x1000);
          const len = r % 7 === 0 ? next() : next() % 512;
          d.writeDesc(q, i, { addr, len, flags: next() & 7, next: next() % (size + 2) });
          d.mem.writeU16(l.avail + 4 + 2 * i, next() % (size + 1));
        }
        d.setAvailIdx(q, next() % (size + 3));
        t.notThrows(() => d.transport.notify(q));
        const used = d.usedIdx(q);
        for (let u = 0; u < Math.min(used, size); u++) t.true(d.usedElem(q, u).len <= 512 * size);
      }
      if (d.status & S.DEVICE_NEEDS_RESET) broken++;
      d.close();
    }
    t.log(`${broken} of 1500 rounds ended with the device asking for a reset`);
    t.true(broken > 0 && broken < 1500, 'the fuzzer reaches both outcomes');
  });
}
