// The virtio-mmio transport (virtio 1.2, 4.2): the register file a driver
// sees in the device's MMIO window, the device-status state machine
// (2.1, 3.1.1), feature negotiation, queue configuration, and interrupts.
//
// Reads have no side effects in virtio-mmio, so the transport can also keep
// a register page: a copy of everything read() would return, updated after
// every write and interrupt. Mapped read-only over the window (a KVM
// read-only memory slot), it answers the driver's reads without a VM exit;
// only writes exit. Every interrupt costs the driver a status read and an
// acknowledge write, and probing a device dozens of reads: each exit to the
// VMM is a round trip through the event loop.
import type { BusDevice } from '../bus.js';
import { TurnBudget } from './budget.js';
import type { QueueEventFds, VirtioDevice, VirtioInterrupt } from './device.js';
import { VirtioError, type VirtioMemory } from './memory.js';
import { Queue } from './queue.js';
import {
  DeviceStatus, Feature, Interrupt, MMIO_MAGIC, MMIO_VENDOR_ID, MMIO_VERSION, MmioReg, featureBit,
} from './spec.js';

const S = DeviceStatus;

/** Queue features every device gets from this library. */
const TRANSPORT_FEATURES = featureBit(Feature.VERSION_1) | featureBit(Feature.RING_EVENT_IDX) | featureBit(Feature.RING_INDIRECT_DESC);

/**
 * Status values a driver may move to from each status (3.1.1): the
 * initialization steps in order. A reset (0) and FAILED, allowed at any
 * time, are handled before this. Clearing bits is never a step (2.1.1): a
 * write of DEVICE_NEEDS_RESET alone used to pass as "to 0", leaving a
 * running device behind a status of 0x40.
 */
function validTransition(from: number, to: number): boolean {
  switch (from & ~S.DEVICE_NEEDS_RESET) {
    case 0: return to === S.ACKNOWLEDGE;
    case S.ACKNOWLEDGE: return to === (S.ACKNOWLEDGE | S.DRIVER);
    case S.ACKNOWLEDGE | S.DRIVER: return to === (S.ACKNOWLEDGE | S.DRIVER | S.FEATURES_OK);
    case S.ACKNOWLEDGE | S.DRIVER | S.FEATURES_OK: return to === (S.ACKNOWLEDGE | S.DRIVER | S.FEATURES_OK | S.DRIVER_OK);
    default: return false;
  }
}

export interface MmioTransportOptions {
  /** Raises the device's interrupt line (an irqfd). */
  raiseInterrupt: () => void;
  /** Called once with the reason when the driver breaks the contract (or the device fails). */
  onDeviceError?: (message: string) => void;
  /** The window's register page (REGISTER_PAGE_SIZE bytes), kept equal to what read() returns. */
  registerPage?: Uint8Array;
  /** For a device with `externalQueues`: handed to it on activation. */
  eventFds?: QueueEventFds;
}

/** The register page covers the whole window: registers, then the device's configuration space. */
export const REGISTER_PAGE_SIZE = 0x1000;

export class VirtioMmioTransport implements BusDevice {
  readonly device: VirtioDevice;
  readonly queues: Queue[];
  private readonly mem: VirtioMemory;
  private readonly opts: MmioTransportOptions;
  private status = 0;
  private deviceFeaturesSel = 0;
  private driverFeaturesSel = 0;
  private driverFeatures = 0n;
  private queueSel = 0;
  private interruptStatus = 0;
  private configGeneration = 0;
  private activated = false;
  /** Queues whose budget ran out, to be continued on a later turn. */
  private readonly continuing = new Set<number>();
  private readonly interrupt: VirtioInterrupt;
  private readonly page: DataView | undefined;

  constructor(device: VirtioDevice, mem: VirtioMemory, opts: MmioTransportOptions) {
    this.device = device;
    this.mem = mem;
    this.opts = opts;
    if (opts.registerPage) {
      if (opts.registerPage.byteLength !== REGISTER_PAGE_SIZE) throw new Error(`a register page is ${REGISTER_PAGE_SIZE} bytes`);
      this.page = new DataView(opts.registerPage.buffer, opts.registerPage.byteOffset, REGISTER_PAGE_SIZE);
    }
    if (device.externalQueues && !opts.eventFds) throw new Error('a device with external queues needs their eventfds');
    this.queues = device.queueMaxSizes.map((n) => new Queue(n));
    this.interrupt = {
      usedBuffer: () => this.raise(Interrupt.USED_BUFFER),
      configChange: () => {
        this.configGeneration++;
        this.renderPage();
        this.raise(Interrupt.CONFIG_CHANGE);
      },
    };
    this.renderPage();
  }

  get offeredFeatures(): bigint {
    return this.device.features | TRANSPORT_FEATURES;
  }

  get deviceStatus(): number {
    return this.status;
  }

  get isActive(): boolean {
    return this.activated;
  }

  /**
   * The driver notified queue `index` (a QueueNotify write, or its
   * ioeventfd). A hostile queue marks the device broken, never more, and so
   * does a bug in the device: nothing is thrown from here, which is what
   * the eventfd watcher (called from libuv) needs. Work beyond one turn's
   * budget continues on a later turn.
   */
  notify(index: number): void {
    if (!this.activated || this.status & S.DEVICE_NEEDS_RESET || this.device.externalQueues) return;
    const q = this.queues[index];
    if (!q?.active) return;
    const budget = new TurnBudget();
    if (!this.guard(() => this.device.queueNotify(index, budget))) return;
    if (!budget.left) this.continueLater(index);
  }

  private continueLater(index: number): void {
    if (this.continuing.has(index)) return;
    this.continuing.add(index);
    setImmediate(() => {
      this.continuing.delete(index);
      this.notify(index);
    });
  }

  /** Runs device code; anything it throws fails the device. Returns whether it completed. */
  private guard(run: () => void): boolean {
    try {
      run();
      return true;
    } catch (e) {
      this.fail(e instanceof VirtioError ? e.message : `device error: ${e instanceof Error ? e.message : String(e)}`);
      return false;
    }
  }

  /** Stops the device and tells the driver it needs a reset (2.1.2). */
  fail(message: string): void {
    if (this.status & S.DEVICE_NEEDS_RESET) return;
    this.status |= S.DEVICE_NEEDS_RESET;
    this.renderPage();
    this.opts.onDeviceError?.(message);
    if (this.status & S.DRIVER_OK) this.interrupt.configChange();
  }

  private raise(bit: number): void {
    this.interruptStatus |= bit;
    // The page first: the driver's handler reads it as soon as the interrupt lands.
    this.page?.setUint32(MmioReg.INTERRUPT_STATUS, this.interruptStatus, true);
    this.opts.raiseInterrupt();
  }

  /** Rewrites the register page from the transport's and the device's state. */
  private renderPage(): void {
    if (!this.page) return;
    for (let offset = 0; offset < MmioReg.CONFIG; offset += 4) this.page.setUint32(offset, this.readRegister(offset), true);
    this.device.readConfig(0, new Uint8Array(this.page.buffer, this.page.byteOffset + MmioReg.CONFIG, REGISTER_PAGE_SIZE - MmioReg.CONFIG));
  }

  read(offset: number, data: Uint8Array): void {
    if (offset >= MmioReg.CONFIG) {
      this.device.readConfig(offset - MmioReg.CONFIG, data);
      return;
    }
    data.fill(0);
    // 4.2.2.2: registers are read with aligned 32-bit accesses only.
    if (data.byteLength !== 4 || offset % 4 !== 0) return;
    new DataView(data.buffer, data.byteOffset, 4).setUint32(0, this.readRegister(offset), true);
  }

  write(offset: number, data: Uint8Array): void {
    if (offset >= MmioReg.CONFIG) {
      if (this.status & S.DRIVER) this.device.writeConfig(offset - MmioReg.CONFIG, data);
    } else if (data.byteLength === 4 && offset % 4 === 0) {
      this.writeRegister(offset, new DataView(data.buffer, data.byteOffset, 4).getUint32(0, true));
    }
    this.renderPage();
  }

  private selectedQueue(): Queue | undefined {
    return this.queues[this.queueSel];
  }

  private readRegister(offset: number): number {
    const q = this.selectedQueue();
    switch (offset) {
      case MmioReg.MAGIC_VALUE: return MMIO_MAGIC;
      case MmioReg.VERSION: return MMIO_VERSION;
      case MmioReg.DEVICE_ID: return this.device.deviceType;
      case MmioReg.VENDOR_ID: return MMIO_VENDOR_ID;
      case MmioReg.DEVICE_FEATURES:
        return this.deviceFeaturesSel > 1 ? 0 : Number((this.offeredFeatures >> BigInt(32 * this.deviceFeaturesSel)) & 0xffffffffn);
      case MmioReg.QUEUE_NUM_MAX: return q ? q.maxSize : 0;
      case MmioReg.QUEUE_READY: return q?.ready ? 1 : 0;
      // The backend raises its interrupts without telling the VMM: the driver's handler must always look at the rings.
      case MmioReg.INTERRUPT_STATUS: return this.interruptStatus | (this.device.externalQueues && this.activated ? Interrupt.USED_BUFFER : 0);
      case MmioReg.STATUS: return this.status;
      case MmioReg.CONFIG_GENERATION: return this.configGeneration;
      // No shared memory regions: a length of all ones means "none" (4.2.2).
      case MmioReg.SHM_LEN_LOW:
      case MmioReg.SHM_LEN_HIGH: return 0xffffffff;
      default: return 0;
    }
  }

  private writeRegister(offset: number, v: number): void {
    switch (offset) {
      case MmioReg.DEVICE_FEATURES_SEL: this.deviceFeaturesSel = v; return;
      case MmioReg.DRIVER_FEATURES_SEL: this.driverFeaturesSel = v; return;
      case MmioReg.DRIVER_FEATURES:
        // Only while negotiating (after DRIVER, before FEATURES_OK), and only bits we offered.
        if (this.status !== (S.ACKNOWLEDGE | S.DRIVER) || this.driverFeaturesSel > 1) return;
        {
          const shift = BigInt(32 * this.driverFeaturesSel);
          const mask = 0xffffffffn << shift;
          this.driverFeatures = (this.driverFeatures & ~mask) | ((BigInt(v) << shift) & this.offeredFeatures);
        }
        return;
      case MmioReg.QUEUE_SEL: this.queueSel = v; return;
      case MmioReg.QUEUE_NOTIFY: this.notify(v & 0xffff); return;
      case MmioReg.INTERRUPT_ACK: this.interruptStatus &= ~v; return;
      case MmioReg.STATUS: this.setStatus(v); return;
      default: this.writeQueueRegister(offset, v);
    }
  }

  /** Queue set-up registers: only between FEATURES_OK and DRIVER_OK, on a queue not yet ready. */
  private writeQueueRegister(offset: number, v: number): void {
    const q = this.selectedQueue();
    if (!q || this.status !== (S.ACKNOWLEDGE | S.DRIVER | S.FEATURES_OK)) return;
    if (offset === MmioReg.QUEUE_READY) {
      q.ready = v === 1;
      return;
    }
    if (q.ready) return;
    const low = (addr: number) => Math.floor(addr / 2 ** 32) * 2 ** 32 + v;
    const high = (addr: number) => v * 2 ** 32 + (addr % 2 ** 32);
    try {
      switch (offset) {
        case MmioReg.QUEUE_NUM: q.setSize(v); return;
        case MmioReg.QUEUE_DESC_LOW: q.descTable = low(q.descTable); return;
        case MmioReg.QUEUE_DESC_HIGH: q.descTable = high(q.descTable); return;
        case MmioReg.QUEUE_DRIVER_LOW: q.availRing = low(q.availRing); return;
        case MmioReg.QUEUE_DRIVER_HIGH: q.availRing = high(q.availRing); return;
        case MmioReg.QUEUE_DEVICE_LOW: q.usedRing = low(q.usedRing); return;
        case MmioReg.QUEUE_DEVICE_HIGH: q.usedRing = high(q.usedRing); return;
        default: return;
      }
    } catch (e) {
      if (e instanceof VirtioError) this.fail(e.message);
      else throw e;
    }
  }

  private setStatus(v: number): void {
    if (v === 0) {
      this.reset();
      return;
    }
    if (v & S.FAILED) {
      // The driver gave up on the device (3.1.1): it must not keep running. Only
      // FAILED is taken from the write: a hostile FAILED|DRIVER_OK from reset set
      // DRIVER_OK without negotiation and activated the device on the way down.
      this.status |= S.FAILED;
      this.stop();
      return;
    }
    if (!validTransition(this.status, v & ~S.DEVICE_NEEDS_RESET)) return;
    const adding = v & ~this.status;
    if (adding & S.FEATURES_OK && !(this.driverFeatures & featureBit(Feature.VERSION_1))) {
      return; // a legacy driver: FEATURES_OK stays clear, and the driver gives up (3.1.1 step 6)
    }
    this.status = v | (this.status & S.DEVICE_NEEDS_RESET);
    if (adding & S.DRIVER_OK) this.activate();
  }

  /**
   * Stops queue processing (the driver set FAILED, or the VM is going away
   * and its eventfds with it): a continuation still queued finds the device
   * inactive. The queues keep their configuration until a reset.
   */
  stop(): void {
    if (!this.activated) return;
    this.activated = false;
    this.device.reset();
  }

  private activate(): void {
    const ready = this.queues.filter((q) => q.ready);
    if (ready.some((q) => !q.isValid(this.mem))) {
      this.fail('a queue is misaligned or outside guest memory');
      return;
    }
    const eventIdx = (this.driverFeatures & featureBit(Feature.RING_EVENT_IDX)) !== 0n;
    const indirect = (this.driverFeatures & featureBit(Feature.RING_INDIRECT_DESC)) !== 0n;
    for (const q of ready) q.activate(this.mem, { eventIdx, indirect });
    this.activated = true;
    this.guard(() => this.device.activate({
      mem: this.mem, queues: this.queues, interrupt: this.interrupt, features: this.driverFeatures, notify: (q) => this.notify(q),
      ...(this.device.externalQueues ? { eventFds: this.opts.eventFds! } : {}),
    }));
    this.renderPage();
  }

  private reset(): void {
    this.stop();
    this.status = 0;
    this.driverFeatures = 0n;
    this.deviceFeaturesSel = this.driverFeaturesSel = this.queueSel = 0;
    this.interruptStatus = 0;
    for (const q of this.queues) q.reset();
  }
}
