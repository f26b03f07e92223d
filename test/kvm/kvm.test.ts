import { kvmTest } from '../kvm-host.js';
import { closeSync } from 'node:fs';
import { native } from '../../vmm/kvm/native.js';
import { Kvm } from '../../vmm/kvm/kvm.js';
import { KVM_MEM_READONLY } from '../../vmm/kvm/constants.js';
import { CODE_ADDR, RecordingDevice, TinyGuest } from './tiny-guest.js';

const test = kvmTest(import.meta.url);

// These run against the host's /dev/kvm (PVM here, VT-x/AMD-V elsewhere):
// tiny guests run on both.

test('KVM API version and capabilities', (t) => {
  const kvm = Kvm.open();
  try {
    t.notThrows(() => kvm.requireCapabilities(['IRQCHIP', 'USER_MEMORY', 'IOEVENTFD', 'IRQFD', 'IMMEDIATE_EXIT']));
    t.true(kvm.vcpuMmapSize() >= 4096);
    const cpuid = kvm.supportedCpuid();
    t.true(cpuid.some((e) => e.function === 0));
  } finally {
    kvm.close();
  }
});

test('real mode: port I/O out exit carries its value, then HLT', async (t) => {
  const g = new TinyGuest();
  const dev = new RecordingDevice('pio', 0x10);
  g.pio.insert(0x10, 1, 'rec', dev);
  // mov al, 0x42; out 0x10, al; hlt
  g.loadRealMode([0xb0, 0x42, 0xe6, 0x10, 0xf4]);
  const event = await g.run();
  t.deepEqual(event, { kind: 'hlt' });
  t.deepEqual(dev.accesses, [{ bus: 'pio', op: 'write', addr: 0x10, bytes: [0x42] }]);
  t.is(g.vcpuFd.getRegs().rip, BigInt(CODE_ADDR + 5));
  g.close();
});

test('real mode: port I/O in exit is answered by the device', async (t) => {
  const g = new TinyGuest();
  const dev = new RecordingDevice('pio', 0x20, { 0x20: [0x99] });
  g.pio.insert(0x20, 2, 'rec', dev);
  // in al, 0x20; out 0x21, al; hlt
  g.loadRealMode([0xe4, 0x20, 0xe6, 0x21, 0xf4]);
  await g.run();
  t.deepEqual(dev.accesses.map((a) => [a.op, a.addr, a.bytes]), [['read', 0x20, [0x99]], ['write', 0x21, [0x99]]]);
  g.close();
});

test('real mode: MMIO write and read exits outside the memory slot', async (t) => {
  const g = new TinyGuest();
  const mmio = new RecordingDevice('mmio', 0x80000, { 0x80020: [0x78, 0x56] });
  g.mmio.insert(0x80000, 0x100, 'rec', mmio);
  const port = new RecordingDevice('pio', 0x30);
  g.pio.insert(0x30, 2, 'port', port);
  // mov ax, 0x8000; mov ds, ax; mov word [0x10], 0xbeef; mov ax, [0x20]; out 0x30, ax; hlt
  g.loadRealMode([0xb8, 0x00, 0x80, 0x8e, 0xd8, 0xc7, 0x06, 0x10, 0x00, 0xef, 0xbe, 0xa1, 0x20, 0x00, 0xe7, 0x30, 0xf4]);
  await g.run();
  t.deepEqual(mmio.accesses, [
    { bus: 'mmio', op: 'write', addr: 0x80010, bytes: [0xef, 0xbe] },
    { bus: 'mmio', op: 'read', addr: 0x80020, bytes: [0x78, 0x56] },
  ]);
  t.deepEqual(port.accesses[0]?.bytes, [0x78, 0x56]);
  g.close();
});

test('long mode: a loop runs and its result leaves through a port', async (t) => {
  const g = new TinyGuest();
  const port = new RecordingDevice('pio', 0x10);
  g.pio.insert(0x10, 4, 'rec', port);
  // mov ecx, 1000; xor eax, eax; L: add eax, 3; dec ecx; jnz L; out 0x10, eax; hlt
  g.loadLongMode([0xb9, 0xe8, 0x03, 0x00, 0x00, 0x31, 0xc0, 0x83, 0xc0, 0x03, 0xff, 0xc9, 0x75, 0xf9, 0xe7, 0x10, 0xf4]);
  await g.run();
  t.deepEqual(port.accesses[0]?.bytes, [0xb8, 0x0b, 0x00, 0x00]); // 3000
  const regs = g.vcpuFd.getRegs();
  t.is(regs.rax, 3000n);
  t.is(regs.rcx, 0n);
  t.is(g.vcpuFd.getSregs().efer & 0x400n, 0x400n); // still in long mode (LMA)
  g.close();
});

test('read-only memory slot: reads come from host memory without an exit, writes exit as MMIO', async (t) => {
  const g = new TinyGuest();
  const page = new Uint8Array(native.createGuestMemory(4096).buffer);
  page[0x20] = 0x34;
  page[0x21] = 0x12;
  g.vm.setUserMemoryRegion(16, 0x80000, page.buffer as ArrayBuffer, KVM_MEM_READONLY);
  const mmio = new RecordingDevice('mmio', 0x80000);
  g.mmio.insert(0x80000, 0x1000, 'rec', mmio);
  const port = new RecordingDevice('pio', 0x30);
  g.pio.insert(0x30, 2, 'port', port);
  // mov ax, 0x8000; mov ds, ax; mov ax, [0x20]; mov word [0x10], 0xbeef; out 0x30, ax; hlt
  g.loadRealMode([0xb8, 0x00, 0x80, 0x8e, 0xd8, 0xa1, 0x20, 0x00, 0xc7, 0x06, 0x10, 0x00, 0xef, 0xbe, 0xe7, 0x30, 0xf4]);
  await g.run();
  t.deepEqual(port.accesses[0]?.bytes, [0x34, 0x12], 'the read saw the page');
  t.deepEqual(mmio.accesses, [{ bus: 'mmio', op: 'write', addr: 0x80010, bytes: [0xef, 0xbe] }], 'only the write reached the device');
  t.is(page[0x10], 0, 'the write did not reach the page');
  t.is(g.vcpu.exits, 3, 'the MMIO write, the port write and the HLT');
  g.close();
});

test('registers round-trip through KVM_SET_REGS/KVM_GET_REGS', (t) => {
  const g = new TinyGuest();
  const regs = g.vcpuFd.getRegs();
  regs.rax = 0x1122334455667788n;
  regs.r15 = 0xffffffffffffffffn;
  regs.rip = 0x1234n;
  g.vcpuFd.setRegs(regs);
  const back = g.vcpuFd.getRegs();
  t.is(back.rax, 0x1122334455667788n);
  t.is(back.r15, 0xffffffffffffffffn);
  t.is(back.rip, 0x1234n);
  g.close();
});

test('memory slot: guest and host see the same bytes without copies', async (t) => {
  const g = new TinyGuest();
  const port = new RecordingDevice('pio', 0x10);
  g.pio.insert(0x10, 1, 'rec', port);
  g.memory.writeU8(0x600, 0x5a);
  // mov byte [0x500], 0x77; mov al, [0x600]; out 0x10, al; hlt
  g.loadRealMode([0xc6, 0x06, 0x00, 0x05, 0x77, 0xa0, 0x00, 0x06, 0xe6, 0x10, 0xf4]);
  const view = g.memory.slice(0x500, 1); // taken before the run: a live view
  await g.run();
  t.is(view[0], 0x77);
  t.deepEqual(port.accesses[0]?.bytes, [0x5a]);
  g.close();
});

test('ioeventfd: a guest port write signals the eventfd without an exit to the VMM', async (t) => {
  const g = new TinyGuest();
  const fd = native.createEventFd();
  g.vm.registerIoeventfd(fd, 0x40, 1, { pio: true });
  const fired = new Promise<number>((resolve) => {
    const w = new native.EventFdWatcher(fd, (count) => {
      w.close();
      resolve(count);
    });
  });
  const dev = new RecordingDevice('pio', 0x40);
  g.pio.insert(0x40, 1, 'rec', dev);
  // out 0x40, al; out 0x40, al; hlt
  g.loadRealMode([0xe6, 0x40, 0xe6, 0x40, 0xf4]);
  await g.run();
  t.true((await fired) >= 1);
  t.deepEqual(dev.accesses, [], 'the write was absorbed by KVM, not routed to the device');
  t.is(g.vcpu.exits, 1, 'only the HLT exited');
  closeSync(fd);
  g.close();
});

test('irqfd: writing the eventfd delivers the interrupt to the guest', async (t) => {
  const g = new TinyGuest({ irqchip: true });
  const HANDLER = 0x1100;
  // Real-mode IVT entry for vector 0x25 (PIC base 0x20 + IRQ 5) -> 0:HANDLER.
  g.memory.writeU16(0x25 * 4, HANDLER);
  g.memory.writeU16(0x25 * 4 + 2, 0);
  // handler: mov al, 0x99; out 0x51, al; hlt
  g.memory.write(HANDLER, Uint8Array.from([0xb0, 0x99, 0xe6, 0x51, 0xf4]));
  // Program the 8259: ICW1 0x11, ICW2 base 0x20, ICW3 0x04, ICW4 0x01, mask all but IRQ5;
  // tell the host we are ready (out 0x50), then sti and spin.
  g.loadRealMode([
    0xb0, 0x11, 0xe6, 0x20, 0xb0, 0x20, 0xe6, 0x21, 0xb0, 0x04, 0xe6, 0x21, 0xb0, 0x01, 0xe6, 0x21,
    0xb0, 0xdf, 0xe6, 0x21, 0xe6, 0x50, 0xfb, 0xeb, 0xfe,
  ]);
  // The LAPIC hardware-disabled, so the PIC's INTR line reaches the CPU directly.
  const sregs = g.vcpuFd.getSregs();
  sregs.apic_base = 0xfee00000n;
  g.vcpuFd.setSregs(sregs);

  const fd = native.createEventFd();
  g.vm.registerIrqfd(fd, 5);
  const seen: number[] = [];
  g.pio.insert(0x20, 2, 'pic-passthrough-guard', new RecordingDevice('pio', 0x20));
  g.pio.insert(0x50, 2, 'signals', {
    read: () => {},
    write: (offset, data) => {
      seen.push(0x50 + offset);
      if (offset === 0) native.writeEventFd(fd);
      else {
        t.is(data[0], 0x99);
        g.vcpu.stop();
      }
    },
  });
  await g.run();
  t.deepEqual(seen, [0x50, 0x51]);
  closeSync(fd);
  g.close();
});

test('a failing ioctl names the ioctl and the errno', (t) => {
  const kvm = Kvm.open();
  const vm = kvm.createVm();
  try {
    // Slot memory must be page-aligned in size; a 100-byte guest address range is invalid.
    const err = t.throws(() => native.vmSetUserMemoryRegion(vm.fd, 0, 0, 0x1001n, new ArrayBuffer(4096)));
    t.regex(err.message, /^KVM_SET_USER_MEMORY_REGION failed: EINVAL \(22\)/);
    t.is((err as Error & { errno: number }).errno, 22);
  } finally {
    vm.close();
    kvm.close();
  }
});
