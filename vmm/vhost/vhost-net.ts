// The kernel's vhost-net as a virtio-net backend: a worker thread in the
// host kernel moves packets between the guest's rings and a tap, woken by
// the queues' kick eventfds (KVM ioeventfds) and interrupting the guest
// through its call eventfd (a KVM irqfd). The VMM only describes guest RAM
// and the rings once the driver has set them up (the vhost API:
// Documentation/virtual/vhost, linux/vhost.h); no packet passes through
// JavaScript.
import { closeSync } from 'node:fs';
import { native } from '../kvm/native.js';
import type { GuestMemory } from '../memory/guest-memory.js';
import type { ExternalQueues, QueueBackend } from '../virtio/queue-backend.js';
import { NetFeature, featureBit } from '../virtio/spec.js';
import { ringHostAddresses } from './ring-address.js';

/** linux/if_tun.h: offloads the tap may hand its reader, the guest. */
const TunOffload = { CSUM: 0x01, TSO4: 0x02, TSO6: 0x04, TSO_ECN: 0x08 } as const;

/** Guest offload features and the tap offload each lets the tap send it (5.1.6.4). */
const GUEST_OFFLOADS: ReadonlyArray<readonly [number, number]> = [
  [NetFeature.GUEST_CSUM, TunOffload.CSUM],
  [NetFeature.GUEST_TSO4, TunOffload.TSO4],
  [NetFeature.GUEST_TSO6, TunOffload.TSO6],
  [NetFeature.GUEST_ECN, TunOffload.TSO_ECN],
];


export class VhostNet implements QueueBackend {
  /** The features vhost-net supports: the device offers no ring or header feature beyond them. */
  readonly features: bigint;
  private readonly fd: number;
  /** Queues with the tap attached. */
  private started: number[] = [];

  /** Takes `tapFd` (opened with a NET_HEADER_SIZE vnet header); closed with this backend. */
  constructor(
    private readonly memory: GuestMemory,
    private readonly tapFd: number,
  ) {
    this.fd = native.vhostNetOpen();
    this.features = native.vhostGetFeatures(this.fd);
  }

  /** Starts moving packets on `setup`'s queues (0 receive, 1 transmit), from their first entries. */
  start(setup: ExternalQueues): void {
    this.stop();
    // vhost is told the ring and header features only; offloads are the tap's.
    native.vhostSetFeatures(this.fd, setup.features & this.features);
    native.vhostSetMemTable(this.fd, this.memory.regions.map((r) => ({ guestPhysAddr: BigInt(r.base), memory: r.buffer })));
    let offload = 0;
    for (const [feature, flag] of GUEST_OFFLOADS) if (setup.features & featureBit(feature)) offload |= flag;
    native.tapSetOffload(this.tapFd, offload);
    setup.queues.forEach((q, index) => {
      if (!q.ready) return;
      native.vhostSetVringNum(this.fd, index, q.size);
      native.vhostSetVringBase(this.fd, index, 0);
      native.vhostSetVringAddr(this.fd, index, ringHostAddresses(setup.mem, q.size, q.descTable, q.availRing, q.usedRing));
      native.vhostSetVringKick(this.fd, index, setup.kick[index]!);
      native.vhostSetVringCall(this.fd, index, setup.call);
      native.vhostNetSetBackend(this.fd, index, this.tapFd);
      this.started.push(index);
    });
  }

  /** Detaches the tap from every queue: the worker stops touching guest memory. */
  stop(): void {
    for (const index of this.started.splice(0)) native.vhostNetSetBackend(this.fd, index, -1);
  }

  close(): void {
    this.stop();
    closeSync(this.fd);
    closeSync(this.tapFd);
  }
}
