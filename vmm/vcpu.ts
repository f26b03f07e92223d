// A vCPU: its KVM_RUN thread (in the addon) and the routing of its exits
// to the port-I/O and MMIO buses, on the JS thread.
import type { Bus } from './bus.js';
import type { VcpuFd } from './kvm/kvm.js';
import { KvmSystemEvent } from './kvm/constants.js';
import { native, type VcpuThreadHandle } from './kvm/native.js';
import { decodeExit, type VcpuExit } from './kvm/vcpu-exit.js';

/** Why a vCPU stopped running by itself. */
export type VcpuEvent =
  | { kind: 'hlt' }
  | { kind: 'reset' }
  | { kind: 'poweroff' }
  /** `state`: the vCPU's registers, for a crash the VMM can describe (a triple fault). */
  | { kind: 'crash'; detail: string; state?: string };

const CONTINUE = 0;
const STOP = 1;

export class Vcpu {
  readonly fd: VcpuFd;
  /** Exits handled in the VMM (not counting those KVM handles in the kernel). */
  exits = 0;
  private readonly pio: Bus;
  private readonly mmio: Bus;
  private readonly runView: DataView;
  private readonly runBytes: Uint8Array;
  private thread: VcpuThreadHandle | undefined;
  private event: VcpuEvent | undefined;

  constructor(fd: VcpuFd, buses: { pio: Bus; mmio: Bus }) {
    this.fd = fd;
    this.pio = buses.pio;
    this.mmio = buses.mmio;
    this.runView = new DataView(fd.run);
    this.runBytes = new Uint8Array(fd.run);
  }

  /**
   * Runs until the guest stops this vCPU (HLT without an in-kernel APIC,
   * reset, shutdown, an error) or `stop()`; resolves with the guest's
   * reason, or undefined when stopped from outside.
   */
  run(): Promise<VcpuEvent | undefined> {
    if (this.thread) throw new Error(`vCPU ${this.fd.id} is already running`);
    return new Promise((resolve) => {
      this.thread = new native.VcpuThread(this.fd.id, this.fd.fd, this.fd.run, () => this.onExit(), (errno) => {
        if (errno !== 0 && !this.event) this.event = { kind: 'crash', detail: `KVM_RUN failed with errno ${errno}` };
        resolve(this.event);
      });
    });
  }

  stop(): void {
    this.thread?.stop();
  }

  /** Where the guest was when it triple-faulted, for the console log (KVM_RUN has returned: the registers can be read). */
  private stateAtShutdown(): string {
    try {
      const r = this.fd.getRegs();
      const s = this.fd.getSregs();
      const hex = (v: bigint) => `0x${v.toString(16)}`;
      return `vCPU ${this.fd.id}: rip=${hex(r.rip)} rsp=${hex(r.rsp)} rflags=${hex(r.rflags)} cs=${hex(BigInt(s.cs.selector))} cr0=${hex(s.cr0)} cr2=${hex(s.cr2)} cr3=${hex(s.cr3)} cr4=${hex(s.cr4)} efer=${hex(s.efer)}`;
    } catch (e) {
      return `vCPU ${this.fd.id}: registers unreadable (${(e as Error).message})`;
    }
  }

  private onExit(): number {
    this.exits++;
    let exit: VcpuExit;
    try {
      exit = decodeExit(this.runView, this.runBytes);
      return this.handle(exit);
    } catch (e) {
      // A device bug must not take the process down: stop this guest instead.
      this.event = { kind: 'crash', detail: `VMM error handling an exit: ${(e as Error).message}` };
      return STOP;
    }
  }

  private handle(exit: VcpuExit): number {
    switch (exit.kind) {
      case 'io-out':
      case 'io-in':
        for (let i = 0; i < exit.count; i++) {
          const item = exit.data.subarray(i * exit.size, (i + 1) * exit.size);
          if (exit.kind === 'io-out') this.pio.write(exit.port, item);
          else this.pio.read(exit.port, item);
        }
        return CONTINUE;
      case 'mmio-write':
        this.mmio.write(exit.addr, exit.data);
        return CONTINUE;
      case 'mmio-read':
        this.mmio.read(exit.addr, exit.data);
        return CONTINUE;
      case 'intr':
        return CONTINUE;
      case 'hlt':
        this.event = { kind: 'hlt' };
        return STOP;
      case 'shutdown':
        this.event = { kind: 'crash', detail: 'triple fault (the guest shut the CPU down)', state: this.stateAtShutdown() };
        return STOP;
      case 'system-event':
        this.event = exit.type === KvmSystemEvent.RESET ? { kind: 'reset' }
          : exit.type === KvmSystemEvent.SHUTDOWN ? { kind: 'poweroff' }
          : { kind: 'crash', detail: `system event ${exit.type}` };
        return STOP;
      case 'internal-error':
        this.event = { kind: 'crash', detail: `KVM internal error, suberror ${exit.suberror} [${exit.data.map((d) => '0x' + d.toString(16)).join(' ')}]` };
        return STOP;
      case 'fail-entry':
        this.event = { kind: 'crash', detail: `VM entry failed, hardware reason 0x${exit.reason.toString(16)}` };
        return STOP;
      case 'unknown':
        this.event = { kind: 'crash', detail: `unknown exit, hardware reason 0x${exit.hardwareReason.toString(16)}` };
        return STOP;
      case 'unsupported':
        this.event = { kind: 'crash', detail: `unsupported exit reason ${exit.reason}` };
        return STOP;
    }
  }
}
