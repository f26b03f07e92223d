// One virtio-console port as the host sees it: output from the guest goes
// to a handler, input for the guest waits in a bounded backlog until the
// guest offers receive buffers.

import type { ConsoleDevice } from './device.js';

export interface PortHandler {
  /** Called once the device exists, with the handler's port number (for handlers that also write input). */
  attach?(device: ConsoleDevice, port: number): void;
  /** Guest output (a copy). Return false to ask the device to stop taking output until `resume`. */
  output(bytes: Uint8Array): boolean | void;
  /** The guest opened or closed its end (/dev/vportNpM, or hvc0). */
  guestOpen?(open: boolean): void;
}

export interface PortOptions {
  /** Exposed to the guest by name (/sys/class/virtio-ports/vportNpM/name). */
  name?: string;
  /** The guest's console (hvc0). */
  console?: boolean;
  handler: PortHandler;
}

/** Host input held for a port while the guest has no receive buffers. */
const INPUT_LIMIT = 1 << 20;

export class ConsolePort {
  readonly name: string | undefined;
  readonly console: boolean;
  readonly handler: PortHandler;
  /** The guest's receive buffers ran out while input waited; delivered when it offers more. */
  private readonly pending: { bytes: Uint8Array; done?: () => void }[] = [];
  private pendingBytes = 0;
  /** Output paused by the handler (backpressure: guest writes wait in the queue). */
  paused = false;
  guestOpen = false;

  constructor(opts: PortOptions) {
    this.name = opts.name;
    this.console = opts.console ?? false;
    this.handler = opts.handler;
  }

  /** Queues input; `done` runs once all of it is in guest buffers. False if the backlog is full. */
  enqueue(bytes: Uint8Array, done?: () => void): boolean {
    if (this.pendingBytes + bytes.byteLength > INPUT_LIMIT) return false;
    this.pending.push({ bytes: Uint8Array.from(bytes), ...(done ? { done } : {}) });
    this.pendingBytes += bytes.byteLength;
    return true;
  }

  get hasInput(): boolean {
    return this.pending.length > 0;
  }

  /** Moves backlog into `write` (a guest buffer) until it is full; returns bytes moved. */
  drainInto(write: (bytes: Uint8Array) => number, room: number): number {
    let moved = 0;
    while (this.pending.length > 0 && room > 0) {
      const head = this.pending[0]!;
      const n = write(head.bytes);
      moved += n;
      room -= n;
      this.pendingBytes -= n;
      if (n === head.bytes.byteLength) {
        this.pending.shift();
        head.done?.();
      } else {
        head.bytes = head.bytes.subarray(n);
        break;
      }
    }
    return moved;
  }
}
