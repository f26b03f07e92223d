import test from 'ava';
import { NetDevice, parseMac, randomMac } from '../../vmm/devices/net/device.js';
import type { ExternalQueues, QueueBackend } from '../../vmm/virtio/queue-backend.js';
import { GuestMemory } from '../../vmm/memory/guest-memory.js';
import { REGISTER_PAGE_SIZE, VirtioMmioTransport } from '../../vmm/virtio/mmio-transport.js';
import { DeviceType, Feature, Interrupt, MmioReg, NetFeature, featureBit } from '../../vmm/virtio/spec.js';
import { MEMORY_SIZE, TestDriver } from './driver.js';

// virtio-net's device and its contract with a backend that serves the
// queues outside JavaScript: what is offered and configured, what the
// backend is given on activation (the rings, the negotiated features, the
// transport's eventfds), that no notification reaches JavaScript, and that
// the interrupt status always says "used buffer" while the device runs.
// The data path itself (vhost-net) is tested in the lab (test/e2e/net).

const KICK = [101, 102];
const CALL = 103;
const MAC = '02:11:22:33:44:55';
const MRG_RXBUF = featureBit(NetFeature.MRG_RXBUF);

class RecordingBackend implements QueueBackend {
  readonly started: ExternalQueues[] = [];
  stops = 0;
  constructor(readonly features: bigint) {}
  start(setup: ExternalQueues): void {
    this.started.push(setup);
  }
  stop(): void {
    this.stops++;
  }
}

function netDriver(backendFeatures = MRG_RXBUF) {
  const backend = new RecordingBackend(backendFeatures);
  const device = new NetDevice(backend, parseMac(MAC));
  const mem = GuestMemory.allocate([{ base: 0, size: MEMORY_SIZE }]);
  let interrupts = 0;
  const transport = new VirtioMmioTransport(device, mem, {
    raiseInterrupt: () => interrupts++,
    registerPage: new Uint8Array(REGISTER_PAGE_SIZE),
    eventFds: { kick: KICK, call: CALL },
  });
  const driver = new TestDriver({ port: transport, mem });
  return { backend, device, transport, driver, interrupts: () => interrupts };
}

const offered = (driver: TestDriver): bigint => {
  let features = 0n;
  for (const sel of [0, 1]) {
    driver.setReg(MmioReg.DEVICE_FEATURES_SEL, sel);
    features |= BigInt(driver.reg(MmioReg.DEVICE_FEATURES)) << BigInt(32 * sel);
  }
  return features;
};

test('offers the offloads, MAC, link status and the ring features; mergeable buffers only where the backend has them', (t) => {
  const { driver } = netDriver();
  t.is(driver.reg(MmioReg.DEVICE_ID), DeviceType.NET);
  const features = offered(driver);
  for (const bit of [NetFeature.CSUM, NetFeature.GUEST_CSUM, NetFeature.MAC, NetFeature.GUEST_TSO4, NetFeature.GUEST_TSO6, NetFeature.HOST_TSO4, NetFeature.HOST_TSO6, NetFeature.STATUS, NetFeature.MRG_RXBUF, Feature.VERSION_1, Feature.RING_EVENT_IDX]) {
    t.true((features & featureBit(bit)) !== 0n, `feature bit ${bit}`);
  }
  t.is(offered(netDriver(0n).driver) & MRG_RXBUF, 0n);
  t.is(driver.reg(MmioReg.QUEUE_NUM_MAX), 256);
});

test('the configuration space holds the MAC and a link that is up', (t) => {
  const { transport } = netDriver();
  const config = new Uint8Array(8);
  transport.read(MmioReg.CONFIG, config);
  t.deepEqual([...config], [0x02, 0x11, 0x22, 0x33, 0x44, 0x55, 1, 0]);
  transport.write(MmioReg.CONFIG, Uint8Array.of(0xff));
  transport.read(MmioReg.CONFIG, config);
  t.is(config[0], 0x02, 'the driver cannot change it');
});

test('activation hands the backend the rings, the features and the eventfds; notifications never reach JavaScript; reset stops it', (t) => {
  const { backend, transport, driver, interrupts } = netDriver();
  const accepted = featureBit(Feature.VERSION_1) | featureBit(Feature.RING_EVENT_IDX) | MRG_RXBUF | featureBit(NetFeature.GUEST_CSUM);
  t.true(driver.negotiate(accepted));
  const rx = driver.setupQueue(0, 256);
  const tx = driver.setupQueue(1, 128);
  t.is(driver.reg(MmioReg.INTERRUPT_STATUS), 0);
  driver.driverOk();
  t.is(backend.started.length, 1);
  const setup = backend.started[0]!;
  t.is(setup.features, accepted);
  t.deepEqual(setup.kick, KICK);
  t.is(setup.call, CALL);
  t.deepEqual(setup.queues.map((q) => [q.ready, q.size, q.descTable, q.availRing, q.usedRing]), [
    [true, 256, rx.desc, rx.avail, rx.used],
    [true, 128, tx.desc, tx.avail, tx.used],
  ]);
  // The backend interrupts the driver itself: the status register must send the driver to its rings every time.
  t.is(driver.reg(MmioReg.INTERRUPT_STATUS), Interrupt.USED_BUFFER);
  driver.setReg(MmioReg.INTERRUPT_ACK, Interrupt.USED_BUFFER);
  t.is(driver.reg(MmioReg.INTERRUPT_STATUS), Interrupt.USED_BUFFER, 'an acknowledgement does not clear it');
  driver.setReg(MmioReg.QUEUE_NOTIFY, 1);
  transport.notify(0);
  t.is(interrupts(), 0, 'no notification is processed, and no interrupt raised, in JavaScript');
  driver.setReg(MmioReg.STATUS, 0);
  t.is(backend.stops, 1, 'a reset stops the backend');
  t.is(driver.reg(MmioReg.INTERRUPT_STATUS), 0);
});

test('a device whose queues are served elsewhere needs their eventfds', (t) => {
  const device = new NetDevice(new RecordingBackend(0n), parseMac(MAC));
  const mem = GuestMemory.allocate([{ base: 0, size: 4096 }]);
  t.throws(() => new VirtioMmioTransport(device, mem, { raiseInterrupt: () => {} }), { message: /needs their eventfds/ });
});

test('MAC addresses: six hex pairs, unicast; random ones are locally administered', (t) => {
  t.deepEqual([...parseMac('02:AB:cd:00:01:ff')], [2, 0xab, 0xcd, 0, 1, 0xff]);
  for (const bad of ['', '02:00:00:00:00', '02:00:00:00:00:00:00', '02-00-00-00-00-00', '2:0:0:0:0:0', 'gg:00:00:00:00:00']) {
    t.throws(() => parseMac(bad), { message: /use six hex pairs/ }, bad);
  }
  t.throws(() => parseMac('01:00:5e:00:00:01'), { message: /multicast/ });
  const seen = new Set<string>();
  for (let i = 0; i < 50; i++) {
    const mac = randomMac();
    const first = parseMac(mac)[0]!;
    t.is(first & 0x03, 0x02, `${mac}: locally administered, unicast`);
    seen.add(mac);
  }
  t.true(seen.size > 45, 'random');
});
