import { closeSync, constants, openSync } from 'node:fs';
import { KVM_API_VERSION, KvmCap } from './constants.js';
import { native, type CpuidEntry, type MsrEntry, type Regs, type Sregs } from './native.js';

const KVM_DEVICE = '/dev/kvm';

/** The /dev/kvm system file descriptor: checks, capabilities, VM creation. */
export class Kvm {
  readonly fd: number;

  private constructor(fd: number) {
    this.fd = fd;
  }

  static open(path = KVM_DEVICE): Kvm {
    let fd: number;
    try {
      fd = openSync(path, constants.O_RDWR); // libuv opens with O_CLOEXEC
    } catch (e) {
      throw new Error(`cannot open ${path}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
    }
    const kvm = new Kvm(fd);
    const version = native.kvmGetApiVersion(fd);
    if (version !== KVM_API_VERSION) {
      kvm.close();
      throw new Error(`KVM API version ${version} is not supported (need ${KVM_API_VERSION})`);
    }
    return kvm;
  }

  checkExtension(cap: number): number {
    return native.kvmCheckExtension(this.fd, cap);
  }

  /** Throws naming the first capability this KVM lacks. */
  requireCapabilities(caps: readonly (keyof typeof KvmCap)[]): void {
    for (const name of caps) {
      if (this.checkExtension(KvmCap[name]) <= 0) throw new Error(`KVM lacks the capability KVM_CAP_${name}`);
    }
  }

  vcpuMmapSize(): number {
    return native.kvmGetVcpuMmapSize(this.fd);
  }

  supportedCpuid(): CpuidEntry[] {
    return native.kvmGetSupportedCpuid(this.fd);
  }

  createVm(): VmFd {
    return new VmFd(native.kvmCreateVm(this.fd), this);
  }

  close(): void {
    closeSync(this.fd);
  }
}

/** A VM file descriptor: memory slots, the in-kernel irqchip, vCPUs, event fds. */
export class VmFd {
  readonly fd: number;
  readonly kvm: Kvm;

  constructor(fd: number, kvm: Kvm) {
    this.fd = fd;
    this.kvm = kvm;
  }

  createIrqchip(): void {
    native.vmCreateIrqchip(this.fd);
  }

  createPit2(flags: number): void {
    native.vmCreatePit2(this.fd, flags);
  }

  setTssAddr(addr: number): void {
    native.vmSetTssAddr(this.fd, addr);
  }

  setIdentityMapAddr(addr: number): void {
    native.vmSetIdentityMapAddr(this.fd, BigInt(addr));
  }

  setUserMemoryRegion(slot: number, guestPhysAddr: number, memory: ArrayBuffer | null, flags = 0): void {
    native.vmSetUserMemoryRegion(this.fd, slot, flags, BigInt(guestPhysAddr), memory);
  }

  irqLine(irq: number, level: 0 | 1): void {
    native.vmIrqLine(this.fd, irq, level);
  }

  registerIrqfd(eventFd: number, gsi: number): void {
    native.vmIrqfd(this.fd, { fd: eventFd, gsi });
  }

  /** Guest writes of `len` bytes at `addr` (a port if `pio`) signal `eventFd` without an exit. */
  registerIoeventfd(eventFd: number, addr: number, len: number, opts: { pio?: boolean; datamatch?: number } = {}): void {
    native.vmIoeventfd(this.fd, {
      fd: eventFd,
      addr: BigInt(addr),
      len,
      pio: opts.pio ?? false,
      ...(opts.datamatch === undefined ? {} : { datamatch: BigInt(opts.datamatch) }),
    });
  }

  createVcpu(id: number): VcpuFd {
    const fd = native.vmCreateVcpu(this.fd, id);
    return new VcpuFd(fd, id, native.vcpuMapRun(fd, this.kvm.vcpuMmapSize()));
  }

  close(): void {
    closeSync(this.fd);
  }
}

/** A vCPU file descriptor and its shared kvm_run page. */
export class VcpuFd {
  readonly fd: number;
  readonly id: number;
  readonly run: ArrayBuffer;

  constructor(fd: number, id: number, run: ArrayBuffer) {
    this.fd = fd;
    this.id = id;
    this.run = run;
  }

  getRegs(): Regs { return native.vcpuGetRegs(this.fd); }
  setRegs(regs: Regs): void { native.vcpuSetRegs(this.fd, regs); }
  getSregs(): Sregs { return native.vcpuGetSregs(this.fd); }
  setSregs(sregs: Sregs): void { native.vcpuSetSregs(this.fd, sregs); }
  setFpu(fpu: { fcw: number; mxcsr: number }): void { native.vcpuSetFpu(this.fd, fpu); }
  getFpu(): { fcw: number; mxcsr: number } { return native.vcpuGetFpu(this.fd); }
  setCpuid(entries: CpuidEntry[]): void { native.vcpuSetCpuid2(this.fd, entries); }
  getLapic(): Uint8Array { return native.vcpuGetLapic(this.fd); }
  setLapic(state: Uint8Array): void { native.vcpuSetLapic(this.fd, state); }
  getMsrs(indices: number[]): MsrEntry[] { return native.vcpuGetMsrs(this.fd, indices); }

  /** Throws unless KVM took every MSR: a silently dropped MSR is a wrong boot state. */
  setMsrs(entries: MsrEntry[]): void {
    const n = native.vcpuSetMsrs(this.fd, entries);
    if (n !== entries.length) throw new Error(`KVM_SET_MSRS accepted ${n} of ${entries.length} MSRs (stopped at 0x${entries[n]?.index.toString(16)})`);
  }

  close(): void {
    closeSync(this.fd);
  }
}
