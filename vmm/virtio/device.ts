// The contract between a virtio device and its transport (virtio 1.2, 2):
// a device knows its type, features, queues and configuration space, and
// nothing of MMIO or PCI.
import type { TurnBudget } from './budget.js';
import type { VirtioMemory } from './memory.js';
import type { Queue } from './queue.js';

/** How a device tells the driver something happened (the transport decides how). */
export interface VirtioInterrupt {
  /** Used buffers were added to a queue the driver may want to hear about. */
  usedBuffer(): void;
  configChange(): void;
}

/**
 * What a device whose queues are served outside this process's JavaScript
 * (a vhost worker in the kernel, a vhost-user backend) is given instead of
 * notifications: the driver's kicks reach the backend and its interrupts
 * the driver without a trip through the VMM.
 */
export interface QueueEventFds {
  /** Per queue: an eventfd KVM signals when the driver notifies that queue (an ioeventfd on QueueNotify). */
  kick: readonly number[];
  /** An eventfd that raises the device's interrupt (an irqfd), for used buffers. */
  call: number;
}

export interface ActivateContext {
  mem: VirtioMemory;
  queues: readonly Queue[];
  interrupt: VirtioInterrupt;
  /** The features the driver accepted. */
  features: bigint;
  /**
   * Processes queue `index` now, as a notification from the driver would
   * (for work the host starts: input arrived, output may resume), with the
   * same budget and error handling.
   */
  notify(index: number): void;
  /** For a device with `externalQueues`: the fds its backend serves the queues with. */
  eventFds?: QueueEventFds;
}

export interface VirtioDevice {
  readonly deviceType: number;
  /** Feature bits offered (VERSION_1 is added by the transport). */
  readonly features: bigint;
  readonly queueMaxSizes: readonly number[];
  /**
   * Queues served by a backend outside JavaScript: the device gets their
   * eventfds on activation, is never asked to process a queue, and every
   * interrupt it raises is a used-buffer one.
   */
  readonly externalQueues?: boolean;
  readConfig(offset: number, data: Uint8Array): void;
  writeConfig(offset: number, data: Uint8Array): void;
  /** The driver set DRIVER_OK: queues are valid and mapped. */
  activate(ctx: ActivateContext): void;
  /**
   * The driver made buffers available on queue `index`. Takes chains while
   * `budget` has some left; the transport continues a queue whose budget ran
   * out on a later turn. Throws VirtioError on a hostile queue.
   */
  queueNotify(index: number, budget: TurnBudget): void;
  /** Back to the pre-activation state (status written to 0, or the device failed). */
  reset(): void;
}

/** Reads `data.length` bytes of a device's configuration structure; out of range reads zero. */
export function readConfigBytes(config: Uint8Array, offset: number, data: Uint8Array): void {
  data.fill(0);
  if (offset >= 0 && offset < config.byteLength) data.set(config.subarray(offset, offset + data.byteLength));
}
