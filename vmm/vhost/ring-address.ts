// Where a split virtqueue's rings are in this process's memory: what the
// kernel's vhost and a vhost-user back-end are told (both take the VMM's
// virtual addresses, not guest physical ones). Each ring is checked to lie
// in guest RAM first (virtio 1.2, 2.7: sizes of the descriptor table, the
// available ring and the used ring, each with its trailing event field).
import { native } from '../kvm/native.js';
import type { VirtioMemory } from '../virtio/memory.js';
import { DESCRIPTOR_SIZE } from '../virtio/spec.js';

export interface RingAddresses {
  desc: bigint;
  avail: bigint;
  used: bigint;
}

/** The host addresses of the rings of a queue of `size` entries at guest addresses `desc`, `avail` and `used`. */
export function ringHostAddresses(mem: VirtioMemory, size: number, desc: number, avail: number, used: number): RingAddresses {
  return {
    desc: hostAddress(mem, desc, DESCRIPTOR_SIZE * size),
    avail: hostAddress(mem, avail, 6 + 2 * size),
    used: hostAddress(mem, used, 6 + 8 * size),
  };
}

/** The host address of guest range [addr, addr+len), checked to lie in guest RAM. */
function hostAddress(mem: VirtioMemory, addr: number, len: number): bigint {
  const view = mem.slice(addr, len);
  return native.bufferAddress(view.buffer as ArrayBuffer) + BigInt(view.byteOffset);
}
