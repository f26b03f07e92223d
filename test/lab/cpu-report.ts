/**
 * Where a hung L1's CPUs were: QEMU's `info registers -a` parsed per CPU and
 * each RIP named through the kernels that could be running there: L1's
 * (its kallsyms, core and modules) and the L2 guest kernel's (nm of its
 * vmlinux: no KASLR, no modules).
 */

export interface CpuState {
  cpu: number;
  rip: bigint;
  cpl: number;
  halted: boolean;
  cr3: bigint;
}

/** Parses `info registers -a` (QEMU target/i386 cpu-dump.c). Pure. */
export function parseRegisters(text: string): CpuState[] {
  const cpus: CpuState[] = [];
  for (const block of text.split(/^CPU#/m).slice(1)) {
    const cpu = Number.parseInt(block, 10);
    const rip = /RIP=([0-9a-f]+)/.exec(block);
    const flags = /CPL=(\d) II=\d A20=\d SMM=\d HLT=(\d)/.exec(block);
    const cr3 = /CR3=([0-9a-f]+)/.exec(block);
    if (Number.isNaN(cpu) || !rip || !flags || !cr3) continue;
    cpus.push({ cpu, rip: BigInt(`0x${rip[1]}`), cpl: Number(flags[1]), halted: flags[2] === '1', cr3: BigInt(`0x${cr3[1]}`) });
  }
  return cpus;
}

interface Symbol {
  address: bigint;
  name: string;
}

/** Text symbols of one kernel image (or its modules), sorted, with the range they cover. */
export class SymbolTable {
  private readonly symbols: Symbol[];

  private constructor(symbols: Symbol[], private readonly end: bigint) {
    this.symbols = symbols;
  }

  /**
   * From nm or /proc/kallsyms lines ("ADDR TYPE NAME [module]"), text
   * symbols only. The table ends at _etext for an image; for modules at the
   * last symbol plus `slack`.
   */
  static parse(map: string, slack = 0x10000n): SymbolTable {
    const symbols: Symbol[] = [];
    let etext: bigint | undefined;
    for (const line of map.split('\n')) {
      const [address, type, name, module] = line.trim().split(/\s+/);
      if (!address || !type || !name || !/^[0-9a-f]+$/i.test(address)) continue;
      const at = BigInt(`0x${address}`);
      if (name === '_etext') etext = at;
      if (!/^[tTwW]$/.test(type) || at === 0n) continue;
      symbols.push({ address: at, name: module ? `${module.replace(/^\[|\]$/g, '')}:${name}` : name });
    }
    symbols.sort((a, b) => (a.address < b.address ? -1 : a.address > b.address ? 1 : 0));
    const last = symbols.at(-1)?.address ?? 0n;
    return new SymbolTable(symbols, etext ?? last + slack);
  }

  /** "name+0xoff" when `address` lies in this table's text, else undefined. */
  name(address: bigint): string | undefined {
    const first = this.symbols[0];
    if (!first || address < first.address || address >= this.end) return undefined;
    let lo = 0;
    let hi = this.symbols.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.symbols[mid]!.address <= address) lo = mid;
      else hi = mid - 1;
    }
    const symbol = this.symbols[lo]!;
    return `${symbol.name}+0x${(address - symbol.address).toString(16)}`;
  }
}

export interface Kernels {
  /** L1's, from its kallsyms: known once its agent sent them after the hello. */
  l1?: SymbolTable;
  l1Modules?: SymbolTable;
  l2?: SymbolTable;
}

/** One line per CPU: its RIP, and in which kernel and function that is. Pure. */
export function describeCpus(cpus: CpuState[], kernels: Kernels): string[] {
  return cpus.map((state) => {
    const head = `CPU#${state.cpu} RIP=${state.rip.toString(16).padStart(16, '0')} CPL=${state.cpl}${state.halted ? ' halted' : ''}`;
    if (state.cpl === 3) return `${head}: user space (an L1 process, or L2's user space)`;
    const where = [
      ['L1 kernel', kernels.l1?.name(state.rip)],
      ['L1 module', kernels.l1Modules?.name(state.rip)],
      ['L2 guest kernel', kernels.l2?.name(state.rip)],
    ].filter((entry): entry is [string, string] => entry[1] !== undefined);
    if (where.length === 0) return `${head}: in no known kernel text (L2 user space or firmware)`;
    return `${head}: ${where.map(([kernel, name]) => `${kernel} ${name}`).join(' or ')}`;
  });
}
