// What the virtio library needs of guest memory: resolve, check, read and
// write, every access bounds-checked by the implementation (the VMM's
// GuestMemory). The library never sees who created the memory.
export interface VirtioMemory {
  /** A live view of guest bytes; throws if any byte is outside guest RAM. */
  slice(addr: number, len: number): Uint8Array;
  checkRange(addr: number, len: number): boolean;
}

/** A guest driver broke the virtio contract; the device stops and asks for a reset. */
export class VirtioError extends Error {}
