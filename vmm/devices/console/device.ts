// virtio-console (virtio 1.2, 5.3) with multiport: port 0 is the guest's
// console (hvc0), further ports are named channels the guest sees as
// /dev/vportNpM (vmctr's host-agent channel is one). Output arrives a
// buffer at a time, so a console line costs one notification, not one
// exit per byte.
import type { TurnBudget } from '../../virtio/budget.js';
import { ChainReader, ChainWriter } from '../../virtio/descriptor-chain.js';
import { readConfigBytes, type ActivateContext, type VirtioDevice } from '../../virtio/device.js';
import { VirtioError } from '../../virtio/memory.js';
import type { Queue } from '../../virtio/queue.js';
import { DeviceType, featureBit } from '../../virtio/spec.js';
import { CONTROL_HEADER_SIZE, ControlEvent, decodeControl, encodeControl, type ControlMessage } from './control.js';
import { ConsolePort, type PortOptions } from './port.js';

const F_MULTIPORT = 1;
const QUEUE_SIZE = 256;
/** Queue numbers (5.3.2): port 0 rx/tx, control rx/tx, then ports 1.. rx/tx. */
const CONTROL_RX = 2;
const CONTROL_TX = 3;
const MAX_CONTROL_BACKLOG = 1024;
/**
 * The longest transmit chain taken, in bytes. Descriptors may all point at
 * the same guest pages, so a chain's length says nothing of the guest's
 * RAM: a 4 GiB chain fits in a few pages. Linux sends at most 32 KiB per
 * write(2) to a port and a page per hvc0 flush; only splice(2) sends more,
 * a whole pipe's worth, and an unprivileged pipe holds at most 1 MiB
 * (/proc/sys/fs/pipe-max-size).
 */
const MAX_TX_CHAIN_BYTES = 1 << 20;

function rxQueue(port: number): number {
  return port === 0 ? 0 : 2 * port + 2;
}

function txQueue(port: number): number {
  return port === 0 ? 1 : 2 * port + 3;
}

function portOfQueue(q: number): { port: number; tx: boolean } | undefined {
  if (q === 0 || q === 1) return { port: 0, tx: q === 1 };
  if (q < 4) return undefined;
  return { port: (q >> 1) - 1, tx: (q & 1) === 1 };
}

/**
 * A single console port uses no multiport feature: Linux then registers
 * hvc0 while probing, before /init runs. With multiport, ports appear
 * later, from control messages, so named ports go on a device of their own.
 */
export class ConsoleDevice implements VirtioDevice {
  readonly deviceType = DeviceType.CONSOLE;
  readonly features: bigint;
  readonly queueMaxSizes: number[];
  readonly ports: ConsolePort[];
  /** struct virtio_console_config: cols, rows, max_nr_ports, emerg_wr. */
  private readonly config = new Uint8Array(12);
  private ctx: ActivateContext | undefined;
  private multiport = false;
  private readonly controlOut: Uint8Array[] = [];

  constructor(ports: PortOptions[]) {
    if (ports.length === 0) throw new RangeError('a console needs at least one port');
    this.ports = ports.map((p) => new ConsolePort(p));
    const multiport = ports.length > 1 || ports[0]!.name !== undefined;
    this.features = multiport ? featureBit(F_MULTIPORT) : 0n;
    this.queueMaxSizes = Array.from({ length: multiport ? 2 * ports.length + 2 : 2 }, () => QUEUE_SIZE);
    new DataView(this.config.buffer).setUint32(4, ports.length, true);
    this.ports.forEach((p, i) => p.handler.attach?.(this, i));
  }

  /** Queues host input for a port; `done` runs when the guest has it. False if the backlog is full. */
  input(port: number, bytes: Uint8Array, done?: () => void): boolean {
    const p = this.ports[port];
    if (!p || !p.enqueue(bytes, done)) return false;
    this.ctx?.notify(rxQueue(port));
    return true;
  }

  /** A paused port's handler is ready for output again. */
  resume(port: number): void {
    const p = this.ports[port];
    if (!p?.paused) return;
    p.paused = false;
    this.ctx?.notify(txQueue(port));
  }

  readConfig(offset: number, data: Uint8Array): void {
    readConfigBytes(this.config, offset, data);
  }

  writeConfig(): void {}

  activate(ctx: ActivateContext): void {
    this.ctx = ctx;
    this.multiport = (ctx.features & featureBit(F_MULTIPORT)) !== 0n;
    for (let i = 0; i < this.ports.length; i++) ctx.notify(rxQueue(i));
  }

  queueNotify(index: number, budget: TurnBudget): void {
    if (index === CONTROL_TX) this.receiveControl(budget);
    else if (index === CONTROL_RX) this.sendControl(budget);
    else {
      const where = portOfQueue(index);
      if (!where) return;
      if (where.tx) this.transmit(where.port, budget);
      else this.deliverInput(where.port, budget);
    }
  }

  reset(): void {
    this.ctx = undefined;
    this.controlOut.length = 0;
    for (const p of this.ports) p.guestOpen = false;
  }

  private queue(i: number): Queue | undefined {
    const q = this.ctx?.queues[i];
    return q?.active ? q : undefined;
  }

  /** Guest output, until the handler pauses the port (backpressure) or the budget is spent. */
  private transmit(port: number, budget: TurnBudget): void {
    const ctx = this.ctx;
    const p = this.ports[port];
    const q = this.queue(txQueue(port));
    if (!ctx || !p || !q) return;
    let used = false;
    while (!p.paused && budget.left) {
      const chain = q.pop();
      if (!chain) break;
      const bytes = chain.readableBytes;
      if (bytes > MAX_TX_CHAIN_BYTES) throw new VirtioError(`a transmit chain of ${bytes} bytes is longer than ${MAX_TX_CHAIN_BYTES}`);
      for (const view of new ChainReader(ctx.mem, chain).rest()) {
        if (p.handler.output(view.slice()) === false) p.paused = true;
      }
      q.addUsed(chain.head, 0);
      budget.spend(bytes);
      used = true;
    }
    if (used && q.needsInterrupt()) ctx.interrupt.usedBuffer();
  }

  private deliverInput(port: number, budget: TurnBudget): void {
    const ctx = this.ctx;
    const p = this.ports[port];
    const q = this.queue(rxQueue(port));
    if (!ctx || !p || !q || !p.hasInput) return;
    let used = false;
    while (p.hasInput && budget.left) {
      const chain = q.pop();
      if (!chain) break;
      const w = new ChainWriter(ctx.mem, chain);
      p.drainInto((bytes) => w.write(bytes), w.remaining);
      q.addUsed(chain.head, w.written);
      budget.spend(w.written);
      used = true;
    }
    if (used && q.needsInterrupt()) ctx.interrupt.usedBuffer();
  }

  /** Driver -> device control messages (5.3.6.2). */
  private receiveControl(budget: TurnBudget): void {
    const ctx = this.ctx;
    const q = this.queue(CONTROL_TX);
    if (!ctx || !q || !this.multiport) return;
    let used = false;
    while (budget.left) {
      const chain = q.pop();
      if (!chain) break;
      const r = new ChainReader(ctx.mem, chain);
      const msg = decodeControl(r.read(Math.min(r.remaining, CONTROL_HEADER_SIZE)));
      q.addUsed(chain.head, 0);
      budget.spend(CONTROL_HEADER_SIZE);
      used = true;
      if (msg) this.onControl(msg);
    }
    if (used && q.needsInterrupt()) ctx.interrupt.usedBuffer();
  }

  private onControl(msg: ControlMessage): void {
    switch (msg.event) {
      case ControlEvent.DEVICE_READY:
        if (msg.value !== 1) return;
        this.ports.forEach((_, id) => this.control({ id, event: ControlEvent.DEVICE_ADD, value: 1 }));
        return;
      case ControlEvent.PORT_READY: {
        const p = this.ports[msg.id];
        if (!p || msg.value !== 1) return;
        if (p.console) this.control({ id: msg.id, event: ControlEvent.CONSOLE_PORT, value: 1 });
        if (p.name) this.control({ id: msg.id, event: ControlEvent.PORT_NAME, value: 1 }, new TextEncoder().encode(p.name));
        this.control({ id: msg.id, event: ControlEvent.PORT_OPEN, value: 1 }); // the host end is always open
        return;
      }
      case ControlEvent.PORT_OPEN: {
        const p = this.ports[msg.id];
        if (!p) return;
        p.guestOpen = msg.value === 1;
        p.handler.guestOpen?.(p.guestOpen);
        if (p.guestOpen) this.ctx?.notify(rxQueue(msg.id));
        return;
      }
      default:
        return;
    }
  }

  private control(msg: ControlMessage, payload?: Uint8Array): void {
    if (this.controlOut.length >= MAX_CONTROL_BACKLOG) throw new VirtioError('the driver is not taking control messages');
    this.controlOut.push(encodeControl(msg, payload));
    this.ctx?.notify(CONTROL_RX);
  }

  /** Device -> driver control messages, into the driver's control receive buffers. */
  private sendControl(budget: TurnBudget): void {
    const ctx = this.ctx;
    const q = this.queue(CONTROL_RX);
    if (!ctx || !q) return;
    let used = false;
    while (this.controlOut.length > 0 && budget.left) {
      const chain = q.pop();
      if (!chain) break;
      const w = new ChainWriter(ctx.mem, chain);
      w.writeAll(this.controlOut.shift()!);
      q.addUsed(chain.head, w.written);
      budget.spend(w.written);
      used = true;
    }
    if (used && q.needsInterrupt()) ctx.interrupt.usedBuffer();
  }
}
