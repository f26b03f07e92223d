import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

/** kvm_regs: general-purpose registers. */
export interface Regs {
  rax: bigint; rbx: bigint; rcx: bigint; rdx: bigint; rsi: bigint; rdi: bigint; rsp: bigint; rbp: bigint;
  r8: bigint; r9: bigint; r10: bigint; r11: bigint; r12: bigint; r13: bigint; r14: bigint; r15: bigint;
  rip: bigint; rflags: bigint;
}

/** kvm_segment: a segment register with its hidden descriptor cache. */
export interface Segment {
  base: bigint; limit: number; selector: number; type: number; present: number; dpl: number;
  db: number; s: number; l: number; g: number; avl: number; unusable: number;
}

export interface DescriptorTable { base: bigint; limit: number }

/** kvm_sregs without the pending-interrupt bitmap (left as KVM has it). */
export interface Sregs {
  cs: Segment; ds: Segment; es: Segment; fs: Segment; gs: Segment; ss: Segment; tr: Segment; ldt: Segment;
  gdt: DescriptorTable; idt: DescriptorTable;
  cr0: bigint; cr2: bigint; cr3: bigint; cr4: bigint; cr8: bigint; efer: bigint; apic_base: bigint;
}

export interface CpuidEntry { function: number; index: number; flags: number; eax: number; ebx: number; ecx: number; edx: number }
export interface MsrEntry { index: number; data: bigint }

export interface VcpuThreadHandle { stop(): void }
export interface EventFdWatcherHandle { close(): void }

/** The addon's exports: one function per syscall (see native/src). */
export interface NativeAddon {
  kvmGetApiVersion(kvmFd: number): number;
  kvmCheckExtension(fd: number, cap: number): number;
  kvmCreateVm(kvmFd: number): number;
  kvmGetVcpuMmapSize(kvmFd: number): number;
  kvmGetSupportedCpuid(kvmFd: number): CpuidEntry[];
  vmCreateIrqchip(vmFd: number): void;
  vmCreatePit2(vmFd: number, flags: number): void;
  vmSetTssAddr(vmFd: number, addr: number): void;
  vmSetIdentityMapAddr(vmFd: number, addr: bigint): void;
  vmSetUserMemoryRegion(vmFd: number, slot: number, flags: number, guestPhysAddr: bigint, memory: ArrayBuffer | null): void;
  vmCreateVcpu(vmFd: number, id: number): number;
  vmIrqLine(vmFd: number, irq: number, level: number): void;
  vmIrqfd(vmFd: number, req: { fd: number; gsi: number; deassign?: boolean }): void;
  vmIoeventfd(vmFd: number, req: { fd: number; addr: bigint; len: number; datamatch?: bigint; pio?: boolean; deassign?: boolean }): void;
  vcpuGetRegs(vcpuFd: number): Regs;
  vcpuSetRegs(vcpuFd: number, regs: Regs): void;
  vcpuGetSregs(vcpuFd: number): Sregs;
  vcpuSetSregs(vcpuFd: number, sregs: Sregs): void;
  vcpuGetFpu(vcpuFd: number): { fcw: number; mxcsr: number };
  vcpuSetFpu(vcpuFd: number, fpu: { fcw: number; mxcsr: number }): void;
  vcpuSetCpuid2(vcpuFd: number, entries: CpuidEntry[]): void;
  vcpuSetMsrs(vcpuFd: number, entries: MsrEntry[]): number;
  vcpuGetMsrs(vcpuFd: number, indices: number[]): MsrEntry[];
  vcpuGetLapic(vcpuFd: number): Uint8Array;
  vcpuSetLapic(vcpuFd: number, state: Uint8Array): void;
  vcpuMapRun(vcpuFd: number, size: number): ArrayBuffer;
  /** Private anonymous memory on huge pages (fd -1), or a memfd mapped shared. */
  createGuestMemory(size: number, name?: string, shared?: boolean): { fd: number; buffer: ArrayBuffer };
  createEventFd(): number;
  writeEventFd(fd: number, value?: number): void;
  /** Fills `bytes` from the host kernel's CSPRNG (getrandom(2)). */
  fillRandom(bytes: Uint8Array): void;
  /** flock(2), with LOCK_NB unless `wait`: false when the lock is held elsewhere. */
  flock(fd: number, operation: 'exclusive' | 'shared' | 'unlock', wait: boolean): boolean;
  /** pidfd_open(2): a close-on-exec pidfd, or -1 when there is no such process. */
  pidfdOpen(pid: number): number;
  /** pidfd_send_signal(2): false when the process has exited. */
  pidfdSendSignal(pidfd: number, signal: number): boolean;
  /** A non-blocking, close-on-exec Unix datagram socket connected to `path`, or -1 when nothing listens there. */
  unixDatagramConnect(path: string): number;
  /** send(2) of one datagram, never blocking: false when the receiver's queue is full and it was not sent. */
  sendDatagram(fd: number, data: Uint8Array): boolean;
  /** A non-blocking, close-on-exec Unix datagram socket bound to `path`. */
  unixDatagramBind(path: string): number;
  /** recv(2) of the next datagram, at most `maxBytes`, never blocking: null when none is queued. */
  recvDatagram(fd: number, maxBytes: number): Buffer | null;
  /** A blocking, close-on-exec Unix stream socket connected to `path`; a send or receive waiting longer than `timeoutMs` fails with EAGAIN. */
  unixStreamConnect(path: string, timeoutMs: number): number;
  /** sendmsg(2) of all of `data` with `fds` (at most 16) as one SCM_RIGHTS message; a short send is an error. */
  sendWithFds(fd: number, data: Uint8Array, fds: readonly number[]): void;
  /** One recvmsg(2) of at most `maxBytes`: received fds are close-on-exec, those beyond `maxFds` closed; EOF gives no bytes. */
  recvWithFds(fd: number, maxBytes: number, maxFds: number): { bytes: Buffer; fds: number[] };
  /** Attaches to the existing tap `name` (ENODEV if none; EINVAL if not a tap), with no packet info and a virtio-net header of `vnetHeaderSize` bytes. */
  tapOpen(name: string, vnetHeaderSize: number): { fd: number; name: string };
  /** TUNSETOFFLOAD: the TUN_F_* offloads the tap's reader takes. */
  tapSetOffload(fd: number, flags: number): void;
  /** /dev/vhost-net, owned by this process (VHOST_SET_OWNER). */
  vhostNetOpen(): number;
  vhostGetFeatures(fd: number): bigint;
  vhostSetFeatures(fd: number, features: bigint): void;
  /** Guest RAM for the vhost worker: each region's host address is its ArrayBuffer's. */
  vhostSetMemTable(fd: number, regions: Array<{ guestPhysAddr: bigint; memory: ArrayBuffer }>): void;
  vhostSetVringNum(fd: number, index: number, num: number): void;
  vhostSetVringBase(fd: number, index: number, base: number): void;
  /** The ring parts' host addresses. */
  vhostSetVringAddr(fd: number, index: number, addr: { desc: bigint; avail: bigint; used: bigint }): void;
  vhostSetVringKick(fd: number, index: number, eventFd: number): void;
  vhostSetVringCall(fd: number, index: number, eventFd: number): void;
  /** The tap a queue moves packets to and from; -1 detaches it. */
  vhostNetSetBackend(fd: number, index: number, tapFd: number): void;
  /** The host address of the mapping behind `memory`. */
  bufferAddress(memory: ArrayBuffer): bigint;
  VcpuThread: new (index: number, vcpuFd: number, run: ArrayBuffer, onExit: (reason: number) => number, onEnd: (errno: number) => void) => VcpuThreadHandle;
  EventFdWatcher: new (fd: number, onReadable: (count: number) => void) => EventFdWatcherHandle;
}

function addonPath(): string {
  // dist/vmm/kvm/native.js and vmm/kvm/native.ts both sit below the repo root.
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    const candidate = join(dir, 'native', 'build', 'Release', 'vmctr.node');
    if (existsSync(candidate)) return candidate;
    dir = dirname(dir);
  }
  throw new Error('vmctr native addon is not built: run "npm run build:native" (or setup/install.sh)');
}

export const native: NativeAddon = createRequire(import.meta.url)(addonPath()) as NativeAddon;
