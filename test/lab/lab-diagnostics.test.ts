import test from 'ava';
import { describeCpus, parseRegisters, SymbolTable } from './cpu-report.js';
import { classifyConsoleLine, type ConsoleFaultKind } from './l1-console.js';
import { DEFAULT_LAB_SETTINGS, describeLabSettings, initParameters, parseLabSettings } from './lab-settings.js';

// The pure parts of the lab's self-diagnosis: what a console line means,
// where QEMU's registers put each CPU, and the settings the soak varies.

test('console lines: each watchdog report is its fault kind, ordinary lines are nothing', (t) => {
  const cases: Array<[string, ConsoleFaultKind | undefined]> = [
    ['[  212.411392] watchdog: BUG: soft lockup - CPU#1 stuck for 26s! [node:1234]', 'soft-lockup'],
    ['[  300.000001] rcu: INFO: rcu_preempt detected stalls on CPUs/tasks:', 'rcu-stall'],
    ['[  300.000001] rcu: INFO: rcu_sched self-detected stall on CPU', 'rcu-stall'],
    ['[  363.101010] INFO: task khugepaged:52 blocked for more than 120 seconds.', 'hung-task'],
    ['[   99.000000] BUG: unable to handle page fault for address: ffffc90000000000', 'oops'],
    ['[   99.000000] Kernel panic - not syncing: softlockup: hung tasks', 'panic'],
    ['lab-init: insmod kvm_amd npt=0 failed', 'lab-init'],
    ['lab-init: agent exited with status 0', undefined],
    ['[    5.671612] kvm: Nested Virtualization enabled', undefined],
    ['[    1.000000] Run /init as init process\r', undefined],
  ];
  for (const [line, kind] of cases) t.is(classifyConsoleLine(line)?.kind, kind, line);
});

const REGISTERS = `CPU#0
RAX=0000000000000000 RBX=0000000000000000 RCX=0000000000000001 RDX=0000000000000000
RIP=ffffffff81a592eb RFL=00000246 [---Z-P-] CPL=0 II=0 A20=1 SMM=0 HLT=1
CR0=80050033 CR2=00007f86f35d0470 CR3=000000010096c000 CR4=003506e0
EFER=0000000000000d01
CPU#1
RIP=ffffffffc0a01234 RFL=00000202 [-------] CPL=0 II=0 A20=1 SMM=0 HLT=0
CR0=80050033 CR2=0000000000000000 CR3=0000000101234000 CR4=003506e0
CPU#2
RIP=00007f0012345678 RFL=00000202 [-------] CPL=3 II=0 A20=1 SMM=0 HLT=0
CR0=80050033 CR2=0000000000000000 CR3=0000000101234000 CR4=003506e0
CPU#3
RIP=ffffffff81200010 RFL=00000202 [-------] CPL=0 II=0 A20=1 SMM=0 HLT=0
CR0=80050033 CR2=0000000000000000 CR3=0000000001000000 CR4=003506e0
`;

test('info registers -a: every CPU, named in L1, an L1 module, user space, or both kernels', (t) => {
  const cpus = parseRegisters(REGISTERS);
  t.deepEqual(cpus.map((cpu) => [cpu.cpu, cpu.cpl, cpu.halted]), [[0, 0, true], [1, 0, false], [2, 3, false], [3, 0, false]]);
  t.is(cpus[0]!.rip, 0xffffffff81a592ebn);
  t.is(cpus[1]!.cr3, 0x101234000n);
  const l1 = SymbolTable.parse('ffffffff81000000 T _text\nffffffff81a592e0 t native_safe_halt\nffffffff81a59300 T default_idle\nffffffff81e00000 T _etext');
  const l1Modules = SymbolTable.parse('ffffffffc0a01000 t svm_vcpu_run\t[kvm_amd]\nffffffffc0a02000 t svm_vcpu_load\t[kvm_amd]');
  const l2 = SymbolTable.parse('ffffffff81000000 T _text\nffffffff81200000 T do_idle\nffffffff81400000 T _etext');
  const lines = describeCpus(cpus, { l1, l1Modules, l2 });
  t.regex(lines[0]!, /^CPU#0 RIP=ffffffff81a592eb CPL=0 halted: L1 kernel native_safe_halt\+0xb$/);
  t.regex(lines[1]!, /L1 module kvm_amd:svm_vcpu_run\+0x234$/);
  t.regex(lines[2]!, /user space/);
  t.regex(lines[3]!, /L1 kernel _text\+0x200010 or L2 guest kernel do_idle\+0x10$/);
  // Nothing known yet (L1's symbols not received): still a line per CPU.
  t.regex(describeCpus(cpus, {})[0]!, /in no known kernel text/);
});

test('lab settings: parsed over the defaults, module parameters collected, bad entries named', (t) => {
  const settings = parseLabSettings('tcg=single, kvm_amd.npt=0,kvm.tdp_mmu=0,kvm.nx_huge_pages=never,thp=never,heartbeat=30');
  t.is(settings.tcgThreads, 'single');
  t.deepEqual(settings.moduleParams, { kvm_amd: ['npt=0'], kvm: ['tdp_mmu=0', 'nx_huge_pages=never'] });
  t.is(settings.heartbeatTimeoutMs, 30_000);
  t.deepEqual(initParameters(settings).filter((p) => p.startsWith('vmctr.mod_')), ['vmctr.mod_kvm_amd=npt=0', 'vmctr.mod_kvm=tdp_mmu=0,nx_huge_pages=never']);
  t.regex(describeLabSettings(settings), /tcgThreads=single.*thp=never.*kvm_amd\.npt=0/);
  t.is(describeLabSettings(DEFAULT_LAB_SETTINGS), 'defaults');
  t.true(DEFAULT_LAB_SETTINGS.holdVm);
  t.is(describeLabSettings(parseLabSettings('hold_vm=0')), 'holdVm=false');
  t.true(initParameters(DEFAULT_LAB_SETTINGS).includes('vmctr.hold_vm=1'));
  t.deepEqual(DEFAULT_LAB_SETTINGS.moduleParams, {}, 'parsing never changes the defaults');
  t.throws(() => parseLabSettings('tcg=dual'), { message: /"tcg=dual": expected one of multi, single/ });
  t.throws(() => parseLabSettings('cpus=0'), { message: /from 1 to 8/ });
  t.throws(() => parseLabSettings('kvm.x=1 2'), { message: /bad module parameter value/ });
  t.throws(() => parseLabSettings('smp=2'), { message: /unknown lab setting "smp"/ });
  t.throws(() => parseLabSettings('thp'), { message: /not key=value/ });
});
