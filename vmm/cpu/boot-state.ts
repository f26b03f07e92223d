// The architectural state a vCPU starts in: PVH entry registers for the
// boot CPU, and what every CPU needs (MSRs, FPU, local APIC wiring).
import type { VcpuFd } from '../kvm/kvm.js';
import type { Segment } from '../kvm/native.js';
import type { GuestMemory } from '../memory/guest-memory.js';
import { BOOT_GDT_ADDR, BOOT_IDT_ADDR } from '../boot/layout.js';

// Control register and flag bits (Intel SDM vol. 3A, 2.5).
const CR0_PE = 0x1n;
const CR0_ET = 0x10n;
const RFLAGS_RESERVED_1 = 0x2n;

// MSR indices (Intel SDM vol. 4).
const MSR_IA32_SYSENTER_CS = 0x174;
const MSR_IA32_SYSENTER_ESP = 0x175;
const MSR_IA32_SYSENTER_EIP = 0x176;
const MSR_STAR = 0xc0000081;
const MSR_LSTAR = 0xc0000082;
const MSR_CSTAR = 0xc0000083;
const MSR_SYSCALL_MASK = 0xc0000084;
const MSR_KERNEL_GS_BASE = 0xc0000102;
const MSR_IA32_TSC = 0x10;
const MSR_IA32_MISC_ENABLE = 0x1a0;
const MSR_MTRR_DEF_TYPE = 0x2ff;
const MISC_ENABLE_FAST_STRING = 1n;
/** MTRRs on, default memory type write-back: without it the guest runs uncached. */
const MTRR_ENABLE_WRITEBACK = (1n << 11n) | 6n;

// Local APIC registers (Intel SDM vol. 3A, 10.4.1) and LVT delivery modes.
const APIC_LVT0 = 0x350;
const APIC_LVT1 = 0x360;
const APIC_MODE_NMI = 0x4;
const APIC_MODE_EXTINT = 0x7;

// The boot GDT: null, 32-bit flat code, 32-bit flat data, a TSS.
const GDT_ENTRIES: readonly bigint[] = [
  0n,
  gdtEntry(0xc09b, 0, 0xfffff),
  gdtEntry(0xc093, 0, 0xfffff),
  gdtEntry(0x008b, 0, 0x67),
];
const SEL_CODE = 1 * 8;
const SEL_DATA = 2 * 8;
const SEL_TSS = 3 * 8;

/** A segment descriptor from flags (type/S/DPL/P and G/DB/L/AVL), base and limit. */
function gdtEntry(flags: number, base: number, limit: number): bigint {
  const b = BigInt(base);
  const l = BigInt(limit);
  const f = BigInt(flags);
  return ((b & 0xff000000n) << 32n) | ((f & 0xf0ffn) << 40n) | ((l & 0xf0000n) << 32n) | ((b & 0xffffffn) << 16n) | (l & 0xffffn);
}

/** The hidden-cache form of a GDT entry, as KVM_SET_SREGS wants it. */
function segmentFromEntry(entry: bigint, selector: number): Segment {
  const limitRaw = Number(((entry >> 32n) & 0xf0000n) | (entry & 0xffffn));
  const g = Number((entry >> 55n) & 1n);
  return {
    base: ((entry >> 32n) & 0xff000000n) | ((entry >> 16n) & 0xffffffn),
    limit: g ? limitRaw * 4096 + 4095 : limitRaw,
    selector,
    type: Number((entry >> 40n) & 0xfn),
    present: Number((entry >> 47n) & 1n),
    dpl: Number((entry >> 45n) & 3n),
    db: Number((entry >> 54n) & 1n),
    s: Number((entry >> 44n) & 1n),
    l: Number((entry >> 53n) & 1n),
    g,
    avl: Number((entry >> 52n) & 1n),
    unusable: 0,
  };
}

/**
 * PVH entry state (xen/include/public/arch-x86/hvm/start_info.h): 32-bit
 * protected mode, paging off, flat segments, EBX = hvm_start_info.
 */
export function setupPvhEntry(vcpu: VcpuFd, mem: GuestMemory, entry: number, startInfoAddr: number): void {
  GDT_ENTRIES.forEach((e, i) => mem.writeU64(BOOT_GDT_ADDR + i * 8, e));
  mem.writeU64(BOOT_IDT_ADDR, 0n);

  const sregs = vcpu.getSregs();
  const code = segmentFromEntry(GDT_ENTRIES[1]!, SEL_CODE);
  const data = segmentFromEntry(GDT_ENTRIES[2]!, SEL_DATA);
  sregs.cs = code;
  sregs.ds = sregs.es = sregs.fs = sregs.gs = sregs.ss = data;
  sregs.tr = segmentFromEntry(GDT_ENTRIES[3]!, SEL_TSS);
  sregs.gdt = { base: BigInt(BOOT_GDT_ADDR), limit: GDT_ENTRIES.length * 8 - 1 };
  sregs.idt = { base: BigInt(BOOT_IDT_ADDR), limit: 7 };
  sregs.cr0 = CR0_PE | CR0_ET;
  sregs.cr3 = 0n;
  sregs.cr4 = 0n;
  sregs.efer = 0n;
  vcpu.setSregs(sregs);

  const regs = vcpu.getRegs();
  for (const k of Object.keys(regs) as (keyof typeof regs)[]) regs[k] = 0n;
  regs.rflags = RFLAGS_RESERVED_1;
  regs.rip = BigInt(entry);
  regs.rbx = BigInt(startInfoAddr);
  vcpu.setRegs(regs);
}

/** State every vCPU needs before its first KVM_RUN. */
export function setupCommonState(vcpu: VcpuFd): void {
  vcpu.setMsrs([
    { index: MSR_IA32_SYSENTER_CS, data: 0n },
    { index: MSR_IA32_SYSENTER_ESP, data: 0n },
    { index: MSR_IA32_SYSENTER_EIP, data: 0n },
    { index: MSR_STAR, data: 0n },
    { index: MSR_CSTAR, data: 0n },
    { index: MSR_KERNEL_GS_BASE, data: 0n },
    { index: MSR_SYSCALL_MASK, data: 0n },
    { index: MSR_LSTAR, data: 0n },
    { index: MSR_IA32_TSC, data: 0n },
    { index: MSR_IA32_MISC_ENABLE, data: MISC_ENABLE_FAST_STRING },
    { index: MSR_MTRR_DEF_TYPE, data: MTRR_ENABLE_WRITEBACK },
  ]);
  // x87 control word and MXCSR at their reset values (all exceptions masked).
  vcpu.setFpu({ fcw: 0x37f, mxcsr: 0x1f80 });
  // LINT0 delivers the PIC's ExtINT, LINT1 NMIs, as the MP table says.
  const lapic = vcpu.getLapic();
  const v = new DataView(lapic.buffer, lapic.byteOffset, lapic.byteLength);
  const setMode = (reg: number, mode: number) => v.setUint32(reg, (v.getUint32(reg, true) & ~0x700) | (mode << 8), true);
  setMode(APIC_LVT0, APIC_MODE_EXTINT);
  setMode(APIC_LVT1, APIC_MODE_NMI);
  vcpu.setLapic(lapic);
}
