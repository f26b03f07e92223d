import test from 'ava';
import { ConsoleDevice } from '../../vmm/devices/console/device.js';
import { RngDevice } from '../../vmm/devices/rng/device.js';
import { DeviceStatus as S, DescFlag, Feature, MMIO_MAGIC, MmioReg, featureBit } from '../../vmm/virtio/spec.js';
import { MEMORY_SIZE, TestDriver } from './driver.js';

function consoleDriver() {
  const out: number[] = [];
  const dev = new ConsoleDevice([{ console: true, handler: { output: (b) => { out.push(...b); } } }]);
  return { d: new TestDriver(dev), dev, out };
}

test('identification registers: magic, version 2, device id, queue sizes', (t) => {
  const { d } = consoleDriver();
  t.is(d.reg(MmioReg.MAGIC_VALUE), MMIO_MAGIC);
  t.is(d.reg(MmioReg.VERSION), 2);
  t.is(d.reg(MmioReg.DEVICE_ID), 3);
  d.setReg(MmioReg.QUEUE_SEL, 1);
  t.is(d.reg(MmioReg.QUEUE_NUM_MAX), 256);
  d.setReg(MmioReg.QUEUE_SEL, 7);
  t.is(d.reg(MmioReg.QUEUE_NUM_MAX), 0, 'a queue that does not exist has size 0');
  d.setReg(MmioReg.DEVICE_FEATURES_SEL, 1);
  t.is(d.reg(MmioReg.DEVICE_FEATURES) & 1, 1, 'VERSION_1 offered');
  d.close();
});

test('the register page matches every register and the config space through a device\'s life', (t) => {
  const { d } = consoleDriver();
  d.checkPage();
  t.true(d.negotiate(featureBit(Feature.VERSION_1)));
  d.setReg(MmioReg.QUEUE_SEL, 1);
  d.setReg(MmioReg.DEVICE_FEATURES_SEL, 1);
  d.checkPage();
  d.setupQueue(0, 16);
  d.setupQueue(1, 16);
  d.driverOk();
  d.checkPage();
  d.writeDesc(1, 0, { addr: d.buffer(2, Buffer.from('hi')), len: 2, flags: 0 });
  d.offer(1, 0);
  t.is(d.reg(MmioReg.INTERRUPT_STATUS), 1);
  d.checkPage();
  d.setReg(MmioReg.INTERRUPT_ACK, 1);
  d.checkPage();
  d.mmio.fail('a test failure');
  t.true((d.status & S.DEVICE_NEEDS_RESET) !== 0);
  d.checkPage();
  d.setReg(MmioReg.STATUS, 0);
  t.is(d.status, 0);
  d.checkPage();
  d.close();
});

test('status: FEATURES_OK is refused to a driver without VERSION_1, and steps cannot be skipped', (t) => {
  const { d } = consoleDriver();
  t.false(d.negotiate(0n));
  d.setReg(MmioReg.STATUS, 0);
  d.setReg(MmioReg.STATUS, S.ACKNOWLEDGE | S.DRIVER | S.FEATURES_OK | S.DRIVER_OK);
  t.is(d.status, 0, 'jumping to DRIVER_OK from reset is ignored');
  t.true(d.negotiate());
  d.close();
});

test('console: guest output leaves through the transmit queue, used and interrupted', (t) => {
  const { d, out } = consoleDriver();
  t.true(d.negotiate(featureBit(Feature.VERSION_1)));
  d.setupQueue(0, 16);
  d.setupQueue(1, 16);
  d.driverOk();
  t.true(d.mmio.isActive);
  const a = d.buffer(6, Buffer.from('hello '));
  const b = d.buffer(5, Buffer.from('world'));
  d.writeDesc(1, 0, { addr: a, len: 6, flags: DescFlag.NEXT, next: 1 });
  d.writeDesc(1, 1, { addr: b, len: 5, flags: 0 });
  d.offer(1, 0);
  t.is(Buffer.from(out).toString(), 'hello world');
  t.is(d.usedIdx(1), 1);
  t.deepEqual(d.usedElem(1, 0), { id: 0, len: 0 });
  t.is(d.interrupts, 1);
  t.is(d.reg(MmioReg.INTERRUPT_STATUS), 1);
  d.setReg(MmioReg.INTERRUPT_ACK, 1);
  t.is(d.reg(MmioReg.INTERRUPT_STATUS), 0);
  d.close();
});

test('console: host input waits for receive buffers, then fills them', (t) => {
  const { d, dev } = consoleDriver();
  t.true(dev.input(0, Buffer.from('typed before the driver was ready')));
  d.negotiate(featureBit(Feature.VERSION_1));
  d.setupQueue(0, 16);
  d.setupQueue(1, 16);
  const buf = d.buffer(64);
  d.writeDesc(0, 0, { addr: buf, len: 64, flags: DescFlag.WRITE });
  d.offer(0, 0, false);
  d.driverOk();
  t.is(d.usedIdx(0), 1);
  const { len } = d.usedElem(0, 0);
  t.is(Buffer.from(d.mem.read(buf, len)).toString(), 'typed before the driver was ready');
  d.close();
});

test('rng: a writable buffer is filled with random bytes', (t) => {
  const d = new TestDriver(new RngDevice());
  d.negotiate();
  d.setupQueue(0, 8);
  d.driverOk();
  const buf = d.buffer(64);
  d.writeDesc(0, 0, { addr: buf, len: 64, flags: DescFlag.WRITE });
  d.offer(0, 0);
  t.deepEqual(d.usedElem(0, 0), { id: 0, len: 64 });
  t.false(d.mem.read(buf, 64).every((b) => b === 0));
  d.close();
});

test('event index: the device skips interrupts the driver did not ask for', (t) => {
  const { d } = consoleDriver();
  d.negotiate();
  const l = d.setupQueue(1, 16);
  d.setupQueue(0, 16);
  d.driverOk();
  const buf = d.buffer(1, Uint8Array.of(0x41));
  for (let i = 0; i < 3; i++) d.writeDesc(1, i, { addr: buf, len: 1, flags: 0 });
  d.offer(1, 0);
  t.is(d.interrupts, 1, 'the first used buffer interrupts');
  d.mem.writeU16(l.avail + 4 + 2 * 16, 5); // used_event: wake me when used.idx passes 5
  d.offer(1, 1);
  d.offer(1, 2);
  t.is(d.interrupts, 1, 'no interrupt before used_event is passed');
  t.is(d.mem.readU16(l.used + 4 + 8 * 16), 3, 'avail_event asks for the next buffer');
  d.close();
});

// Hostile drivers: each must end with the device asking for a reset, the
// VMM unharmed, and a reason reported.
const hostile: [string, (d: TestDriver) => void, RegExp][] = [
  ['a descriptor chain that loops', (d) => {
    d.writeDesc(1, 0, { addr: d.buffer(1), len: 1, flags: DescFlag.NEXT, next: 1 });
    d.writeDesc(1, 1, { addr: d.buffer(1), len: 1, flags: DescFlag.NEXT, next: 0 });
    d.offer(1, 0);
  }, /loops/],
  ['a buffer outside guest memory', (d) => {
    d.writeDesc(1, 0, { addr: MEMORY_SIZE - 4, len: 8, flags: 0 });
    d.offer(1, 0);
  }, /outside guest memory/],
  ['a buffer at a 64-bit address', (d) => {
    d.writeDesc(1, 0, { addr: 2 ** 52, len: 8, flags: 0 });
    d.offer(1, 0);
  }, /outside guest memory/],
  ['a next index beyond the queue', (d) => {
    d.writeDesc(1, 0, { addr: d.buffer(1), len: 1, flags: DescFlag.NEXT, next: 999 });
    d.offer(1, 0);
  }, /outside a queue/],
  ['a head index beyond the queue', (d) => {
    d.offer(1, 200);
  }, /outside a queue/],
  ['an avail index far ahead of the device', (d) => {
    d.setAvailIdx(1, 5000);
    d.transport.notify(1);
  }, /published 5000 buffers/],
  ['nested indirect tables', (d) => {
    const table = d.buffer(32);
    d.mem.writeU64(table, BigInt(table));
    d.mem.writeU32(table + 8, 32);
    d.mem.writeU16(table + 12, DescFlag.INDIRECT);
    d.writeDesc(1, 0, { addr: table, len: 32, flags: DescFlag.INDIRECT });
    d.offer(1, 0);
  }, /nested indirect/],
  ['an indirect table of odd length', (d) => {
    d.writeDesc(1, 0, { addr: d.buffer(20), len: 20, flags: DescFlag.INDIRECT });
    d.offer(1, 0);
  }, /multiple of 16/],
  ['an indirect table that loops', (d) => {
    const table = d.buffer(32);
    d.mem.writeU64(table, BigInt(d.buffer(1)));
    d.mem.writeU32(table + 8, 1);
    d.mem.writeU16(table + 12, DescFlag.NEXT);
    d.mem.writeU16(table + 14, 0);
    d.writeDesc(1, 0, { addr: table, len: 32, flags: DescFlag.INDIRECT });
    d.offer(1, 0);
  }, /indirect descriptor chain loops/],
  ['a readable buffer after a writable one', (d) => {
    d.writeDesc(1, 0, { addr: d.buffer(1), len: 1, flags: DescFlag.WRITE | DescFlag.NEXT, next: 1 });
    d.writeDesc(1, 1, { addr: d.buffer(1), len: 1, flags: 0 });
    d.offer(1, 0);
  }, /follows a device-writable/],
];

for (const [name, attack, reason] of hostile) {
  test(`hostile driver: ${name} marks the device as needing a reset`, (t) => {
    const { d, out } = consoleDriver();
    d.negotiate();
    d.setupQueue(0, 16);
    d.setupQueue(1, 16);
    d.driverOk();
    attack(d);
    t.is(d.status & S.DEVICE_NEEDS_RESET, S.DEVICE_NEEDS_RESET);
    t.is(d.errors.length, 1);
    t.regex(d.errors[0]!, reason);
    t.deepEqual(out, [], 'nothing from a bad chain reached the host');
    // A reset brings the device back.
    t.true(d.negotiate());
    d.setupQueue(0, 16);
    d.setupQueue(1, 16);
    d.driverOk();
    t.is(d.status & S.DEVICE_NEEDS_RESET, 0);
    d.close();
  });
}

test('hostile driver: rings outside guest memory are refused at DRIVER_OK', (t) => {
  const { d } = consoleDriver();
  d.negotiate();
  d.setupQueue(0, 16, { used: MEMORY_SIZE - 8 });
  d.setupQueue(1, 16);
  d.driverOk();
  t.false(d.mmio.isActive);
  t.is(d.status & S.DEVICE_NEEDS_RESET, S.DEVICE_NEEDS_RESET);
  d.close();
});

test('hostile driver: a queue size that is not a power of two is refused', (t) => {
  const { d } = consoleDriver();
  d.negotiate();
  d.setupQueue(0, 12);
  t.regex(d.errors[0] ?? '', /not a power of two/);
  d.close();
});

test('queue registers are read-only outside FEATURES_OK', (t) => {
  const { d } = consoleDriver();
  d.setReg(MmioReg.QUEUE_SEL, 0);
  d.setReg(MmioReg.QUEUE_READY, 1);
  t.is(d.reg(MmioReg.QUEUE_READY), 0);
  d.close();
});

test('console multiport: ports are announced, named and opened; a port is a Duplex both ways', async (t) => {
  const { ConsolePortStream } = await import('../../vmm/devices/console/port-stream.js');
  const stream = new ConsolePortStream();
  const dev = new ConsoleDevice([{ console: true, handler: { output: () => {} } }, { name: 'vmctr.agent', handler: stream }]);
  const d = new TestDriver(dev);
  t.true(d.negotiate(featureBit(Feature.VERSION_1) | featureBit(1)));
  for (let q = 0; q < 6; q++) d.setupQueue(q, 8);
  // Control receive buffers for the device's messages.
  const ctrl = Array.from({ length: 6 }, () => d.buffer(64));
  ctrl.forEach((addr, i) => { d.writeDesc(2, i, { addr, len: 64, flags: DescFlag.WRITE }); d.offer(2, i, false); });
  d.driverOk();
  const sendControl = (i: number, id: number, event: number, value: number) => {
    const msg = d.buffer(8);
    d.mem.writeU32(msg, id); d.mem.writeU16(msg + 4, event); d.mem.writeU16(msg + 6, value);
    d.writeDesc(3, i, { addr: msg, len: 8, flags: 0 });
    d.offer(3, i);
  };
  const received = () => Array.from({ length: d.usedIdx(2) }, (_, i) => {
    const { id, len } = d.usedElem(2, i);
    const at = ctrl[id]!;
    return { id: d.mem.readU32(at), event: d.mem.readU16(at + 4), value: d.mem.readU16(at + 6), name: Buffer.from(d.mem.read(at + 8, len - 8)).toString() };
  });
  sendControl(0, 0, 0, 1); // DEVICE_READY
  t.deepEqual(received().map((m) => [m.id, m.event]), [[0, 1], [1, 1]], 'DEVICE_ADD for both ports');
  sendControl(1, 1, 3, 1); // PORT_READY for port 1
  t.deepEqual(received().slice(2).map((m) => [m.id, m.event, m.name]), [[1, 7, 'vmctr.agent'], [1, 6, '']], 'PORT_NAME then PORT_OPEN');

  // Guest -> host on port 1 (queue 5), host -> guest on port 1 (queue 4).
  const chunks: Buffer[] = [];
  stream.on('data', (c: Buffer) => chunks.push(c));
  const out = d.buffer(5, Buffer.from('hello'));
  d.writeDesc(5, 0, { addr: out, len: 5, flags: 0 });
  d.offer(5, 0);
  await new Promise((r) => setImmediate(r));
  t.is(Buffer.concat(chunks).toString(), 'hello');
  const written = new Promise<void>((resolve) => stream.write(Buffer.from('ping'), () => resolve()));
  const inBuf = d.buffer(16);
  d.writeDesc(4, 0, { addr: inBuf, len: 16, flags: DescFlag.WRITE });
  d.offer(4, 0);
  await written;
  t.is(Buffer.from(d.mem.read(inBuf, d.usedElem(4, 0).len)).toString(), 'ping');
  d.close();
});
