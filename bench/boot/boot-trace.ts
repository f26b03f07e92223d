// A preload for `vmctr boot` (node --import) that reports, on stderr as one
// `boot-trace: {json}` line when the VM ends: when Vm.run was called (ms
// since process start) and the steps before it (marks: this module loaded,
// which imports the VMM; the first Vm.plan, after the kernel and initrd
// are opened; Vm.create, which reads them into guest memory), how many exits the VMM handled in JavaScript, by
// kind and port or MMIO register and per second of guest run time, and the
// process's RSS, peak and at the end, with its transparent huge pages
// (guest memory touched included), and when console output starts and the
// userspace line arrives. Dev tool for bench/boot/startup-split.ts;
// run-trace.ts extends it for `vmctr run`;
// touches no production code path.
import { readFileSync } from 'node:fs';
import { Vm } from '../../vmm/vm.js';
import { Vcpu } from '../../vmm/vcpu.js';
import type { VcpuExit } from '../../vmm/kvm/vcpu-exit.js';
import { VIRTIO_MMIO_BASE, VIRTIO_MMIO_SIZE } from '../../vmm/boot/layout.js';

/** performance.now() of the steps before the guest runs (run-trace.ts adds a pod's). */
export const marks: Record<string, number> = { traceLoaded: performance.now() };
const byKey = new Map<string, number>();
const perSecond: number[] = [];
/** ms after Vm.run of the first exit of each kind: maps guest uptime (dmesg) to wall-clock time. */
const firstAt: Record<string, number> = {};
let runAt = NaN;

function key(exit: VcpuExit): string {
  switch (exit.kind) {
    case 'io-in':
    case 'io-out':
      return `${exit.kind} 0x${exit.port.toString(16)}`;
    case 'mmio-read':
    case 'mmio-write': {
      const rel = exit.addr - VIRTIO_MMIO_BASE;
      const dev = Math.floor(rel / VIRTIO_MMIO_SIZE);
      return rel >= 0 ? `${exit.kind} virtio${dev}+0x${(rel % VIRTIO_MMIO_SIZE).toString(16)}` : `${exit.kind} 0x${exit.addr.toString(16)}`;
    }
    default:
      return exit.kind;
  }
}

const proto = Vcpu.prototype as unknown as { handle(exit: VcpuExit): number };
const handle = proto.handle;
proto.handle = function (this: Vcpu, exit: VcpuExit): number {
  const k = key(exit);
  byKey.set(k, (byKey.get(k) ?? 0) + 1);
  firstAt[k] ??= Math.round(performance.now() - runAt);
  const s = Math.floor((performance.now() - runAt) / 1000);
  perSecond[s] = (perSecond[s] ?? 0) + 1;
  return handle.call(this, exit);
};

// vmctr boot opens the kernel and initrd, calls Vm.plan (ELF headers), then Vm.create (which reads them into guest memory).
const plan = Vm.plan;
Vm.plan = function (...args: Parameters<typeof Vm.plan>) {
  marks.firstPlan ??= performance.now();
  return plan.apply(this, args);
};
const create = Vm.create;
Vm.create = function (...args: Parameters<typeof Vm.create>) {
  marks.createStart = performance.now();
  const vm = create.apply(this, args);
  marks.createEnd = performance.now();
  return vm;
};

// When the guest's console output starts, and when its userspace line arrives.
const vmProto = Vm.prototype as unknown as { onConsole(bytes: Uint8Array, ...rest: unknown[]): void };
const onConsole = vmProto.onConsole;
vmProto.onConsole = function (this: Vm, bytes: Uint8Array, ...rest: unknown[]) {
  marks.firstConsole ??= performance.now();
  if (marks.userspaceLine === undefined && Buffer.from(bytes).toString('latin1').includes('userspace is up')) marks.userspaceLine = performance.now();
  return onConsole.call(this, bytes, ...rest);
};

const run = Vm.prototype.run;
Vm.prototype.run = async function (this: Vm) {
  runAt = performance.now();
  const exit = await run.call(this);
  const endAt = performance.now();
  const exits = [...byKey.entries()].sort((a, b) => b[1] - a[1]);
  const rollup = readFileSync('/proc/self/smaps_rollup', 'utf8');
  const kib = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(rollup)?.[1]);
  process.stderr.write(`boot-trace: ${JSON.stringify({ marks, runAtMs: runAt, endAtMs: endAt, exitCount: this.exitCount, maxRssKiB: process.resourceUsage().maxRSS, rssKiB: kib('Rss'), anonHugeKiB: kib('AnonHugePages'), exits: Object.fromEntries(exits), firstAt, perSecond: Array.from(perSecond, (n) => n ?? 0) })}\n`);
  return exit;
};
