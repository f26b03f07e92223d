// Creates the VM's devices in a fixed order and places them on the buses:
// legacy devices (UART, reset, boot markers) on port I/O, then virtio-mmio
// devices, each with a 4 KiB window, an interrupt line (irqfd) and one
// ioeventfd per queue, so a queue notification never exits to JavaScript;
// for a device whose backend serves its queues (vhost), those eventfds are
// the backend's, and JavaScript never sees a notification.
// Where KVM has read-only memory slots, each window is also backed by its
// transport's register page, read-only: the guest's register reads are
// served from memory, and only its writes exit.
import { closeSync } from 'node:fs';
import { Bus } from './bus.js';
import type { VmFd } from './kvm/kvm.js';
import { KVM_MEM_READONLY, KvmCap } from './kvm/constants.js';
import { native, type EventFdWatcherHandle } from './kvm/native.js';
import type { GuestMemory } from './memory/guest-memory.js';
import { VIRTIO_MMIO_BASE, VIRTIO_MMIO_SIZE } from './boot/layout.js';
import { IOAPIC_PINS } from './boot/mptable.js';
import { DEBUG_PORT, DebugPort } from './devices/legacy/debug-port.js';
import { I8042, I8042_DATA_PORT } from './devices/legacy/i8042.js';
import { COM1_IRQ, COM1_PORT, Serial, UART_PORTS, type SerialSink } from './devices/legacy/serial.js';
import type { VirtioDevice } from './virtio/device.js';
import { REGISTER_PAGE_SIZE, VirtioMmioTransport } from './virtio/mmio-transport.js';
import { MmioReg } from './virtio/spec.js';

/** First interrupt line for virtio devices: 0-4 are the PIT, keyboard, cascade and COM ports. */
const VIRTIO_FIRST_GSI = 5;
/** Memory slot of the first register page; guest RAM takes the slots below. */
const REGISTER_PAGE_FIRST_SLOT = 16;

export interface LegacyDeviceHooks {
  console: SerialSink;
  onReset: () => void;
  onBootMarker: (code: number) => void;
  onDeviceError: (device: string, message: string) => void;
}

interface VirtioSlot {
  name: string;
  transport: VirtioMmioTransport;
  base: number;
  gsi: number;
}

export class DeviceManager {
  readonly pio = new Bus('port I/O bus');
  readonly mmio = new Bus('MMIO bus');
  readonly serial: Serial;
  private readonly vm: VmFd;
  private readonly memory: GuestMemory;
  private readonly hooks: LegacyDeviceHooks;
  private readonly virtio: VirtioSlot[] = [];
  private readonly eventFds: number[] = [];
  private readonly watchers: EventFdWatcherHandle[] = [];
  private readonly registerPages: boolean;

  constructor(vm: VmFd, memory: GuestMemory, hooks: LegacyDeviceHooks) {
    this.vm = vm;
    this.memory = memory;
    this.hooks = hooks;
    this.registerPages = vm.kvm.checkExtension(KvmCap.READONLY_MEM) > 0;
    const serialIrq = this.irqEventFd(COM1_IRQ);
    this.serial = new Serial(hooks.console, () => native.writeEventFd(serialIrq));
    this.pio.insert(COM1_PORT, UART_PORTS, 'serial (COM1)', this.serial);
    // 0x60-0x64 as one range: data port, the unused 0x61-0x63, command port.
    this.pio.insert(I8042_DATA_PORT, 5, 'i8042', new I8042(hooks.onReset));
    this.pio.insert(DEBUG_PORT, 1, 'debug port', new DebugPort(hooks.onBootMarker));
  }

  /** Adds a virtio device behind virtio-mmio; returns its transport. */
  addVirtio(name: string, device: VirtioDevice): VirtioMmioTransport {
    const index = this.virtio.length;
    const gsi = VIRTIO_FIRST_GSI + index;
    if (gsi >= IOAPIC_PINS) throw new Error(`too many virtio devices (at most ${IOAPIC_PINS - VIRTIO_FIRST_GSI})`);
    const base = VIRTIO_MMIO_BASE + index * VIRTIO_MMIO_SIZE;
    const irq = this.irqEventFd(gsi);
    const page = this.registerPages ? new Uint8Array(native.createGuestMemory(REGISTER_PAGE_SIZE, `vmctr-virtio${index}-registers`).buffer) : undefined;
    const kick = device.queueMaxSizes.map((_, q) => {
      const fd = native.createEventFd();
      this.eventFds.push(fd);
      this.vm.registerIoeventfd(fd, base + MmioReg.QUEUE_NOTIFY, 4, { datamatch: q });
      return fd;
    });
    if (device.externalQueues) {
      // Its backend interrupts the driver directly, and the interrupt status always reads "used buffer":
      // the driver's acknowledgement has nothing to tell the VMM, so KVM swallows it instead of exiting.
      const ack = native.createEventFd();
      this.eventFds.push(ack);
      this.vm.registerIoeventfd(ack, base + MmioReg.INTERRUPT_ACK, 4);
    }
    const transport = new VirtioMmioTransport(device, this.memory, {
      raiseInterrupt: () => native.writeEventFd(irq),
      onDeviceError: (message) => this.hooks.onDeviceError(name, message),
      ...(page ? { registerPage: page } : {}),
      ...(device.externalQueues ? { eventFds: { kick, call: irq } } : {}),
    });
    if (page) this.vm.setUserMemoryRegion(REGISTER_PAGE_FIRST_SLOT + index, base, page.buffer as ArrayBuffer, KVM_MEM_READONLY);
    this.mmio.insert(base, VIRTIO_MMIO_SIZE, name, transport);
    if (!device.externalQueues) kick.forEach((fd, q) => this.watchers.push(new native.EventFdWatcher(fd, () => transport.notify(q))));
    this.virtio.push({ name, transport, base, gsi });
    return transport;
  }

  /** Kernel parameters that tell Linux where the virtio-mmio devices are. */
  get kernelParameters(): string {
    return this.virtio.map((d) => `virtio_mmio.device=4K@0x${d.base.toString(16)}:${d.gsi}`).join(' ');
  }

  /**
   * Processes every queue now, without waiting for the event loop to see
   * the ioeventfds: what the guest wrote just before it stopped (a panic
   * message on the console) is not lost.
   */
  drain(): void {
    for (const d of this.virtio) d.transport.queues.forEach((_, q) => d.transport.notify(q));
  }

  /** An eventfd wired to `gsi` with KVM_IRQFD: writing it raises the interrupt without an ioctl. */
  private irqEventFd(gsi: number): number {
    const fd = native.createEventFd();
    this.eventFds.push(fd);
    this.vm.registerIrqfd(fd, gsi);
    return fd;
  }

  close(): void {
    // First: a queue continued on a later turn must not raise an interrupt through a closed (or reused) fd.
    for (const d of this.virtio) d.transport.stop();
    for (const w of this.watchers.splice(0)) w.close();
    for (const fd of this.eventFds.splice(0)) closeSync(fd);
  }
}
