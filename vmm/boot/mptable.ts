// Intel MultiProcessor Specification 1.4 tables: how a guest without ACPI
// learns its CPUs, its IOAPIC and how ISA interrupts are wired.
import type { GuestMemory } from '../memory/guest-memory.js';
import { IOAPIC_ADDR, LAPIC_ADDR, LOW_MEMORY_END, MPTABLE_ADDR } from './layout.js';

const MPF_SIZE = 16; // floating pointer structure (MP spec 4.1)
const MPC_HEADER_SIZE = 44; // configuration table header (4.2)
const MPC_CPU_SIZE = 20; // processor entry (4.3.1)
const MPC_BUS_SIZE = 8; // bus entry (4.3.2)
const MPC_IOAPIC_SIZE = 8; // I/O APIC entry (4.3.3)
const MPC_INTSRC_SIZE = 8; // I/O interrupt assignment (4.3.4)
const MPC_LINTSRC_SIZE = 8; // local interrupt assignment (4.3.5)

const MP_PROCESSOR = 0;
const MP_BUS = 1;
const MP_IOAPIC = 2;
const MP_INTSRC = 3;
const MP_LINTSRC = 4;
const MP_INT = 0;
const MP_NMI = 1;
const MP_EXTINT = 3;
const CPU_ENABLED = 1;
const CPU_BOOTPROCESSOR = 2;
const APIC_VERSION = 0x14;
const IOAPIC_VERSION = 0x11;
const MP_SPEC_REV = 4; // 1.4
/** IOAPIC pins 0..23, wired 1:1 to ISA IRQs. */
export const IOAPIC_PINS = 24;
/** The largest CPU count whose table fits below 640 KiB. */
export const MPTABLE_MAX_CPUS = Math.floor((LOW_MEMORY_END - MPTABLE_ADDR - MPF_SIZE - MPC_HEADER_SIZE - MPC_BUS_SIZE - MPC_IOAPIC_SIZE - (IOAPIC_PINS + 2) * MPC_INTSRC_SIZE) / MPC_CPU_SIZE);

function checksum(bytes: Uint8Array): number {
  let sum = 0;
  for (const b of bytes) sum = (sum + b) & 0xff;
  return (0x100 - sum) & 0xff;
}

function ascii(v: DataView, at: number, s: string, len: number): void {
  for (let i = 0; i < len; i++) v.setUint8(at + i, i < s.length ? s.charCodeAt(i) : 0x20);
}

/** Builds the MP table for `cpus` CPUs (APIC ids 0..cpus-1) and writes it at MPTABLE_ADDR. */
export function writeMpTable(mem: GuestMemory, cpus: number): void {
  if (!Number.isInteger(cpus) || cpus < 1 || cpus > MPTABLE_MAX_CPUS) throw new RangeError(`CPU count must be 1..${MPTABLE_MAX_CPUS}`);
  const ioapicId = cpus;
  const tableLen = MPC_HEADER_SIZE + cpus * MPC_CPU_SIZE + MPC_BUS_SIZE + MPC_IOAPIC_SIZE + IOAPIC_PINS * MPC_INTSRC_SIZE + 2 * MPC_LINTSRC_SIZE;
  const bytes = new Uint8Array(MPF_SIZE + tableLen);
  const v = new DataView(bytes.buffer);
  const tableAddr = MPTABLE_ADDR + MPF_SIZE;

  // Floating pointer: "_MP_", physical pointer to the table, 1 paragraph long.
  ascii(v, 0, '_MP_', 4);
  v.setUint32(4, tableAddr, true);
  v.setUint8(8, 1);
  v.setUint8(9, MP_SPEC_REV);
  v.setUint8(10, checksum(bytes.subarray(0, MPF_SIZE)));

  const t = MPF_SIZE;
  let at = t + MPC_HEADER_SIZE;
  for (let id = 0; id < cpus; id++) {
    v.setUint8(at, MP_PROCESSOR);
    v.setUint8(at + 1, id);
    v.setUint8(at + 2, APIC_VERSION);
    v.setUint8(at + 3, CPU_ENABLED | (id === 0 ? CPU_BOOTPROCESSOR : 0));
    v.setUint32(at + 4, 0x600, true); // signature: family 6
    v.setUint32(at + 8, 0x201, true); // features: FPU, APIC
    at += MPC_CPU_SIZE;
  }
  v.setUint8(at, MP_BUS);
  v.setUint8(at + 1, 0);
  ascii(v, at + 2, 'ISA', 6);
  at += MPC_BUS_SIZE;
  v.setUint8(at, MP_IOAPIC);
  v.setUint8(at + 1, ioapicId);
  v.setUint8(at + 2, IOAPIC_VERSION);
  v.setUint8(at + 3, 1); // usable
  v.setUint32(at + 4, IOAPIC_ADDR, true);
  at += MPC_IOAPIC_SIZE;
  for (let irq = 0; irq < IOAPIC_PINS; irq++) {
    v.setUint8(at, MP_INTSRC);
    v.setUint8(at + 1, MP_INT);
    v.setUint16(at + 2, 0, true); // polarity and trigger conform to the bus
    v.setUint8(at + 4, 0); // source bus: ISA
    v.setUint8(at + 5, irq);
    v.setUint8(at + 6, ioapicId);
    v.setUint8(at + 7, irq);
    at += MPC_INTSRC_SIZE;
  }
  for (const [type, lint, dest] of [[MP_EXTINT, 0, 0], [MP_NMI, 1, 0xff]] as const) {
    v.setUint8(at, MP_LINTSRC);
    v.setUint8(at + 1, type);
    v.setUint16(at + 2, 0, true);
    v.setUint8(at + 4, 0);
    v.setUint8(at + 5, 0);
    v.setUint8(at + 6, dest);
    v.setUint8(at + 7, lint);
    at += MPC_LINTSRC_SIZE;
  }

  ascii(v, t, 'PCMP', 4);
  v.setUint16(t + 4, tableLen, true);
  v.setUint8(t + 6, MP_SPEC_REV);
  ascii(v, t + 8, 'VMCTR', 8);
  ascii(v, t + 16, 'MICROVM', 12);
  v.setUint16(t + 34, cpus + 1 + 1 + IOAPIC_PINS + 2, true); // entry count
  v.setUint32(t + 36, LAPIC_ADDR, true);
  v.setUint8(t + 7, checksum(bytes.subarray(t, t + tableLen)));

  mem.write(MPTABLE_ADDR, bytes);
}
