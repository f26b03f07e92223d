// Tiny hand-written guests for testing the KVM layer on any host with
// /dev/kvm (PVM included): machine code in guest memory, exits recorded.
import { Bus, type BusDevice } from '../../vmm/bus.js';
import { Kvm, type VcpuFd, type VmFd } from '../../vmm/kvm/kvm.js';
import { GuestMemory } from '../../vmm/memory/guest-memory.js';
import { Vcpu } from '../../vmm/vcpu.js';

export const CODE_ADDR = 0x1000;
export const TINY_MEMORY = 0x10000 * 4; // 256 KiB at guest address 0

export interface Access { bus: 'pio' | 'mmio'; op: 'read' | 'write'; addr: number; bytes: number[] }

/** A device that records every access and answers reads from a table. */
export class RecordingDevice implements BusDevice {
  readonly accesses: Access[] = [];
  private readonly bus: 'pio' | 'mmio';
  private readonly base: number;
  private readonly answers: Map<number, number[]>;

  constructor(bus: 'pio' | 'mmio', base: number, answers: Record<number, number[]> = {}) {
    this.bus = bus;
    this.base = base;
    this.answers = new Map(Object.entries(answers).map(([k, v]) => [Number(k), v]));
  }

  read(offset: number, data: Uint8Array): void {
    const addr = this.base + offset;
    data.set((this.answers.get(addr) ?? []).slice(0, data.byteLength));
    this.accesses.push({ bus: this.bus, op: 'read', addr, bytes: [...data] });
  }

  write(offset: number, data: Uint8Array): void {
    this.accesses.push({ bus: this.bus, op: 'write', addr: this.base + offset, bytes: [...data] });
  }
}

export class TinyGuest {
  readonly kvm: Kvm;
  readonly vm: VmFd;
  readonly memory: GuestMemory;
  readonly vcpuFd: VcpuFd;
  readonly vcpu: Vcpu;
  readonly pio = new Bus('pio');
  readonly mmio = new Bus('mmio');

  constructor(opts: { irqchip?: boolean } = {}) {
    this.kvm = Kvm.open();
    this.vm = this.kvm.createVm();
    if (opts.irqchip) {
      this.vm.setTssAddr(0xfffbd000);
      this.vm.createIrqchip();
    }
    this.memory = GuestMemory.allocate([{ base: 0, size: TINY_MEMORY }]);
    this.vm.setUserMemoryRegion(0, 0, this.memory.regions[0]!.buffer);
    this.vcpuFd = this.vm.createVcpu(0);
    this.vcpu = new Vcpu(this.vcpuFd, { pio: this.pio, mmio: this.mmio });
  }

  /** Real mode, CS:IP = 0:CODE_ADDR, with `code` loaded there. */
  loadRealMode(code: number[]): void {
    this.memory.write(CODE_ADDR, Uint8Array.from(code));
    const sregs = this.vcpuFd.getSregs();
    sregs.cs = { ...sregs.cs, base: 0n, selector: 0 };
    this.vcpuFd.setSregs(sregs);
    const regs = this.vcpuFd.getRegs();
    regs.rip = BigInt(CODE_ADDR);
    regs.rflags = 2n;
    this.vcpuFd.setRegs(regs);
  }

  /**
   * 64-bit long mode with the first 2 MiB identity-mapped by one large page:
   * PML4 at 0x9000, PDPT at 0xa000, PD at 0xb000.
   */
  loadLongMode(code: number[]): void {
    this.memory.write(CODE_ADDR, Uint8Array.from(code));
    const PML4 = 0x9000, PDPT = 0xa000, PD = 0xb000;
    this.memory.writeU64(PML4, BigInt(PDPT) | 3n); // present, writable
    this.memory.writeU64(PDPT, BigInt(PD) | 3n);
    this.memory.writeU64(PD, 0x83n); // present, writable, 2 MiB page at 0
    const sregs = this.vcpuFd.getSregs();
    const seg = { base: 0n, limit: 0xffffffff, present: 1, dpl: 0, s: 1, avl: 0, unusable: 0, g: 1 };
    sregs.cs = { ...seg, selector: 8, type: 11, db: 0, l: 1 };
    sregs.ds = sregs.es = sregs.fs = sregs.gs = sregs.ss = { ...seg, selector: 16, type: 3, db: 1, l: 0 };
    sregs.cr3 = BigInt(PML4);
    sregs.cr4 = 0x20n; // PAE
    sregs.cr0 = 0x80000011n; // PG | ET | PE
    sregs.efer = 0x500n; // LMA | LME
    this.vcpuFd.setSregs(sregs);
    const regs = this.vcpuFd.getRegs();
    regs.rip = BigInt(CODE_ADDR);
    regs.rflags = 2n;
    regs.rsp = 0x8000n;
    this.vcpuFd.setRegs(regs);
  }

  /** Runs until the vCPU stops by itself, or fails after `timeoutMs`. */
  async run(timeoutMs = 20000): Promise<Awaited<ReturnType<Vcpu['run']>>> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        this.vcpu.stop();
        reject(new Error(`tiny guest did not stop within ${timeoutMs} ms`));
      }, timeoutMs);
    });
    try {
      return await Promise.race([this.vcpu.run(), timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  close(): void {
    this.vcpuFd.close();
    this.vm.close();
    this.memory.close();
    this.kvm.close();
  }
}
