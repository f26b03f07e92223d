import test from 'ava';
import { GuestMemory, GuestMemoryError } from '../../vmm/memory/guest-memory.js';
import { E820_RAM, E820_RESERVED, MMIO_GAP_END, MMIO_GAP_START, MPTABLE_ADDR, e820Map, ramRanges } from '../../vmm/boot/layout.js';
import { MPTABLE_MAX_CPUS, writeMpTable } from '../../vmm/boot/mptable.js';
import { vcpuCpuid } from '../../vmm/cpu/cpuid.js';
import { decodeExit } from '../../vmm/kvm/vcpu-exit.js';

const MiB = 1048576;

test('RAM above 3 GiB continues past the MMIO gap at 4 GiB', (t) => {
  t.deepEqual(ramRanges(512 * MiB), [{ base: 0, size: 512 * MiB }]);
  t.deepEqual(ramRanges(4096 * MiB), [{ base: 0, size: MMIO_GAP_START }, { base: MMIO_GAP_END, size: 1024 * MiB }]);
});

test('e820: low RAM, the MP table reserved, RAM from 1 MiB', (t) => {
  t.deepEqual(e820Map(ramRanges(64 * MiB)), [
    { addr: 0, size: MPTABLE_ADDR, type: E820_RAM },
    { addr: MPTABLE_ADDR, size: 0xa0000 - MPTABLE_ADDR, type: E820_RESERVED },
    { addr: MiB, size: 63 * MiB, type: E820_RAM },
  ]);
});

test('guest memory: bounds-checked, errors name the address, regions found across the gap', (t) => {
  const mem = GuestMemory.allocate([{ base: 0, size: 0x10000 }, { base: 0x100000, size: 0x10000 }]);
  mem.writeU32(0x100010, 0xdeadbeef);
  t.is(mem.readU32(0x100010), 0xdeadbeef);
  const e = t.throws(() => mem.readU32(0xfffe), { instanceOf: GuestMemoryError });
  t.is(e.message, 'guest range 0xfffe+4 is not in guest memory');
  t.throws(() => mem.slice(0x20000, 1), { instanceOf: GuestMemoryError });
  t.throws(() => mem.slice(-1, 1), { instanceOf: GuestMemoryError });
  t.throws(() => mem.slice(0x100000, 0x10001), { instanceOf: GuestMemoryError });
  t.throws(() => mem.slice(2 ** 60, 8), { instanceOf: GuestMemoryError });
  t.false(mem.checkRange(0xffff, 2));
  t.true(mem.checkRange(0x10fff0, 16));
  t.throws(() => GuestMemory.allocate([{ base: 0, size: 0x2000 }, { base: 0x1000, size: 0x1000 }]), { message: /overlap/ });
  mem.close();
});

function sum(bytes: Uint8Array): number {
  return bytes.reduce((a, b) => (a + b) & 0xff, 0);
}

test('MP table: floating pointer and table checksums, one processor entry per CPU', (t) => {
  const mem = GuestMemory.allocate([{ base: 0, size: MiB }]);
  writeMpTable(mem, 3);
  const mpf = mem.read(MPTABLE_ADDR, 16);
  t.is(Buffer.from(mpf.subarray(0, 4)).toString(), '_MP_');
  t.is(sum(mpf), 0);
  const tableAddr = mem.readU32(MPTABLE_ADDR + 4);
  const len = mem.readU16(tableAddr + 4);
  const table = mem.read(tableAddr, len);
  t.is(Buffer.from(table.subarray(0, 4)).toString(), 'PCMP');
  t.is(sum(table), 0);
  const cpus = [];
  for (let at = 44; at < len;) {
    const type = table[at]!;
    if (type === 0) cpus.push({ id: table[at + 1], flags: table[at + 3] });
    at += type === 0 ? 20 : 8;
  }
  t.deepEqual(cpus, [{ id: 0, flags: 3 }, { id: 1, flags: 1 }, { id: 2, flags: 1 }]);
  t.throws(() => writeMpTable(mem, MPTABLE_MAX_CPUS + 1));
  mem.close();
});

test('CPUID: per-vCPU APIC ids, hypervisor bit, features the VMM lacks removed', (t) => {
  const supported = [
    { function: 1, index: 0, flags: 0, eax: 0x806f8, ebx: 0, ecx: 0x7ffafbff, edx: 0xbfebfbff },
    { function: 0xb, index: 0, flags: 1, eax: 1, ebx: 1, ecx: 0x100, edx: 0 },
    { function: 0xa, index: 0, flags: 0, eax: 0x7300404, ebx: 0, ecx: 0, edx: 0x603 },
    { function: 0x6, index: 0, flags: 0, eax: 0x77, ebx: 0x2, ecx: 0x9, edx: 0 },
  ];
  const cpu2 = vcpuCpuid(supported, 2, 4);
  const leaf1 = cpu2.find((e) => e.function === 1)!;
  t.is(leaf1.ebx >>> 24, 2);
  t.is((leaf1.ebx >>> 16) & 0xff, 4);
  t.is(leaf1.ecx >>> 31, 1, 'hypervisor present');
  t.is(leaf1.ecx & (1 << 3), 0, 'no MONITOR/MWAIT');
  t.is(leaf1.ecx & (1 << 5), 0, 'no VMX');
  t.is((leaf1.ecx >>> 24) & 1, 1, 'TSC-deadline LAPIC timer (KVM emulates it, does not report it)');
  t.deepEqual(cpu2.find((e) => e.function === 6), { function: 6, index: 0, flags: 0, eax: 0x4, ebx: 0, ecx: 0, edx: 0 }, 'only ARAT of the power leaf');
  t.is(cpu2.find((e) => e.function === 0xb)!.edx, 2);
  t.deepEqual(cpu2.find((e) => e.function === 0xa), { function: 0xa, index: 0, flags: 0, eax: 0, ebx: 0, ecx: 0, edx: 0 });
  t.is(supported[0]!.ebx, 0, 'the input is not modified');
});

test('exit decoding: I/O data offsets outside the run page are refused, unknown reasons are unsupported', (t) => {
  const page = new Uint8Array(4096);
  const v = new DataView(page.buffer);
  v.setUint32(8, 2, true); // KVM_EXIT_IO
  v.setUint8(32, 1);
  v.setUint8(33, 1);
  v.setUint16(34, 0x3f8, true);
  v.setUint32(36, 1, true);
  v.setBigUint64(40, 4096n, true); // data_offset at the very end: out of the page
  t.deepEqual(decodeExit(v, page), { kind: 'unsupported', reason: 2 });
  v.setBigUint64(40, 256n, true);
  page[256] = 0x41;
  const io = decodeExit(v, page);
  t.is(io.kind, 'io-out');
  t.deepEqual(io.kind === 'io-out' ? [...io.data] : [], [0x41]);
  v.setUint32(8, 999, true);
  t.deepEqual(decodeExit(v, page), { kind: 'unsupported', reason: 999 });
});
