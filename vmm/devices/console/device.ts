// virtio-console with one port (virtio 1.2, 5.3): the guest's hvc0.
// Output arrives a buffer at a time through the transmit queue, so a
// console line costs one notification instead of one exit per byte.
import { ChainReader, ChainWriter } from '../../virtio/descriptor-chain.js';
import { readConfigBytes, type ActivateContext, type VirtioDevice } from '../../virtio/device.js';
import { DeviceType } from '../../virtio/spec.js';

const RECEIVEQ = 0; // port 0 input (host -> guest)
const TRANSMITQ = 1; // port 0 output (guest -> host)
const QUEUE_SIZE = 256;
/** Host input held while the guest has no receive buffers. */
const INPUT_LIMIT = 1 << 20;

export interface ConsoleSink {
  /** Called with a copy of guest output. */
  write(bytes: Uint8Array): void;
}

export class ConsoleDevice implements VirtioDevice {
  readonly deviceType = DeviceType.CONSOLE;
  readonly features = 0n;
  readonly queueMaxSizes = [QUEUE_SIZE, QUEUE_SIZE];
  /** struct virtio_console_config: cols, rows, max_nr_ports, emerg_wr (unused without features). */
  private readonly config = new Uint8Array(12);
  private readonly sink: ConsoleSink;
  private ctx: ActivateContext | undefined;
  private pending: Uint8Array[] = [];
  private pendingBytes = 0;

  constructor(sink: ConsoleSink) {
    this.sink = sink;
  }

  /** Queues host input for the guest; false when the backlog is full. */
  input(bytes: Uint8Array): boolean {
    if (this.pendingBytes + bytes.byteLength > INPUT_LIMIT) return false;
    this.pending.push(Uint8Array.from(bytes));
    this.pendingBytes += bytes.byteLength;
    this.deliverInput();
    return true;
  }

  readConfig(offset: number, data: Uint8Array): void {
    readConfigBytes(this.config, offset, data);
  }

  writeConfig(): void {}

  activate(ctx: ActivateContext): void {
    this.ctx = ctx;
    this.deliverInput();
  }

  queueNotify(index: number): void {
    if (index === TRANSMITQ) this.transmit();
    else if (index === RECEIVEQ) this.deliverInput();
  }

  reset(): void {
    this.ctx = undefined;
  }

  private transmit(): void {
    const ctx = this.ctx;
    const q = ctx?.queues[TRANSMITQ];
    if (!ctx || !q) return;
    for (let chain = q.pop(); chain; chain = q.pop()) {
      for (const view of new ChainReader(ctx.mem, chain).rest()) this.sink.write(view.slice());
      q.addUsed(chain.head, 0);
    }
    if (q.needsInterrupt()) ctx.interrupt.usedBuffer();
  }

  private deliverInput(): void {
    const ctx = this.ctx;
    const q = ctx?.queues[RECEIVEQ];
    if (!ctx || !q || this.pending.length === 0) return;
    let used = false;
    while (this.pending.length > 0) {
      const chain = q.pop();
      if (!chain) break;
      const w = new ChainWriter(ctx.mem, chain);
      while (this.pending.length > 0 && w.remaining > 0) {
        const head = this.pending[0]!;
        const n = w.write(head);
        this.pendingBytes -= n;
        if (n === head.byteLength) this.pending.shift();
        else this.pending[0] = head.subarray(n);
      }
      q.addUsed(chain.head, w.written);
      used = true;
    }
    if (used && q.needsInterrupt()) ctx.interrupt.usedBuffer();
  }
}

