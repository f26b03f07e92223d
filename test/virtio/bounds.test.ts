import test from 'ava';
import { ConsoleDevice } from '../../vmm/devices/console/device.js';
import type { VirtioDevice } from '../../vmm/virtio/device.js';
import { DeviceStatus as S, Feature, Interrupt, MmioReg, featureBit } from '../../vmm/virtio/spec.js';
import { TestDriver } from './driver.js';

// Guest-driven work is bounded: whatever a driver posts, the host does a
// bounded amount of work per notification and per event-loop turn, a
// device bug never escapes into the VMM, and a failed driver stops the device.

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
