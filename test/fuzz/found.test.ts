import test from 'ava';
import { BytesImage } from '../../vmm/boot/boot-image.js';
import { ElfError, parseElf } from '../../vmm/boot/elf.js';
import { RngDevice } from '../../vmm/devices/rng/device.js';
import type { VirtioDevice } from '../../vmm/virtio/device.js';
import { DeviceStatus as S, MmioReg } from '../../vmm/virtio/spec.js';
import { PRINT_CMDLINE_AND_REBOOT, syntheticKernel } from '../vmm/synthetic-kernel.js';
import { TestDriver } from '../virtio/driver.js';

// Bugs the fuzz targets found, each pinned by the smallest input that showed it.

test('elf: a note whose name size wraps the 32-bit alignment is refused, not looped on forever (elf-pvh case 158)', (t) => {
  const kernel = syntheticKernel(PRINT_CMDLINE_AND_REBOOT);
  const note = 64 + 2 * 56;
  const v = new DataView(kernel.buffer);
  // (0xfffffff4 + 3) & ~3 is -12 in int32: the next note started where this one did.
  v.setUint32(note, 0xfffffff4, true);
  v.setUint32(note + 4, 0, true);
  t.throws(() => parseElf(new BytesImage(kernel)), { instanceOf: ElfError, message: /malformed ELF note/ });
});

test('transport: a status write with FAILED adds FAILED only; it cannot set DRIVER_OK from reset and activate the device (virtio-console case 51)', (t) => {
  let activations = 0;
  const device: VirtioDevice = {
    deviceType: 4,
    features: 0n,
    queueMaxSizes: [8],
    readConfig: (_offset, data) => data.fill(0),
    writeConfig: () => {},
    activate: () => { activations++; },
    queueNotify: () => {},
    reset: () => {},
  };
  const d = new TestDriver(device);
  d.setReg(MmioReg.STATUS, S.FAILED | S.DRIVER_OK | S.ACKNOWLEDGE | 0x20);
  t.is(d.status, S.FAILED);
  t.is(activations, 0);
  t.false(d.mmio.isActive);
  d.close();
});

test('transport: a status write of DEVICE_NEEDS_RESET alone clears nothing; the running device keeps its status (virtio-rng case 1277)', (t) => {
  const d = new TestDriver(new RngDevice());
  t.true(d.negotiate());
  d.setupQueue(0, 8);
  d.driverOk();
  const running = d.status;
  d.setReg(MmioReg.STATUS, S.DEVICE_NEEDS_RESET);
  t.is(d.status, running);
  t.true(d.mmio.isActive);
  d.close();
});
