// The VM: owns KVM, guest memory, the vCPUs and the device manager, built
// in that order, with one checked lifecycle (created -> running -> ended).
import { Kvm, type VmFd } from './kvm/kvm.js';
import { KVM_PIT_SPEAKER_DUMMY } from './kvm/constants.js';
import { GuestMemory } from './memory/guest-memory.js';
import { IDENTITY_MAP_ADDR, MiB, TSS_ADDR, ramRanges } from './boot/layout.js';
import { BootError, loadLinuxPvh, planLinuxPvh, type BootPlan } from './boot/linux-loader.js';
import { MPTABLE_MAX_CPUS, writeMpTable } from './boot/mptable.js';
import { vcpuCpuid } from './cpu/cpuid.js';
import { setupCommonState, setupPvhEntry } from './cpu/boot-state.js';
import { DeviceManager } from './device-manager.js';
import type { SerialSink } from './devices/legacy/serial.js';
import { Vcpu, type VcpuEvent } from './vcpu.js';

export const MIN_MEMORY_MIB = 32;
export const MAX_MEMORY_MIB = 1024 * 1024;
export const MAX_CPUS = MPTABLE_MAX_CPUS;

/** Kernel parameters the VMM's device model relies on; user parameters follow. */
export const BASE_CMDLINE = 'console=ttyS0 8250.nr_uarts=1 reboot=k panic=-1';

export interface VmConfig {
  kernel: Uint8Array;
  initrd?: Uint8Array | undefined;
  /** Appended to BASE_CMDLINE. */
  cmdline: string;
  cpus: number;
  memoryMiB: number;
  console: SerialSink;
}

/** How a VM ended. */
export type VmExit =
  | { kind: 'reboot' }
  | { kind: 'poweroff' }
  | { kind: 'panic' }
  | { kind: 'crash'; detail: string }
  | { kind: 'stopped' };

type VmState = 'created' | 'running' | 'ended';

const PANIC_MARKER = 'Kernel panic - not syncing';

export class Vm {
  readonly memory: GuestMemory;
  readonly vcpus: Vcpu[];
  readonly devices: DeviceManager;
  /** performance.now() of each port-0x80 boot marker the guest wrote. */
  readonly bootMarkers: { code: number; at: number }[] = [];
  private readonly kvm: Kvm;
  private readonly vmFd: VmFd;
  private state: VmState = 'created';
  private stopReason: VmExit | undefined;
  private sawPanic = false;

  private constructor(kvm: Kvm, vmFd: VmFd, memory: GuestMemory, devices: DeviceManager, vcpus: Vcpu[]) {
    this.kvm = kvm;
    this.vmFd = vmFd;
    this.memory = memory;
    this.devices = devices;
    this.vcpus = vcpus;
  }

  /**
   * Checks a configuration without touching KVM: CPU and memory bounds, the
   * kernel image, and that kernel, command line and initrd fit. Throws a
   * BootError with a one-line reason.
   */
  static plan(config: VmConfig): BootPlan {
    if (!Number.isInteger(config.cpus) || config.cpus < 1 || config.cpus > MAX_CPUS) throw new BootError(`--cpus must be an integer from 1 to ${MAX_CPUS}`);
    if (!Number.isInteger(config.memoryMiB) || config.memoryMiB < MIN_MEMORY_MIB || config.memoryMiB > MAX_MEMORY_MIB) {
      throw new BootError(`memory must be an integer from ${MIN_MEMORY_MIB} to ${MAX_MEMORY_MIB} MiB`);
    }
    const cmdline = `${BASE_CMDLINE} ${config.cmdline}`.trim();
    return planLinuxPvh({ kernel: config.kernel, initrd: config.initrd, cmdline }, ramRanges(config.memoryMiB * MiB));
  }

  /** Builds a VM ready to boot `config.kernel`; throws a one-line error on bad input. */
  static create(config: VmConfig): Vm {
    const plan = Vm.plan(config);
    const undo: (() => void)[] = [];
    try {
      const kvm = Kvm.open();
      undo.push(() => kvm.close());
      kvm.requireCapabilities(['IRQCHIP', 'USER_MEMORY', 'SET_TSS_ADDR', 'SET_IDENTITY_MAP_ADDR', 'PIT2', 'IOEVENTFD', 'IRQFD', 'IMMEDIATE_EXIT', 'EXT_CPUID']);
      const vmFd = kvm.createVm();
      undo.push(() => vmFd.close());
      vmFd.setIdentityMapAddr(IDENTITY_MAP_ADDR);
      vmFd.setTssAddr(TSS_ADDR);
      vmFd.createIrqchip();
      vmFd.createPit2(KVM_PIT_SPEAKER_DUMMY);

      const memory = GuestMemory.allocate(ramRanges(config.memoryMiB * MiB));
      undo.push(() => memory.close());
      memory.regions.forEach((r, slot) => vmFd.setUserMemoryRegion(slot, r.base, r.buffer));

      let vm: Vm | undefined;
      const devices = new DeviceManager(vmFd, {
        console: { write: (bytes) => vm?.onConsole(bytes, config.console) },
        onReset: () => vm?.requestStop(vm.sawPanic ? { kind: 'panic' } : { kind: 'reboot' }),
        onBootMarker: (code) => vm?.bootMarkers.push({ code, at: performance.now() }),
      });
      undo.push(() => devices.close());

      const loaded = loadLinuxPvh(memory, plan);
      writeMpTable(memory, config.cpus);

      const supported = kvm.supportedCpuid();
      const vcpus: Vcpu[] = [];
      for (let i = 0; i < config.cpus; i++) {
        const fd = vmFd.createVcpu(i);
        undo.push(() => fd.close());
        fd.setCpuid(vcpuCpuid(supported, i, config.cpus));
        setupCommonState(fd);
        // Only the boot CPU gets an entry state; the others wait for INIT/SIPI from it.
        if (i === 0) setupPvhEntry(fd, memory, loaded.entry, loaded.startInfoAddr);
        vcpus.push(new Vcpu(fd, devices));
      }
      vm = new Vm(kvm, vmFd, memory, devices, vcpus);
      return vm;
    } catch (e) {
      for (const f of undo.reverse()) f();
      throw e;
    }
  }

  /** Runs the guest until it ends or `requestStop`; resolves with how it ended. Resources are released before it resolves. */
  async run(): Promise<VmExit> {
    if (this.state !== 'created') throw new Error(`cannot run a VM that is ${this.state}`);
    this.state = 'running';
    const runs = this.vcpus.map((v) => v.run().then((event) => {
      if (event) this.requestStop(this.exitFor(event));
    }));
    await Promise.all(runs);
    this.release();
    return this.stopReason ?? { kind: 'stopped' };
  }

  /** Stops every vCPU; the first reason given is the one reported. */
  requestStop(reason: VmExit = { kind: 'stopped' }): void {
    this.stopReason ??= reason;
    for (const v of this.vcpus) v.stop();
  }

  /** Exits handled by the VMM so far, all vCPUs. */
  get exitCount(): number {
    return this.vcpus.reduce((n, v) => n + v.exits, 0);
  }

  private exitFor(event: VcpuEvent): VmExit {
    switch (event.kind) {
      case 'reset': return this.sawPanic ? { kind: 'panic' } : { kind: 'reboot' };
      case 'poweroff': return { kind: 'poweroff' };
      case 'hlt': return { kind: 'crash', detail: 'vCPU halted with no interrupt controller to wake it' };
      case 'crash': return this.sawPanic ? { kind: 'panic' } : { kind: 'crash', detail: event.detail };
    }
  }

  private panicTail = '';

  /** Forwards console output, watching for the kernel's panic banner so a panic-reboot is reported as a panic. */
  private onConsole(bytes: Uint8Array, sink: SerialSink): void {
    sink.write(bytes);
    if (this.sawPanic) return;
    this.panicTail = (this.panicTail + String.fromCharCode(...bytes)).slice(-PANIC_MARKER.length);
    if (this.panicTail === PANIC_MARKER) this.sawPanic = true;
  }

  private release(): void {
    if (this.state === 'ended') return;
    this.state = 'ended';
    for (const v of this.vcpus) v.fd.close();
    this.devices.close();
    this.vmFd.close();
    this.memory.close();
    this.kvm.close();
  }
}
