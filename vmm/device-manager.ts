// Creates the VM's devices in a fixed order and places them on the buses.
// Legacy devices (console, reset, boot markers) now; virtio-mmio devices
// get their windows from VIRTIO_MMIO_BASE up.
import { closeSync } from 'node:fs';
import { Bus } from './bus.js';
import type { VmFd } from './kvm/kvm.js';
import { native } from './kvm/native.js';
import { DEBUG_PORT, DebugPort } from './devices/legacy/debug-port.js';
import { I8042, I8042_DATA_PORT } from './devices/legacy/i8042.js';
import { COM1_IRQ, COM1_PORT, Serial, UART_PORTS, type SerialSink } from './devices/legacy/serial.js';

export interface LegacyDeviceHooks {
  console: SerialSink;
  onReset: () => void;
  onBootMarker: (code: number) => void;
}

export class DeviceManager {
  readonly pio = new Bus('port I/O bus');
  readonly mmio = new Bus('MMIO bus');
  readonly serial: Serial;
  private readonly eventFds: number[] = [];

  constructor(vm: VmFd, hooks: LegacyDeviceHooks) {
    const serialIrq = this.irqEventFd(vm, COM1_IRQ);
    this.serial = new Serial(hooks.console, () => native.writeEventFd(serialIrq));
    this.pio.insert(COM1_PORT, UART_PORTS, 'serial (COM1)', this.serial);
    // 0x60-0x64 as one range: data port, the unused 0x61-0x63, command port.
    this.pio.insert(I8042_DATA_PORT, 5, 'i8042', new I8042(hooks.onReset));
    this.pio.insert(DEBUG_PORT, 1, 'debug port', new DebugPort(hooks.onBootMarker));
  }

  /** An eventfd wired to `gsi` with KVM_IRQFD: writing it raises the interrupt without an ioctl. */
  private irqEventFd(vm: VmFd, gsi: number): number {
    const fd = native.createEventFd();
    this.eventFds.push(fd);
    vm.registerIrqfd(fd, gsi);
    return fd;
  }

  close(): void {
    for (const fd of this.eventFds.splice(0)) closeSync(fd);
  }
}
