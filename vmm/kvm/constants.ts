// Numbers from the KVM API (include/uapi/linux/kvm.h, Documentation/virt/kvm/api.rst).

/** KVM_GET_API_VERSION must return this; anything else is an incompatible kernel. */
export const KVM_API_VERSION = 12;

/** Capabilities vmctr depends on (KVM_CHECK_EXTENSION). */
export const KvmCap = {
  IRQCHIP: 0,
  HLT: 1,
  USER_MEMORY: 3,
  SET_TSS_ADDR: 4,
  EXT_CPUID: 7,
  PIT2: 33,
  SET_IDENTITY_MAP_ADDR: 37,
  IOEVENTFD: 36,
  IRQFD: 32,
  IMMEDIATE_EXIT: 136,
  TSC_DEADLINE_TIMER: 72,
  READONLY_MEM: 81,
} as const;

/** kvm_userspace_memory_region.flags: the guest reads the slot's memory, its writes exit as MMIO. */
export const KVM_MEM_READONLY = 1 << 1;

/** kvm_run.exit_reason values. */
export const KvmExit = {
  UNKNOWN: 0,
  EXCEPTION: 1,
  IO: 2,
  HYPERCALL: 3,
  DEBUG: 4,
  HLT: 5,
  MMIO: 6,
  IRQ_WINDOW_OPEN: 7,
  SHUTDOWN: 8,
  FAIL_ENTRY: 9,
  INTR: 10,
  INTERNAL_ERROR: 17,
  SYSTEM_EVENT: 24,
} as const;

/** kvm_run.system_event.type values. */
export const KvmSystemEvent = { SHUTDOWN: 1, RESET: 2, CRASH: 3 } as const;

/** KVM_CREATE_PIT2 flag: the PIT needs no speaker port emulation from us. */
export const KVM_PIT_SPEAKER_DUMMY = 1;
