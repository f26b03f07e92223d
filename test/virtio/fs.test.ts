import test from 'ava';
import { FsDevice, encodeFsTag } from '../../vmm/devices/fs/device.js';
import { GuestMemory } from '../../vmm/memory/guest-memory.js';
import { REGISTER_PAGE_SIZE, VirtioMmioTransport } from '../../vmm/virtio/mmio-transport.js';
import type { ExternalQueues, QueueBackend } from '../../vmm/virtio/queue-backend.js';
import { DeviceType, Feature, MmioReg, featureBit } from '../../vmm/virtio/spec.js';
import { MEMORY_SIZE, TestDriver } from './driver.js';

// virtio-fs's device (5.11): its configuration, its two queues, and the
// hand-over to a backend that serves them outside JavaScript. The backend
// itself (vhost-user to virtiofsd) is tested in test/vhost; files through a
// guest in test/e2e/volumes.

const KICK = [201, 202];
const CALL = 203;
const RINGS = featureBit(Feature.RING_EVENT_IDX) | featureBit(Feature.RING_INDIRECT_DESC);

class RecordingBackend implements QueueBackend {
  readonly started: ExternalQueues[] = [];
  stops = 0;
  constructor(readonly features: bigint) {}
  start(queues: ExternalQueues): void {
    this.started.push(queues);
  }
  stop(): void {
    this.stops++;
  }
}

function fsDriver(tag = 'vmctr-volumes') {
  const backend = new RecordingBackend(RINGS | featureBit(Feature.VERSION_1));
  const device = new FsDevice(backend, tag);
  const mem = GuestMemory.allocate([{ base: 0, size: MEMORY_SIZE }]);
  const transport = new VirtioMmioTransport(device, mem, { raiseInterrupt: () => {}, registerPage: new Uint8Array(REGISTER_PAGE_SIZE), eventFds: { kick: KICK, call: CALL } });
  return { backend, transport, driver: new TestDriver({ port: transport, mem }) };
}

test('the configuration holds the NUL-padded tag and one request queue; the driver cannot change it', (t) => {
  const { transport, driver } = fsDriver('vols');
  t.is(driver.reg(MmioReg.DEVICE_ID), DeviceType.FS);
  const config = new Uint8Array(40);
  transport.read(MmioReg.CONFIG, config);
  t.deepEqual([...config.subarray(0, 5)], [0x76, 0x6f, 0x6c, 0x73, 0]);
  t.true(config.subarray(4, 36).every((b) => b === 0));
  t.is(new DataView(config.buffer).getUint32(36, true), 1);
  transport.write(MmioReg.CONFIG, Uint8Array.of(0x41));
  transport.read(MmioReg.CONFIG, config);
  t.is(config[0], 0x76);
});

test('activation hands the backend the hiprio and request queues and the eventfds; reset stops it', (t) => {
  const { backend, driver } = fsDriver();
  const accepted = featureBit(Feature.VERSION_1) | RINGS;
  t.true(driver.negotiate(accepted));
  driver.setReg(MmioReg.QUEUE_SEL, 1);
  t.is(driver.reg(MmioReg.QUEUE_NUM_MAX), 1024);
  const hiprio = driver.setupQueue(0, 128);
  const request = driver.setupQueue(1, 1024);
  driver.driverOk();
  const setup = backend.started[0]!;
  t.is(setup.features, accepted);
  t.deepEqual(setup.kick, KICK);
  t.is(setup.call, CALL);
  t.deepEqual(setup.queues.map((q) => [q.size, q.descTable, q.usedRing]), [[128, hiprio.desc, hiprio.used], [1024, request.desc, request.used]]);
  driver.setReg(MmioReg.STATUS, 0);
  t.is(backend.stops, 1);
});

test('a backend without the ring features the transport offers is refused; tags are 1 to 35 bytes', (t) => {
  t.throws(() => new FsDevice(new RecordingBackend(featureBit(Feature.RING_EVENT_IDX)), 'x'), { message: /lacks ring features 0x10000000/ });
  t.is(encodeFsTag('a'.repeat(35)).length, 35);
  for (const bad of ['', 'a'.repeat(36), 'a\0b', 'é'.repeat(18)]) t.throws(() => encodeFsTag(bad), { message: /invalid virtio-fs tag/ }, JSON.stringify(bad));
});
