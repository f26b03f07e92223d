import test from 'ava';
import type { VirtioDevice } from '../../vmm/virtio/device.js';
import { DeviceStatus as S, Interrupt, MmioReg } from '../../vmm/virtio/spec.js';
import { TestDriver } from './driver.js';

// Guest-driven work is bounded: whatever a driver posts, the host does a
// bounded amount of work per notification and per event-loop turn, a
// device bug never escapes into the VMM, and a failed driver stops the device.

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

