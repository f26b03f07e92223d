// Every fixed guest-physical address vmctr uses, in one place (x86-64).

const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;

/** Boot GDT (4 entries: null, code, data, TSS) the vCPU starts with. */
export const BOOT_GDT_ADDR = 0x500;
/** An empty IDT: interrupts stay off until the kernel installs its own. */
export const BOOT_IDT_ADDR = 0x520;
/** PVH hvm_start_info, then its module list. */
export const PVH_START_INFO_ADDR = 0x6000;
export const PVH_MODLIST_ADDR = 0x6040;
/** PVH memory map (e820-style entries). */
export const PVH_MEMMAP_ADDR = 0x7000;
export const PVH_MEMMAP_MAX_ENTRIES = 64;
/** Kernel command line; x86 Linux reads at most 2048 bytes. */
export const CMDLINE_ADDR = 0x20000;
export const CMDLINE_MAX = 2048;
/** Intel MP table in the last KiB below 640 KiB, where Linux scans for it. */
export const MPTABLE_ADDR = 0x9fc00;
/** End of conventional memory; 640 KiB - 1 MiB is the legacy VGA/BIOS hole. */
export const LOW_MEMORY_END = 0xa0000;
/** Kernels link at 16 MiB (CONFIG_PHYSICAL_START); the ELF's own p_paddr decides. */
export const HIGH_MEMORY_START = 1 * MiB;

/** The 32-bit MMIO hole: device registers, the IOAPIC and LAPIC live here, RAM resumes at 4 GiB. */
export const MMIO_GAP_START = 3 * GiB;
export const MMIO_GAP_END = 4 * GiB;
/** virtio-mmio device windows, one 4 KiB page each (virtio 1.2, 4.2.2). */
export const VIRTIO_MMIO_BASE = 0xd0000000;
export const VIRTIO_MMIO_SIZE = 0x1000;
export const IOAPIC_ADDR = 0xfec00000;
export const LAPIC_ADDR = 0xfee00000;
/** KVM_SET_IDENTITY_MAP_ADDR (1 page) and KVM_SET_TSS_ADDR (3 pages), just below the LAPIC region's top. */
export const IDENTITY_MAP_ADDR = 0xfeffc000;
export const TSS_ADDR = 0xfeffd000;

/** The guest's RAM ranges for a given size: below the MMIO gap, the rest above 4 GiB. */
export function ramRanges(memoryBytes: number): { base: number; size: number }[] {
  if (memoryBytes <= MMIO_GAP_START) return [{ base: 0, size: memoryBytes }];
  return [
    { base: 0, size: MMIO_GAP_START },
    { base: MMIO_GAP_END, size: memoryBytes - MMIO_GAP_START },
  ];
}

export const E820_RAM = 1;
export const E820_RESERVED = 2;

export interface E820Entry {
  addr: number;
  size: number;
  type: typeof E820_RAM | typeof E820_RESERVED;
}

/**
 * The memory map the guest is told about: conventional memory up to the MP
 * table, the MP table reserved, and RAM from 1 MiB on.
 */
export function e820Map(ranges: readonly { base: number; size: number }[]): E820Entry[] {
  const map: E820Entry[] = [
    { addr: 0, size: MPTABLE_ADDR, type: E820_RAM },
    { addr: MPTABLE_ADDR, size: LOW_MEMORY_END - MPTABLE_ADDR, type: E820_RESERVED },
  ];
  for (const r of ranges) {
    const start = Math.max(r.base, HIGH_MEMORY_START);
    const end = r.base + r.size;
    if (end > start) map.push({ addr: start, size: end - start, type: E820_RAM });
  }
  return map;
}

export { KiB, MiB, GiB };
