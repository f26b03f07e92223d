// A 64 KiB in-memory disk for virtio-blk tests: they exercise request
// parsing and queue handling, not the host's file system.
import type { BlockBackend } from '../../vmm/devices/block/backend.js';

export function memoryBackend(): BlockBackend {
  const data = new Uint8Array(64 * 1024);
  return {
    size: data.byteLength,
    readOnly: false,
    read: (pos, buf) => buf.set(data.subarray(pos, pos + buf.byteLength)),
    write: (pos, buf) => data.set(buf, pos),
    flush: () => {},
    close: () => {},
  };
}
