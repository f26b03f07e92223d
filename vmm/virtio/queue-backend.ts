// What serves a device's queues outside JavaScript (a device with
// `externalQueues`): the kernel's vhost-net, a vhost-user backend such as
// virtiofsd. The device hands it the rings as the driver set them up and the
// eventfds the transport wired (kicks are KVM ioeventfds, the call is the
// device's irqfd), so no notification and no byte of data passes through
// the event loop.
import type { VirtioMemory } from './memory.js';
import type { Queue } from './queue.js';

/** The queues as the driver set them up, and the eventfds that signal them. */
export interface ExternalQueues {
  queues: readonly Queue[];
  mem: VirtioMemory;
  /** What the driver accepted. */
  features: bigint;
  /** One kick eventfd per queue. */
  kick: readonly number[];
  /** The device's interrupt: one irqfd for all its queues. */
  call: number;
}

export interface QueueBackend {
  /** The ring and device features it supports: the device offers none beyond them. */
  readonly features: bigint;
  /** Starts serving the queues the driver set up. */
  start(queues: ExternalQueues): void;
  /** Stops touching the queues (and guest memory). */
  stop(): void;
}
