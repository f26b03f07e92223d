// Boots a Linux vmlinux through its PVH entry point (Xen's HVM direct boot
// ABI, which Linux implements for KVM too: arch/x86/platform/pvh/).
// Why PVH: the uncompressed ELF is loaded as-is (no bzImage decompression
// in the guest), and the entry state is flat 32-bit protected mode with no
// page tables to build, so it is both the fastest and the simplest path.
import type { GuestMemory } from '../memory/guest-memory.js';
import type { BootImage } from './boot-image.js';
import { ElfError, parseElf } from './elf.js';
import {
  CMDLINE_ADDR, CMDLINE_MAX, PVH_MEMMAP_ADDR, PVH_MEMMAP_MAX_ENTRIES, PVH_MODLIST_ADDR, PVH_START_INFO_ADDR, e820Map,
} from './layout.js';

/** xen/include/public/elfnote.h: physical 32-bit entry point of a PVH kernel. */
const XEN_ELFNOTE_PHYS32_ENTRY = 18;
/** xen/include/public/arch-x86/hvm/start_info.h */
const HVM_START_MAGIC = 0x336ec578;
const HVM_START_INFO_VERSION = 1; // version 1 carries the memory map
const HVM_START_INFO_SIZE = 56;
const HVM_MEMMAP_ENTRY_SIZE = 24;

const PAGE = 4096;

export class BootError extends Error {}

export interface LinuxBootSpec {
  kernel: BootImage;
  initrd?: BootImage | undefined;
  cmdline: string;
}

/** A validated boot: where everything goes, computed before any guest memory exists. */
export interface BootPlan {
  spec: LinuxBootSpec;
  /** PVH entry (guest-physical, 32-bit). */
  entry: number;
  /** The kernel's loadable bytes: `fileSize` bytes of the image from `fileOffset`, at guest address `paddr`. */
  segments: { paddr: number; fileOffset: number; fileSize: number }[];
  cmdline: Uint8Array;
  initrd?: { addr: number; image: BootImage };
}

export interface LoadedKernel {
  entry: number;
  /** Goes in EBX at entry. */
  startInfoAddr: number;
}

type Ranges = readonly { base: number; size: number }[];

function contains(ranges: Ranges, addr: number, len: number): boolean {
  return ranges.some((r) => addr >= r.base && addr + len <= r.base + r.size);
}

/** Parses the kernel and places kernel, command line and initrd in RAM laid out as `ranges`; throws a BootError on any misfit. */
export function planLinuxPvh(spec: LinuxBootSpec, ranges: Ranges): BootPlan {
  let elf;
  try {
    elf = parseElf(spec.kernel);
  } catch (e) {
    if (e instanceof ElfError) throw new BootError(`kernel: ${e.message}`);
    throw e;
  }
  const note = elf.notes.find((n) => n.name === 'Xen' && n.type === XEN_ELFNOTE_PHYS32_ENTRY);
  if (!note || note.desc.byteLength < 4) throw new BootError('kernel has no PVH entry point (build it with CONFIG_PVH=y)');
  const entry = new DataView(note.desc.buffer, note.desc.byteOffset, note.desc.byteLength).getUint32(0, true);

  const totalMiB = Math.floor(ranges.reduce((n, r) => n + r.size, 0) / 1048576);
  let kernelEnd = 0;
  const segments = elf.segments.map((seg) => {
    if (!contains(ranges, seg.paddr, seg.memSize)) {
      throw new BootError(`memory too small: the kernel needs RAM up to 0x${(seg.paddr + seg.memSize).toString(16)}, the guest has ${totalMiB} MiB`);
    }
    kernelEnd = Math.max(kernelEnd, seg.paddr + seg.memSize);
    return { paddr: seg.paddr, fileOffset: seg.fileOffset, fileSize: seg.fileSize };
  });

  const cmdline = new TextEncoder().encode(spec.cmdline);
  if (cmdline.byteLength + 1 > CMDLINE_MAX) throw new BootError(`kernel command line is ${cmdline.byteLength} bytes; the limit is ${CMDLINE_MAX - 1}`);

  let initrd: BootPlan['initrd'];
  if (spec.initrd && spec.initrd.byteLength > 0) {
    // Highest page-aligned spot in low RAM: far from the kernel's early allocations.
    const low = ranges[0]!;
    const addr = Math.floor((low.base + low.size - spec.initrd.byteLength) / PAGE) * PAGE;
    if (addr < kernelEnd) throw new BootError(`memory too small: kernel and initrd (${spec.initrd.byteLength} bytes) do not fit in ${totalMiB} MiB`);
    initrd = { addr, image: spec.initrd };
  }
  return { spec, entry, segments, cmdline, ...(initrd ? { initrd } : {}) };
}

/** Writes a planned boot (kernel, initrd, command line, hvm_start_info) into guest memory. */
export function loadLinuxPvh(mem: GuestMemory, plan: BootPlan): LoadedKernel {
  // Straight from the image into guest RAM. Fresh guest RAM is zero: the bss needs no clearing.
  for (const seg of plan.segments) plan.spec.kernel.readInto(seg.fileOffset, mem.slice(seg.paddr, seg.fileSize));
  mem.write(CMDLINE_ADDR, plan.cmdline);
  mem.writeU8(CMDLINE_ADDR + plan.cmdline.byteLength, 0);
  if (plan.initrd) plan.initrd.image.readInto(0, mem.slice(plan.initrd.addr, plan.initrd.image.byteLength));

  const map = e820Map(mem.regions);
  if (map.length > PVH_MEMMAP_MAX_ENTRIES) throw new BootError('memory map too large');
  map.forEach((e, i) => {
    const at = PVH_MEMMAP_ADDR + i * HVM_MEMMAP_ENTRY_SIZE;
    mem.writeU64(at, BigInt(e.addr));
    mem.writeU64(at + 8, BigInt(e.size));
    mem.writeU32(at + 16, e.type);
    mem.writeU32(at + 20, 0);
  });

  if (plan.initrd) {
    // hvm_modlist_entry: paddr, size, cmdline_paddr, reserved.
    mem.writeU64(PVH_MODLIST_ADDR, BigInt(plan.initrd.addr));
    mem.writeU64(PVH_MODLIST_ADDR + 8, BigInt(plan.initrd.image.byteLength));
    mem.writeU64(PVH_MODLIST_ADDR + 16, 0n);
    mem.writeU64(PVH_MODLIST_ADDR + 24, 0n);
  }
  const si = PVH_START_INFO_ADDR;
  mem.write(si, new Uint8Array(HVM_START_INFO_SIZE));
  mem.writeU32(si, HVM_START_MAGIC);
  mem.writeU32(si + 4, HVM_START_INFO_VERSION);
  mem.writeU32(si + 8, 0); // flags
  mem.writeU32(si + 12, plan.initrd ? 1 : 0); // nr_modules
  mem.writeU64(si + 16, BigInt(plan.initrd ? PVH_MODLIST_ADDR : 0));
  mem.writeU64(si + 24, BigInt(CMDLINE_ADDR));
  mem.writeU64(si + 32, 0n); // rsdp_paddr: no ACPI
  mem.writeU64(si + 40, BigInt(PVH_MEMMAP_ADDR));
  mem.writeU32(si + 48, map.length);
  return { entry: plan.entry, startInfoAddr: si };
}
