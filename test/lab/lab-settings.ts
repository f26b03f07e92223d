/**
 * The lab's knobs: how QEMU emulates L1 and how L1's kernel and KVM are set
 * up. The defaults are the combination bench/lab-soak chose (see the table in
 * test/lab/README.md); the others exist for its A/B runs. Lab-only: nothing
 * here reaches the product.
 */

export interface LabSettings {
  /** QEMU's TCG: one host thread per vCPU (multi) or all vCPUs on one (single). */
  tcgThreads: 'multi' | 'single';
  /** L1's vCPUs. */
  cpus: number;
  /** L1's memory in MiB. */
  memoryMiB: number;
  /** Module parameters by module name (kvm, kvm_amd), given on L1's insmod lines. */
  moduleParams: Record<string, string[]>;
  /** L1's transparent huge pages (/sys/kernel/mm/transparent_hugepage/enabled); `never` also keeps L2's RAM on 4 KiB pages. */
  thp: 'always' | 'madvise' | 'never';
  /** L1's THP defrag mode. */
  thpDefrag: 'always' | 'defer' | 'defer+madvise' | 'madvise' | 'never';
  /** L1's proactive compaction (vm.compaction_proactiveness, 0 = off; Linux's default is 20). */
  compactionProactiveness: number;
  /** How long the lab agent may leave a heartbeat unanswered before L1 counts as hung. */
  heartbeatTimeoutMs: number;
  /** One empty VM held open in L1 for its lifetime (kvm-hold.c), so pods flip none of L1's static keys. */
  holdVm: boolean;
}

export const DEFAULT_LAB_SETTINGS: Readonly<LabSettings> = {
  tcgThreads: 'multi',
  cpus: 2,
  memoryMiB: 4096,
  moduleParams: {},
  thp: 'always',
  thpDefrag: 'madvise',
  compactionProactiveness: 20,
  heartbeatTimeoutMs: 60_000,
  holdVm: true,
};

/**
 * Parses "key=value,key=value" (the soak harness's --settings and
 * VMCTR_LAB_SETTINGS) over the defaults; module parameters are
 * `kvm_amd.npt=0`. Throws naming the first bad entry. Pure.
 */
export function parseLabSettings(text: string, base: Readonly<LabSettings> = DEFAULT_LAB_SETTINGS): LabSettings {
  const settings: LabSettings = { ...base, moduleParams: { ...base.moduleParams } };
  for (const entry of text.split(',').map((part) => part.trim()).filter(Boolean)) {
    const [key, value] = splitOnce(entry, '=');
    if (value === undefined) throw new Error(`lab setting "${entry}" is not key=value`);
    const module = /^(kvm|kvm_amd)\.(\w+)$/.exec(key);
    if (module) {
      if (!/^[\w-]+$/.test(value)) throw new Error(`lab setting "${entry}": bad module parameter value`);
      settings.moduleParams[module[1]!] = [...(settings.moduleParams[module[1]!] ?? []), `${module[2]}=${value}`];
      continue;
    }
    switch (key) {
      case 'tcg': settings.tcgThreads = oneOf(entry, value, ['multi', 'single'] as const); break;
      case 'cpus': settings.cpus = integer(entry, value, 1, 8); break;
      case 'memory': settings.memoryMiB = integer(entry, value, 1024, 16384); break;
      case 'thp': settings.thp = oneOf(entry, value, ['always', 'madvise', 'never'] as const); break;
      case 'thp_defrag': settings.thpDefrag = oneOf(entry, value, ['always', 'defer', 'defer+madvise', 'madvise', 'never'] as const); break;
      case 'compaction': settings.compactionProactiveness = integer(entry, value, 0, 100); break;
      case 'heartbeat': settings.heartbeatTimeoutMs = integer(entry, value, 5, 3600) * 1000; break;
      case 'hold_vm': settings.holdVm = integer(entry, value, 0, 1) === 1; break;
      default: throw new Error(`unknown lab setting "${key}" (tcg, cpus, memory, thp, thp_defrag, compaction, heartbeat, hold_vm, kvm.PARAM, kvm_amd.PARAM)`);
    }
  }
  return settings;
}

/** One line naming what differs from the defaults ("defaults" when nothing does). */
export function describeLabSettings(settings: Readonly<LabSettings>): string {
  const differences: string[] = [];
  const plain = ['tcgThreads', 'cpus', 'memoryMiB', 'thp', 'thpDefrag', 'compactionProactiveness', 'heartbeatTimeoutMs', 'holdVm'] as const;
  for (const key of plain) if (settings[key] !== DEFAULT_LAB_SETTINGS[key]) differences.push(`${key}=${settings[key]}`);
  for (const [module, params] of Object.entries(settings.moduleParams)) for (const param of params) differences.push(`${module}.${param}`);
  return differences.length ? differences.join(' ') : 'defaults';
}

/** L1's kernel command line entries that carry these settings to the lab's init. */
export function initParameters(settings: Readonly<LabSettings>): string[] {
  const params = [`vmctr.thp=${settings.thp}`, `vmctr.thp_defrag=${settings.thpDefrag}`, `vmctr.compaction=${settings.compactionProactiveness}`, `vmctr.hold_vm=${settings.holdVm ? 1 : 0}`];
  for (const [module, list] of Object.entries(settings.moduleParams)) if (list.length) params.push(`vmctr.mod_${module}=${list.join(',')}`);
  return params;
}

function splitOnce(text: string, separator: string): [string, string | undefined] {
  const at = text.indexOf(separator);
  return at < 0 ? [text, undefined] : [text.slice(0, at), text.slice(at + 1)];
}

function oneOf<T extends string>(entry: string, value: string, allowed: readonly T[]): T {
  if (!(allowed as readonly string[]).includes(value)) throw new Error(`lab setting "${entry}": expected one of ${allowed.join(', ')}`);
  return value as T;
}

function integer(entry: string, value: string, min: number, max: number): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < min || n > max) throw new Error(`lab setting "${entry}": expected an integer from ${min} to ${max}`);
  return n;
}
