import test, { type ExecutionContext } from 'ava';
import { ConsoleDevice } from '../../vmm/devices/console/device.js';
import { RngDevice } from '../../vmm/devices/rng/device.js';
import { BlockDevice } from '../../vmm/devices/block/device.js';
import type { VirtioDevice } from '../../vmm/virtio/device.js';
import { DeviceStatus as S, DescFlag, Feature, Interrupt, MmioReg, featureBit } from '../../vmm/virtio/spec.js';
import { MEMORY_SIZE, TestDriver } from './driver.js';
import { memoryBackend } from './memory-disk.js';

// Guest-driven work is bounded: whatever a driver posts, the host does a
// bounded amount of work per notification and per event-loop turn, a
// device bug never escapes into the VMM, and a failed driver stops the device.

const MiB = 1 << 20;

function consoleDriver(size = 16) {
  let bytes = 0;
  const dev = new ConsoleDevice([{ console: true, handler: { output: (b) => { bytes += b.byteLength; } } }]);
  const d = new TestDriver(dev);
  d.negotiate();
  d.setupQueue(0, size);
  d.setupQueue(1, size);
  d.driverOk();
  return { d, output: () => bytes };
}

const turn = () => new Promise<void>((resolve) => setImmediate(resolve));

test('console: one transmit chain of aliased descriptors cannot make the host copy 64 MiB', (t) => {
  const { d, output } = consoleDriver(64);
  // 64 indirect descriptors, each covering all of guest RAM (1 MiB).
  const table = d.buffer(64 * 16);
  for (let i = 0; i < 64; i++) {
    d.mem.writeU64(table + 16 * i, 0n);
    d.mem.writeU32(table + 16 * i + 8, MEMORY_SIZE);
    d.mem.writeU16(table + 16 * i + 12, i < 63 ? DescFlag.NEXT : 0);
    d.mem.writeU16(table + 16 * i + 14, i + 1);
  }
  d.writeDesc(1, 0, { addr: table, len: 64 * 16, flags: DescFlag.INDIRECT });
  d.offer(1, 0);
  t.true(output() <= MiB, `the host copied ${output()} bytes`);
  t.is(d.status & S.DEVICE_NEEDS_RESET, S.DEVICE_NEEDS_RESET);
  t.regex(d.errors[0] ?? '', /transmit chain of 67108864 bytes is longer than 1048576/);
  d.close();
});

test('console: a queue of 1 MiB transmit chains is copied a bounded amount per notification, the rest on later turns', async (t) => {
  const { d, output } = consoleDriver();
  for (let i = 0; i < 16; i++) {
    d.writeDesc(1, i, { addr: 0, len: MEMORY_SIZE, flags: 0 });
    d.offer(1, i, false);
  }
  d.mmio.notify(1);
  t.true(output() <= 2 * MiB, `one notification copied ${output()} bytes`);
  while (d.usedIdx(1) < 16) await turn();
  t.is(output(), 16 * MiB, 'all of it is taken in the end');
  t.is(d.status & S.DEVICE_NEEDS_RESET, 0);
  d.close();
});

const REFILLS = 100_000;

/** A guest that refills chain 0 of queue `q` as fast as the device takes it must not starve a timer. */
async function cannotStarveATimer(t: ExecutionContext, d: TestDriver, q: number, touched: number): Promise<void> {
  const refill = d.refillOnAccess(q, 0, touched, REFILLS);
  let atTimer = -1;
  const timer = new Promise<void>((resolve) => setTimeout(() => { atTimer = refill.taken(); resolve(); }, 1));
  d.offer(q, 0);
  await timer;
  t.true(atTimer < REFILLS, `the timer fired only after all ${REFILLS} chains`);
  await refill.done;
  t.is(d.status & S.DEVICE_NEEDS_RESET, 0);
  d.close();
}

test('console: a guest that keeps refilling its transmit queue cannot starve a timer', async (t) => {
  const { d } = consoleDriver();
  const buf = d.buffer(1, Uint8Array.of(0x41));
  d.writeDesc(1, 0, { addr: buf, len: 1, flags: 0 });
  await cannotStarveATimer(t, d, 1, buf);
});

test('rng: a guest that keeps refilling cannot starve a timer', async (t) => {
  const d = new TestDriver(new RngDevice());
  d.negotiate();
  d.setupQueue(0, 8);
  d.driverOk();
  const buf = d.buffer(16);
  d.writeDesc(0, 0, { addr: buf, len: 16, flags: DescFlag.WRITE });
  await cannotStarveATimer(t, d, 0, buf);
});

test('blk: a guest that keeps refilling cannot starve a timer', async (t) => {
  const d = new TestDriver(new BlockDevice(memoryBackend(), 'refill'));
  d.negotiate();
  d.setupQueue(0, 16);
  d.driverOk();
  const hdr = d.buffer(16);
  d.mem.writeU32(hdr, 0); // VIRTIO_BLK_T_IN, sector 0
  const data = d.buffer(512);
  const status = d.buffer(1);
  d.writeDesc(0, 0, { addr: hdr, len: 16, flags: DescFlag.NEXT, next: 1 });
  d.writeDesc(0, 1, { addr: data, len: 512, flags: DescFlag.NEXT | DescFlag.WRITE, next: 2 });
  d.writeDesc(0, 2, { addr: status, len: 1, flags: DescFlag.WRITE });
  await cannotStarveATimer(t, d, 0, hdr);
});

/** A device with a bug: it throws something that is not a VirtioError. */
function buggyDevice(where: 'activate' | 'queueNotify'): VirtioDevice {
  const bug = () => { throw new TypeError(`a device bug in ${where}`); };
  return {
    deviceType: 4,
    features: 0n,
    queueMaxSizes: [8],
    readConfig: (_offset, data) => data.fill(0),
    writeConfig: () => {},
    activate: where === 'activate' ? bug : () => {},
    queueNotify: where === 'queueNotify' ? bug : () => {},
    reset: () => {},
  };
}

for (const where of ['activate', 'queueNotify'] as const) {
  test(`a device that throws in ${where} is marked failed with a config-change interrupt; nothing escapes`, (t) => {
    const d = new TestDriver(buggyDevice(where));
    d.negotiate();
    d.setupQueue(0, 8);
    t.notThrows(() => d.driverOk());
    t.notThrows(() => d.mmio.notify(0));
    t.is(d.status & S.DEVICE_NEEDS_RESET, S.DEVICE_NEEDS_RESET);
    t.is(d.reg(MmioReg.INTERRUPT_STATUS) & Interrupt.CONFIG_CHANGE, Interrupt.CONFIG_CHANGE);
    t.is(d.errors.length, 1);
    t.regex(d.errors[0]!, new RegExp(`a device bug in ${where}`));
    d.close();
  });
}

test('a driver that sets FAILED after DRIVER_OK stops the device: no more queue processing', (t) => {
  const { d, output } = consoleDriver();
  d.setReg(MmioReg.STATUS, d.status | S.FAILED);
  t.false(d.mmio.isActive);
  d.writeDesc(1, 0, { addr: d.buffer(2, Buffer.from('hi')), len: 2, flags: 0 });
  d.offer(1, 0);
  t.is(output(), 0, 'a failed device takes no output');
  t.is(d.usedIdx(1), 0);
  // A reset brings it back.
  t.true(d.negotiate(featureBit(Feature.VERSION_1)));
  d.setupQueue(0, 16);
  d.setupQueue(1, 16);
  d.driverOk();
  d.writeDesc(1, 0, { addr: d.buffer(2, Buffer.from('hi')), len: 2, flags: 0 });
  d.offer(1, 0);
  t.is(output(), 2);
  d.close();
});

test('an indirect table may not make a chain longer than the queue: parsing work is bounded too', (t) => {
  const d = new TestDriver(new RngDevice());
  d.negotiate();
  d.setupQueue(0, 16);
  d.driverOk();
  // 4096 zero-length descriptors: no bytes to move, but 4096 to walk for one chain.
  const entries = 4096;
  const table = d.buffer(entries * 16);
  const buf = d.buffer(1);
  for (let i = 0; i < entries; i++) {
    d.mem.writeU64(table + 16 * i, BigInt(buf));
    d.mem.writeU32(table + 16 * i + 8, 0);
    d.mem.writeU16(table + 16 * i + 12, DescFlag.WRITE | (i < entries - 1 ? DescFlag.NEXT : 0));
    d.mem.writeU16(table + 16 * i + 14, i + 1);
  }
  d.writeDesc(0, 0, { addr: table, len: entries * 16, flags: DescFlag.INDIRECT });
  d.offer(0, 0);
  t.is(d.status & S.DEVICE_NEEDS_RESET, S.DEVICE_NEEDS_RESET);
  t.regex(d.errors[0] ?? '', /longer than the queue/);
  d.close();
});

test('a stopped transport runs no continuation: nothing touches the rings or raises an interrupt after the VM is gone', async (t) => {
  const { d } = consoleDriver();
  for (let i = 0; i < 16; i++) {
    d.writeDesc(1, i, { addr: 0, len: MEMORY_SIZE, flags: 0 });
    d.offer(1, i, false);
  }
  d.mmio.notify(1); // the budget runs out: the rest is continued on a later turn
  const used = d.usedIdx(1);
  const interrupts = d.interrupts;
  t.true(used < 16);
  d.mmio.stop();
  for (let i = 0; i < 20; i++) await turn();
  t.is(d.usedIdx(1), used);
  t.is(d.interrupts, interrupts);
  d.close();
});
