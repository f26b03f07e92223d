// A virtio-fs device's queues served by a vhost-user back-end (virtiofsd):
// the connection is made and the features read when the VM is built, so a
// back-end that is not there fails Vm.create; guest RAM (shared memory,
// which the back-end maps) and the rings are handed over when the driver
// activates the device, and taken back (GET_VRING_BASE) when it resets.
import { GuestMemory } from '../memory/guest-memory.js';
import type { ExternalQueues, QueueBackend } from '../virtio/queue-backend.js';
import { VhostUserFrontend } from './vhost-user.js';

/** How long one request to the back-end may take: virtiofsd answers in microseconds; a stopped one must not hang the VMM. */
const REQUEST_TIMEOUT_MS = 5_000;

export class VhostUserFs implements QueueBackend {
  readonly features: bigint;
  private started: number[] = [];

  private constructor(
    private readonly frontend: VhostUserFrontend,
    private readonly memory: GuestMemory,
  ) {
    frontend.setOwner();
    this.features = frontend.getFeatures();
    frontend.negotiateProtocolFeatures();
  }

  /** Connects to the back-end at `socket`, for guest RAM `memory` (allocated shared). */
  static connect(socket: string, memory: GuestMemory): VhostUserFs {
    const frontend = VhostUserFrontend.connect(socket, { timeoutMs: REQUEST_TIMEOUT_MS });
    try {
      return new VhostUserFs(frontend, memory);
    } catch (err) {
      frontend.close();
      throw err;
    }
  }

  start(setup: ExternalQueues): void {
    this.stop();
    this.frontend.setFeatures(setup.features & this.features);
    this.frontend.setMemTable(this.memory);
    setup.queues.forEach((q, index) => {
      if (!q.ready) return;
      this.frontend.startQueue(index, { size: q.size, desc: q.descTable, avail: q.availRing, used: q.usedRing, kickFd: setup.kick[index]!, callFd: setup.call }, setup.mem);
      this.started.push(index);
    });
  }

  /** Takes the rings back. A back-end that fails to answer has dropped the connection: it is done with them either way. */
  stop(): void {
    for (const index of this.started.splice(0)) {
      try {
        this.frontend.stopQueue(index);
      } catch {
        return;
      }
    }
  }

  close(): void {
    this.frontend.close();
  }
}
