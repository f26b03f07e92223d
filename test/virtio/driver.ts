// A virtio driver played by the test: writes MMIO registers the way Linux's
// virtio_mmio does and lays out split rings in guest memory, so devices and
// the transport are exercised exactly as a guest would, hostile or not.
import { GuestMemory } from '../../vmm/memory/guest-memory.js';
import type { VirtioDevice } from '../../vmm/virtio/device.js';
import { REGISTER_PAGE_SIZE, VirtioMmioTransport } from '../../vmm/virtio/mmio-transport.js';
import { DeviceStatus as S, Feature, MmioReg, featureBit } from '../../vmm/virtio/spec.js';

export const MEMORY_SIZE = 1 << 20;
export const DATA_BASE = 0x40000;

export interface QueueLayout { desc: number; avail: number; used: number; size: number }

/** What the driver drives: a transport, or a VM's MMIO window reached through its bus. */
export interface DriverPort {
  read(offset: number, data: Uint8Array): void;
  write(offset: number, data: Uint8Array): void;
  /** A queue notification (what the ioeventfd delivers). */
  notify(queue: number): void;
}

export class TestDriver {
  readonly mem: GuestMemory;
  readonly transport: DriverPort;
  readonly errors: string[] = [];
  interrupts = 0;
  readonly layouts: QueueLayout[] = [];
  private availIdx: number[] = [];
  private nextData = DATA_BASE;

  /** The transport's register page, as a guest would read it through a read-only memory slot. */
  readonly page: Uint8Array | undefined;

  /**
   * Drives `device` behind a transport of its own, over `memory` (MEMORY_SIZE
   * bytes from 0, for fuzz runs that reuse one) or RAM of its own; or an
   * existing window over `mem`.
   */
  constructor(device: VirtioDevice | { port: DriverPort; mem: GuestMemory }, memory?: GuestMemory) {
    if ('port' in device) {
      this.mem = device.mem;
      this.transport = device.port;
      return;
    }
    this.mem = memory ?? GuestMemory.allocate([{ base: 0, size: MEMORY_SIZE }]);
    this.page = new Uint8Array(REGISTER_PAGE_SIZE);
    this.transport = new VirtioMmioTransport(device, this.mem, {
      raiseInterrupt: () => this.interrupts++,
      onDeviceError: (m) => this.errors.push(m),
      registerPage: this.page,
    });
  }

  /** The transport, for tests that drive their own. */
  get mmio(): VirtioMmioTransport {
    if (!(this.transport instanceof VirtioMmioTransport)) throw new Error('this driver drives a VM window, not a transport of its own');
    return this.transport;
  }

  /** A register as read() answers it; every read also checks that the register page agrees. */
  reg(offset: number): number {
    const d = new Uint8Array(4);
    this.transport.read(offset, d);
    const value = new DataView(d.buffer).getUint32(0, true);
    if (!this.page) return value;
    const paged = new DataView(this.page.buffer).getUint32(offset, true);
    if (paged !== value) throw new Error(`register page disagrees at 0x${offset.toString(16)}: 0x${paged.toString(16)}, read() 0x${value.toString(16)}`);
    return value;
  }

  /** Reads the whole window, register by register: throws where the register page disagrees. */
  checkPage(): void {
    for (let offset = 0; offset < REGISTER_PAGE_SIZE; offset += 4) this.reg(offset);
  }

  setReg(offset: number, v: number): void {
    const d = new Uint8Array(4);
    new DataView(d.buffer).setUint32(0, v >>> 0, true);
    this.transport.write(offset, d);
  }

  get status(): number {
    return this.reg(MmioReg.STATUS);
  }

  /** The full initialization sequence (virtio 1.2, 3.1.1); returns whether FEATURES_OK stuck. */
  negotiate(features = featureBit(Feature.VERSION_1) | featureBit(Feature.RING_EVENT_IDX) | featureBit(Feature.RING_INDIRECT_DESC)): boolean {
    this.setReg(MmioReg.STATUS, 0);
    this.setReg(MmioReg.STATUS, S.ACKNOWLEDGE);
    this.setReg(MmioReg.STATUS, S.ACKNOWLEDGE | S.DRIVER);
    for (const sel of [0, 1]) {
      this.setReg(MmioReg.DRIVER_FEATURES_SEL, sel);
      this.setReg(MmioReg.DRIVER_FEATURES, Number((features >> BigInt(32 * sel)) & 0xffffffffn));
    }
    this.setReg(MmioReg.STATUS, S.ACKNOWLEDGE | S.DRIVER | S.FEATURES_OK);
    return (this.status & S.FEATURES_OK) !== 0;
  }

  /** Sets up queue `q` with `size` entries at fixed, per-queue addresses. */
  setupQueue(q: number, size: number, at: Partial<QueueLayout> = {}): QueueLayout {
    const base = 0x1000 + q * 0x8000;
    const layout = { desc: at.desc ?? base, avail: at.avail ?? base + 0x4000, used: at.used ?? base + 0x6000, size };
    this.setReg(MmioReg.QUEUE_SEL, q);
    this.setReg(MmioReg.QUEUE_NUM, size);
    this.setReg(MmioReg.QUEUE_DESC_LOW, layout.desc);
    this.setReg(MmioReg.QUEUE_DESC_HIGH, 0);
    this.setReg(MmioReg.QUEUE_DRIVER_LOW, layout.avail);
    this.setReg(MmioReg.QUEUE_DRIVER_HIGH, 0);
    this.setReg(MmioReg.QUEUE_DEVICE_LOW, layout.used);
    this.setReg(MmioReg.QUEUE_DEVICE_HIGH, 0);
    this.setReg(MmioReg.QUEUE_READY, 1);
    this.layouts[q] = layout;
    this.availIdx[q] = 0;
    return layout;
  }

  driverOk(): void {
    this.setReg(MmioReg.STATUS, S.ACKNOWLEDGE | S.DRIVER | S.FEATURES_OK | S.DRIVER_OK);
  }

  /** Guest memory for a buffer, optionally filled. */
  buffer(len: number, fill?: Uint8Array): number {
    const addr = this.nextData;
    this.nextData += (len + 15) & ~15;
    if (fill) this.mem.write(addr, fill);
    return addr;
  }

  writeDesc(q: number, i: number, d: { addr: number; len: number; flags: number; next?: number }): void {
    const at = this.layouts[q]!.desc + 16 * i;
    this.mem.writeU64(at, BigInt(d.addr));
    this.mem.writeU32(at + 8, d.len);
    this.mem.writeU16(at + 12, d.flags);
    this.mem.writeU16(at + 14, d.next ?? 0);
  }

  /** Offers chain `head` on queue q and notifies. */
  offer(q: number, head: number, notify = true): void {
    const l = this.layouts[q]!;
    const idx = this.availIdx[q]!;
    this.mem.writeU16(l.avail + 4 + 2 * (idx % l.size), head);
    this.availIdx[q] = (idx + 1) & 0xffff;
    this.mem.writeU16(l.avail + 2, this.availIdx[q]!);
    if (notify) this.transport.notify(q);
  }

  /** Sets avail.idx directly (for hostile tests). */
  setAvailIdx(q: number, idx: number): void {
    this.mem.writeU16(this.layouts[q]!.avail + 2, idx);
  }

  usedIdx(q: number): number {
    return this.mem.readU16(this.layouts[q]!.used + 2);
  }

  usedElem(q: number, i: number): { id: number; len: number } {
    const at = this.layouts[q]!.used + 4 + 8 * i;
    return { id: this.mem.readU32(at), len: this.mem.readU32(at + 4) };
  }

  /**
   * A guest that keeps refilling: each time the device touches `addr` (a
   * buffer of chain `head`), the driver offers the chain again, without a
   * notification, as a vCPU on another thread would, `times` times in all.
   * Resolves once the device has taken the last one.
   */
  refillOnAccess(q: number, head: number, addr: number, times: number): { taken: () => number; done: Promise<void> } {
    let taken = 0;
    let finish: () => void = () => {};
    const done = new Promise<void>((resolve) => { finish = resolve; });
    const slice = this.mem.slice.bind(this.mem);
    this.mem.slice = (a: number, len: number) => {
      if (a === addr) {
        taken++;
        if (taken < times) this.offer(q, head, false);
        else if (taken === times) finish();
      }
      return slice(a, len);
    };
    return { taken: () => taken, done };
  }

  close(): void {
    this.mem.close();
  }
}
