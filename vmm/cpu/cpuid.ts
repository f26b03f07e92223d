// The CPUID a vCPU sees: what KVM supports, narrowed to what this VMM
// actually provides, with the per-vCPU topology filled in.
// Leaf and bit numbers: Intel SDM vol. 2A, CPUID; AMD APM vol. 3, E.3.
import type { CpuidEntry } from '../kvm/native.js';

const LEAF_FEATURES = 0x1;
const LEAF_CACHE_PARAMS = 0x4;
const LEAF_THERMAL_POWER = 0x6;
const LEAF_PMU = 0xa;
const LEAF_TOPOLOGY = 0xb;
const LEAF_TOPOLOGY_V2 = 0x1f;

// Leaf 1 ECX
const ECX_MONITOR = 1 << 3; // MONITOR/MWAIT: we idle with HLT
const ECX_VMX = 1 << 5;
const ECX_SMX = 1 << 6;
const ECX_EST = 1 << 7;
const ECX_TM2 = 1 << 8;
const ECX_PDCM = 1 << 15; // perf capabilities MSR: no PMU
/**
 * TSC-deadline mode of the in-kernel LAPIC timer, which KVM emulates but
 * does not report (it depends on the irqchip, which vmctr always creates;
 * KVM_CAP_TSC_DEADLINE_TIMER). Without it Linux calibrates the LAPIC timer
 * against the PIT at boot, which under nested virtualization fails
 * ("APIC timer disabled due to verification failure") and leaves the PIT
 * as the tick.
 */
const ECX_TSC_DEADLINE = 1 << 24;
const ECX_HYPERVISOR = 1 << 31;
// Leaf 6 EAX: the LAPIC timer keeps running in deep C-states (KVM's always does).
const EAX_ARAT = 1 << 2;
// Leaf 1 EDX
const EDX_ACPI = 1 << 22; // thermal-monitor MSRs
const EDX_HTT = 1 << 28;
const EDX_TM = 1 << 29;

/** Features the VMM does not emulate, removed whatever KVM supports. */
const LEAF1_ECX_REMOVED = ECX_MONITOR | ECX_VMX | ECX_SMX | ECX_EST | ECX_TM2 | ECX_PDCM;
const LEAF1_EDX_REMOVED = EDX_ACPI | EDX_TM;

/** CPUID for vCPU `index` of `count`, derived from KVM_GET_SUPPORTED_CPUID. */
export function vcpuCpuid(supported: readonly CpuidEntry[], index: number, count: number): CpuidEntry[] {
  const out: CpuidEntry[] = [];
  for (const src of supported) {
    const e = { ...src };
    switch (e.function) {
      case LEAF_FEATURES:
        // EBX: [31:24] initial APIC id, [23:16] logical processors, [15:8] CLFLUSH line size / 8.
        e.ebx = ((index & 0xff) << 24) | ((count & 0xff) << 16) | (8 << 8);
        e.ecx = ((e.ecx & ~LEAF1_ECX_REMOVED) | ECX_HYPERVISOR | ECX_TSC_DEADLINE) >>> 0;
        e.edx = (e.edx & ~LEAF1_EDX_REMOVED) >>> 0;
        if (count > 1) e.edx = (e.edx | EDX_HTT) >>> 0;
        break;
      case LEAF_CACHE_PARAMS:
        // EAX[31:26]: cores per package - 1; one core per vCPU package-wide.
        e.eax = ((e.eax & 0x3ff) | (((count - 1) & 0x3f) << 26)) >>> 0;
        break;
      case LEAF_THERMAL_POWER:
        // No thermal/power management; the always-running APIC timer stays.
        e.eax = (e.eax & EAX_ARAT) >>> 0;
        e.ebx = e.ecx = e.edx = 0;
        break;
      case LEAF_PMU:
        // No performance counters to offer.
        e.eax = e.ebx = e.ecx = e.edx = 0;
        break;
      case LEAF_TOPOLOGY:
      case LEAF_TOPOLOGY_V2:
        e.edx = index; // x2APIC id
        break;
      default:
        break;
    }
    out.push(e);
  }
  return out;
}
