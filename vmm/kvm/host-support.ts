import { accessSync, constants, existsSync, readFileSync } from 'node:fs';

/** Whether this host can run a Linux guest to userspace under KVM, and why not. */
export type HostSupport = { ok: true } | { ok: false; reason: string };

const KVM_DEVICE = '/dev/kvm';

/** True when the CPU advertises VT-x or AMD-V, i.e. KVM runs guests in hardware. */
export function hasHardwareVirtualization(cpuinfo = readFileSync('/proc/cpuinfo', 'utf8')): boolean {
  return /^flags\s*:.*\b(vmx|svm)\b/m.test(cpuinfo);
}

/**
 * Checks the facts that make KVM usable for a Linux guest, in the order a
 * user would fix them. PVM (a software KVM for cloud VMs without nested
 * virtualization) runs tiny guests but cannot take Linux to userspace.
 */
export function checkHostSupport(): HostSupport {
  if (!existsSync(KVM_DEVICE)) return { ok: false, reason: `${KVM_DEVICE} does not exist: load kvm-intel or kvm-amd, or use a host with hardware virtualization` };
  try {
    accessSync(KVM_DEVICE, constants.R_OK | constants.W_OK);
  } catch {
    return { ok: false, reason: `no read/write permission on ${KVM_DEVICE}: add this user to the kvm group` };
  }
  if (existsSync('/sys/module/kvm_pvm')) {
    return { ok: false, reason: 'this host\'s KVM is PVM (software, no VT-x/AMD-V): it cannot run a Linux guest to userspace; use a host with hardware virtualization or the nested lab (npm run lab)' };
  }
  if (!hasHardwareVirtualization()) {
    return { ok: false, reason: 'the CPU has no vmx/svm flag: KVM cannot run Linux guests here; enable VT-x/AMD-V or nested virtualization' };
  }
  return { ok: true };
}
