// The VM: owns KVM, guest memory, the vCPUs and the device manager, built
// in that order, with one checked lifecycle (created -> running -> ended).
import { closeSync } from 'node:fs';
import { Kvm, type VmFd } from './kvm/kvm.js';
import { KVM_PIT_SPEAKER_DUMMY } from './kvm/constants.js';
import { GuestMemory } from './memory/guest-memory.js';
import { IDENTITY_MAP_ADDR, MiB, TSS_ADDR, ramRanges } from './boot/layout.js';
import { bootImage, type BootImage } from './boot/boot-image.js';
import { BootError, loadLinuxPvh, planLinuxPvh, type BootPlan, type LinuxBootSpec } from './boot/linux-loader.js';
import { MPTABLE_MAX_CPUS, writeMpTable } from './boot/mptable.js';
import { vcpuCpuid } from './cpu/cpuid.js';
import { setupCommonState, setupPvhEntry } from './cpu/boot-state.js';
import { DeviceManager } from './device-manager.js';
import type { SerialSink } from './devices/legacy/serial.js';
import { ConsoleDevice } from './devices/console/device.js';
import type { PortHandler } from './devices/console/port.js';
import { RngDevice } from './devices/rng/device.js';
import { BlockDevice } from './devices/block/device.js';
import { FileBackend } from './devices/block/backend.js';
import { NetDevice, parseMac } from './devices/net/device.js';
import { VhostNet } from './vhost/vhost-net.js';
import { FsDevice } from './devices/fs/device.js';
import { VhostUserFs } from './vhost/vhost-user-fs.js';
import { native } from './kvm/native.js';
import { NET_HEADER_SIZE } from './virtio/spec.js';
import { Vcpu, type VcpuEvent } from './vcpu.js';

export const MIN_MEMORY_MIB = 32;
export const MAX_MEMORY_MIB = 1024 * 1024;
export const MAX_CPUS = MPTABLE_MAX_CPUS;

/**
 * Kernel parameters the VMM's device model relies on; user parameters
 * follow. The console is virtio (hvc0: a buffer per notification). The
 * UART stays on as a boot console (keep_bootcon): before hvc0 registers it
 * is the console, after that it carries what the kernel says when hvc0 is
 * already gone (its halt message after device shutdown, a late panic),
 * which the VMM reads but does not print twice. Under `quiet` that is a
 * handful of lines. The early console needs no 8250 port driver, so with
 * hvc0 the driver gets no port: probing one is two dozen exits to the VMM.
 */
export const BASE_CMDLINE = 'reboot=k panic=-1';
const CONSOLE_PARAMETERS = { virtio: '8250.nr_uarts=0 earlycon=uart8250,io,0x3f8 keep_bootcon console=hvc0', serial: '8250.nr_uarts=1 console=ttyS0' } as const;

export interface VmConfig {
  /** An uncompressed vmlinux with a PVH entry point: its bytes, or an image (a file read straight into guest RAM). */
  kernel: Uint8Array | BootImage;
  initrd?: Uint8Array | BootImage | undefined;
  /** Appended to BASE_CMDLINE. */
  cmdline: string;
  cpus: number;
  memoryMiB: number;
  /** Guest console output, from whichever console the guest uses. */
  console: ConsoleSink;
  /** The guest's console device: virtio-console (default, fast) or the 16550 UART. */
  consoleDevice?: 'virtio' | 'serial';
  /** Extra virtio-console ports, seen by the guest as /dev/vportNpM with these names. */
  ports?: { name: string; handler: PortHandler }[];
  /** virtio-blk disks, in order: the guest sees /dev/vda, /dev/vdb, ... */
  disks?: DiskConfig[];
  /** A virtio-net interface (eth0 in the guest) on a tap, its packets moved by the kernel's vhost-net. */
  net?: NetConfig;
  /** A virtio-fs device served by a vhost-user back-end (virtiofsd) at `socket`; guest RAM is then shared memory it maps. */
  fs?: FsConfig;
  /** Reports a virtio device the guest broke (the VM goes on without it). */
  onDeviceError?: (device: string, message: string) => void;
}

/** Where the guest's console output goes. */
export interface ConsoleSink extends SerialSink {
  /**
   * After write() returned false: calls `resume` once the sink can take more.
   * Until then hvc0 takes no more output (the guest's writes wait in its
   * transmit queue); the UART cannot wait, and goes on.
   */
  onDrain?(resume: () => void): void;
}

export interface DiskConfig {
  /** A raw disk image file. */
  path: string;
  readOnly: boolean;
  /** What the guest reads as the disk's serial (VIRTIO_BLK_T_GET_ID), at most 20 bytes. */
  serial?: string;
}

export interface NetConfig {
  /** The tap to attach to (it must exist, or the VMM must be allowed to create it). */
  tap: string;
  /** The guest's MAC address, aa:bb:cc:dd:ee:ff. */
  mac: string;
}

export interface FsConfig {
  /** The back-end's vhost-user socket. */
  socket: string;
  /** What the guest mounts it by (mount -t virtiofs TAG DIR). */
  tag: string;
}

/** A tap name the kernel takes and a unicast MAC address, or a one-line BootError. */
function checkNet(net: NetConfig): Uint8Array {
  if (!/^[^\s/:]{1,15}$/.test(net.tap)) throw new BootError(`invalid tap name "${net.tap}": 1 to 15 characters, no spaces, '/' or ':'`);
  try {
    return parseMac(net.mac);
  } catch (e) {
    throw new BootError((e as Error).message);
  }
}

/** Opens the tap and vhost-net for `net`; a missing /dev/vhost-net or tap is a one-line BootError. */
function openNet(net: NetConfig, memory: GuestMemory): { backend: VhostNet; device: NetDevice } {
  const mac = checkNet(net);
  let tap: { fd: number };
  try {
    tap = native.tapOpen(net.tap, NET_HEADER_SIZE);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENODEV') throw new BootError(`tap ${net.tap} does not exist: create it with ip tuntap add ${net.tap} mode tap`);
    if (code === 'EINVAL') throw new BootError(`${net.tap} is not a tap device`);
    throw new BootError(`cannot attach to tap ${net.tap}: ${(e as Error).message}`);
  }
  let backend: VhostNet;
  try {
    backend = new VhostNet(memory, tap.fd);
  } catch (e) {
    closeSync(tap.fd);
    throw new BootError(`cannot use vhost-net (load the vhost_net module): ${(e as Error).message}`);
  }
  return { backend, device: new NetDevice(backend, mac) };
}

/** Connects the back-end of a virtio-fs device; one that is not there or does not answer is a one-line BootError. */
function openFs(fs: FsConfig, memory: GuestMemory): { backend: VhostUserFs; device: FsDevice } {
  let backend: VhostUserFs;
  try {
    backend = VhostUserFs.connect(fs.socket, memory);
  } catch (e) {
    throw new BootError(`cannot use the virtio-fs back-end at ${fs.socket}: ${(e as Error).message}`);
  }
  try {
    return { backend, device: new FsDevice(backend, fs.tag) };
  } catch (e) {
    backend.close();
    throw new BootError((e as Error).message);
  }
}

/** Opens a disk image; a missing or unreadable file is a one-line BootError. */
function openDisk(disk: DiskConfig): FileBackend {
  try {
    return FileBackend.open(disk.path, { readOnly: disk.readOnly });
  } catch (e) {
    throw new BootError(`cannot open disk ${disk.path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
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
/**
 * Without ACPI a guest cannot power the machine off: Linux prints one of
 * these and halts its CPUs for good. The VMM ends the VM instead of keeping
 * a halted guest alive. (A guest printing it from userspace only ends itself.)
 */
const HALT_MARKERS = ['reboot: Power down', 'reboot: System halted'];
const DEVICE_PARAMETERS_RESERVE = 160;
/**
 * Boot markers kept: a boot writes a handful (kernel started, userspace
 * started, a guest's own milestones), and the first ones are what boot
 * timings need; later writes are dropped rather than kept without bound.
 */
const MAX_BOOT_MARKERS = 64;

export class Vm {
  readonly memory: GuestMemory;
  readonly vcpus: Vcpu[];
  readonly devices: DeviceManager;
  readonly console: ConsoleDevice;
  /** performance.now() of each port-0x80 boot marker the guest wrote, the first MAX_BOOT_MARKERS. */
  readonly bootMarkers: { code: number; at: number }[] = [];
  private readonly kvm: Kvm;
  private readonly vmFd: VmFd;
  private state: VmState = 'created';
  private stopReason: VmExit | undefined;
  private sawPanic = false;
  /** requestStop is draining the queues: hvc0 no longer pauses for a full sink. */
  private stopping = false;

  private constructor(
    kvm: Kvm,
    vmFd: VmFd,
    memory: GuestMemory,
    devices: DeviceManager,
    console: ConsoleDevice,
    vcpus: Vcpu[],
    /** Disks and other backends, closed with the VM. */
    private readonly backends: { close(): void }[],
  ) {
    this.kvm = kvm;
    this.vmFd = vmFd;
    this.memory = memory;
    this.devices = devices;
    this.console = console;
    this.vcpus = vcpus;
  }

  /** The whole kernel command line for a configuration (device parameters are added at create). */
  private static cmdline(config: VmConfig, deviceParameters = ''): string {
    // The user's parameters before the console's: a `quiet` there keeps the
    // early console from replaying the whole boot log.
    return [BASE_CMDLINE, config.cmdline, CONSOLE_PARAMETERS[config.consoleDevice ?? 'virtio'], deviceParameters].filter(Boolean).join(' ');
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
    if (config.net) checkNet(config.net);
    // Device parameters are a few dozen bytes per device; reserve room for them in the length check.
    const cmdline = Vm.cmdline(config, 'x'.repeat(DEVICE_PARAMETERS_RESERVE));
    return planLinuxPvh(Vm.bootSpec(config, cmdline), ramRanges(config.memoryMiB * MiB));
  }

  private static bootSpec(config: VmConfig, cmdline: string): LinuxBootSpec {
    return { kernel: bootImage(config.kernel), initrd: config.initrd === undefined ? undefined : bootImage(config.initrd), cmdline };
  }

  /** Builds a VM ready to boot `config.kernel`; throws a one-line error on bad input. */
  static create(config: VmConfig): Vm {
    Vm.plan(config);
    const undo: (() => void)[] = [];
    try {
      const kvm = Kvm.open();
      undo.push(() => kvm.close());
      kvm.requireCapabilities(['IRQCHIP', 'USER_MEMORY', 'SET_TSS_ADDR', 'SET_IDENTITY_MAP_ADDR', 'PIT2', 'IOEVENTFD', 'IRQFD', 'IMMEDIATE_EXIT', 'EXT_CPUID', 'TSC_DEADLINE_TIMER']);
      const vmFd = kvm.createVm();
      undo.push(() => vmFd.close());
      vmFd.setIdentityMapAddr(IDENTITY_MAP_ADDR);
      vmFd.setTssAddr(TSS_ADDR);
      vmFd.createIrqchip();
      vmFd.createPit2(KVM_PIT_SPEAKER_DUMMY);

      // Private memory gets huge pages; a vhost-user back-end needs memory it can map.
      const memory = GuestMemory.allocate(ramRanges(config.memoryMiB * MiB), { shared: config.fs !== undefined });
      undo.push(() => memory.close());
      memory.regions.forEach((r, slot) => vmFd.setUserMemoryRegion(slot, r.base, r.buffer));

      let vm: Vm | undefined;
      const virtioConsole = (config.consoleDevice ?? 'virtio') === 'virtio';
      // Once hvc0 speaks, the UART only repeats it: watch it, don't print it.
      const uartSink = { write: (bytes: Uint8Array) => vm?.onConsole(bytes, config.console, !(virtioConsole && vm.hvcSpoke)) };
      const devices = new DeviceManager(vmFd, memory, {
        console: uartSink,
        onReset: () => vm?.requestStop({ kind: 'reboot' }),
        onBootMarker: (code) => {
          if (vm && vm.bootMarkers.length < MAX_BOOT_MARKERS) vm.bootMarkers.push({ code, at: performance.now() });
        },
        onDeviceError: config.onDeviceError ?? (() => {}),
      });
      undo.push(() => devices.close());
      // Disks first: Linux names virtio-blk disks in probe order, so disk 0 is always /dev/vda.
      const disks = (config.disks ?? []).map((disk, i) => {
        const backend = openDisk(disk);
        undo.push(() => backend.close());
        devices.addVirtio(`virtio-blk (${disk.path})`, new BlockDevice(backend, disk.serial ?? `vmctr-disk${i}`));
        return backend;
      });
      const console: ConsoleDevice = new ConsoleDevice([{ console: true, handler: { output: (bytes): boolean => vm?.hvcOutput(bytes, config.console, console) ?? true } }]);
      devices.addVirtio('virtio-console', console);
      if (config.ports?.length) devices.addVirtio('virtio-console (ports)', new ConsoleDevice(config.ports));
      devices.addVirtio('virtio-rng', new RngDevice());
      const backends: { close(): void }[] = [...disks];
      if (config.net) {
        const net = openNet(config.net, memory);
        undo.push(() => net.backend.close());
        devices.addVirtio(`virtio-net (${config.net.tap})`, net.device);
        backends.push(net.backend);
      }
      if (config.fs) {
        const fs = openFs(config.fs, memory);
        undo.push(() => fs.backend.close());
        devices.addVirtio(`virtio-fs (${config.fs.tag})`, fs.device);
        backends.push(fs.backend);
      }

      const cmdline = Vm.cmdline(config, devices.kernelParameters);
      const loaded = loadLinuxPvh(memory, planLinuxPvh(Vm.bootSpec(config, cmdline), ramRanges(config.memoryMiB * MiB)));
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
      vm = new Vm(kvm, vmFd, memory, devices, console, vcpus, backends);
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

  /**
   * Stops every vCPU; the first reason given is the one reported. A guest
   * reset after the kernel printed its panic banner is a panic: the queues
   * are drained first so the banner is not still in flight.
   */
  requestStop(reason: VmExit = { kind: 'stopped' }): void {
    if (this.stopReason === undefined && this.state === 'running') {
      // The last output goes to the sink even if it is full: the guest cannot wait for a drain any more.
      this.stopping = true;
      this.console.resume(0);
      this.devices.drain();
      this.stopReason = this.sawPanic && (reason.kind === 'reboot' || reason.kind === 'crash') ? { kind: 'panic' } : reason;
    }
    this.stopReason ??= reason;
    for (const v of this.vcpus) v.stop();
  }

  /** Exits handled by the VMM so far, all vCPUs. */
  get exitCount(): number {
    return this.vcpus.reduce((n, v) => n + v.exits, 0);
  }

  private exitFor(event: VcpuEvent): VmExit {
    switch (event.kind) {
      case 'reset': return { kind: 'reboot' };
      case 'poweroff': return { kind: 'poweroff' };
      case 'hlt': return { kind: 'crash', detail: 'vCPU halted with no interrupt controller to wake it' };
      case 'crash': return { kind: 'crash', detail: event.state ? `${event.detail}, ${event.state}` : event.detail };
    }
  }

  private consoleTail = '';
  /** The virtio console has produced output (so the UART's copy is not printed). */
  private hvcSpoke = false;

  /**
   * hvc0 output: printed, and watched like the UART's. False pauses hvc0
   * (the sink is full) until the sink drains.
   */
  private hvcOutput(bytes: Uint8Array, sink: ConsoleSink, device: ConsoleDevice): boolean {
    this.hvcSpoke = true;
    if (this.onConsole(bytes, sink, true) || !sink.onDrain || this.stopping) return true;
    sink.onDrain(() => device.resume(0));
    return false;
  }

  /**
   * Forwards console output, watching for the kernel's panic banner (so a
   * panic-reboot is reported as a panic) and its halt message (poweroff).
   * Returns whether the sink can take more.
   */
  private onConsole(bytes: Uint8Array, sink: SerialSink, print: boolean): boolean {
    const more = !print || sink.write(bytes) !== false;
    // Markers may arrive a byte at a time (UART) or inside a larger buffer (virtio).
    const text = this.consoleTail + Buffer.from(bytes).toString('latin1');
    if (!this.sawPanic && text.includes(PANIC_MARKER)) this.sawPanic = true;
    // Deferred: this runs inside a device's queue processing, which stopping would re-enter.
    if (!this.sawPanic && HALT_MARKERS.some((m) => text.includes(m))) queueMicrotask(() => this.requestStop({ kind: 'poweroff' }));
    this.consoleTail = text.slice(-(PANIC_MARKER.length - 1));
    return more;
  }

  private release(): void {
    if (this.state === 'ended') return;
    this.state = 'ended';
    for (const v of this.vcpus) v.fd.close();
    this.devices.close();
    for (const b of this.backends) b.close();
    this.vmFd.close();
    this.memory.close();
    this.kvm.close();
  }
}
