import { KvmExit } from './constants.js';

// Offsets into struct kvm_run (include/uapi/linux/kvm.h, x86-64).
const RUN_EXIT_REASON = 8;
const RUN_UNION = 32;
const IO_DIRECTION = RUN_UNION; // u8: 0 in, 1 out
const IO_SIZE = RUN_UNION + 1; // u8
const IO_PORT = RUN_UNION + 2; // u16
const IO_COUNT = RUN_UNION + 4; // u32
const IO_DATA_OFFSET = RUN_UNION + 8; // u64
const MMIO_PHYS_ADDR = RUN_UNION; // u64
const MMIO_DATA = RUN_UNION + 8; // u8[8]
const MMIO_LEN = RUN_UNION + 16; // u32
const MMIO_IS_WRITE = RUN_UNION + 20; // u8
const INTERNAL_SUBERROR = RUN_UNION; // u32
const INTERNAL_NDATA = RUN_UNION + 4; // u32
const INTERNAL_DATA = RUN_UNION + 8; // u64[16]
const SYSTEM_EVENT_TYPE = RUN_UNION; // u32
const FAIL_ENTRY_REASON = RUN_UNION; // u64
const HW_EXIT_REASON = RUN_UNION; // u64

const IO_OUT = 1;

/**
 * One vCPU exit, decoded from the shared kvm_run page. I/O and MMIO exits
 * carry a view onto the page's data bytes, so an "in" or MMIO read is
 * answered by writing into `data` before the vCPU resumes.
 */
export type VcpuExit =
  | { kind: 'io-in' | 'io-out'; port: number; size: number; count: number; data: Uint8Array }
  | { kind: 'mmio-read' | 'mmio-write'; addr: number; data: Uint8Array }
  | { kind: 'hlt' }
  | { kind: 'shutdown' }
  | { kind: 'system-event'; type: number }
  | { kind: 'internal-error'; suberror: number; data: bigint[] }
  | { kind: 'fail-entry'; reason: bigint }
  | { kind: 'unknown'; hardwareReason: bigint }
  | { kind: 'intr' }
  | { kind: 'unsupported'; reason: number };

/** Decodes kvm_run; any exit reason vmctr does not know becomes 'unsupported', never a throw. */
export function decodeExit(run: DataView, runBytes: Uint8Array): VcpuExit {
  const reason = run.getUint32(RUN_EXIT_REASON, true);
  switch (reason) {
    case KvmExit.IO: {
      const size = run.getUint8(IO_SIZE);
      const count = run.getUint32(IO_COUNT, true);
      const offset = Number(run.getBigUint64(IO_DATA_OFFSET, true));
      // KVM places the data inside the mapping; still, never trust an offset blindly.
      const end = offset + size * count;
      if (end > runBytes.byteLength || size === 0) return { kind: 'unsupported', reason };
      return {
        kind: run.getUint8(IO_DIRECTION) === IO_OUT ? 'io-out' : 'io-in',
        port: run.getUint16(IO_PORT, true),
        size,
        count,
        data: runBytes.subarray(offset, end),
      };
    }
    case KvmExit.MMIO: {
      const len = Math.min(run.getUint32(MMIO_LEN, true), 8);
      return {
        kind: run.getUint8(MMIO_IS_WRITE) ? 'mmio-write' : 'mmio-read',
        addr: Number(run.getBigUint64(MMIO_PHYS_ADDR, true)),
        data: runBytes.subarray(MMIO_DATA, MMIO_DATA + len),
      };
    }
    case KvmExit.HLT:
      return { kind: 'hlt' };
    case KvmExit.SHUTDOWN:
      return { kind: 'shutdown' };
    case KvmExit.SYSTEM_EVENT:
      return { kind: 'system-event', type: run.getUint32(SYSTEM_EVENT_TYPE, true) };
    case KvmExit.INTERNAL_ERROR: {
      const n = Math.min(run.getUint32(INTERNAL_NDATA, true), 16);
      const data: bigint[] = [];
      for (let i = 0; i < n; i++) data.push(run.getBigUint64(INTERNAL_DATA + 8 * i, true));
      return { kind: 'internal-error', suberror: run.getUint32(INTERNAL_SUBERROR, true), data };
    }
    case KvmExit.FAIL_ENTRY:
      return { kind: 'fail-entry', reason: run.getBigUint64(FAIL_ENTRY_REASON, true) };
    case KvmExit.UNKNOWN:
      return { kind: 'unknown', hardwareReason: run.getBigUint64(HW_EXIT_REASON, true) };
    case KvmExit.INTR:
      return { kind: 'intr' };
    default:
      return { kind: 'unsupported', reason };
  }
}
