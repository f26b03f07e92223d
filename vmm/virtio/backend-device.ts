// A virtio device whose queues a QueueBackend serves outside JavaScript
// (virtio-net on vhost-net, virtio-fs on virtiofsd): it holds only its
// configuration; activation hands the queues and their eventfds to the
// backend, a reset takes them back, and no notification reaches it.
import type { ActivateContext, VirtioDevice } from './device.js';
import { readConfigBytes } from './device.js';
import type { QueueBackend } from './queue-backend.js';

export abstract class BackendDevice implements VirtioDevice {
  abstract readonly deviceType: number;
  abstract readonly features: bigint;
  abstract readonly queueMaxSizes: readonly number[];
  readonly externalQueues = true;

  protected constructor(
    protected readonly backend: QueueBackend,
    /** The configuration structure, as the driver reads it. */
    protected readonly config: Uint8Array,
  ) {}

  readConfig(offset: number, data: Uint8Array): void {
    readConfigBytes(this.config, offset, data);
  }

  /** Read-only for these devices' drivers (5.1.4 without VIRTIO_NET_F_CTRL_MAC_ADDR, 5.11.4). */
  writeConfig(): void {}

  activate(ctx: ActivateContext): void {
    const fds = ctx.eventFds!;
    this.backend.start({ queues: ctx.queues, mem: ctx.mem, features: ctx.features, kick: fds.kick, call: fds.call });
  }

  queueNotify(): void {}

  reset(): void {
    this.backend.stop();
  }
}
