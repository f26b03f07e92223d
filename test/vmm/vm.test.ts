import { kvmTest } from '../kvm-host.js';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileImage } from '../../vmm/boot/boot-image.js';
import { Vm, type VmConfig } from '../../vmm/vm.js';
import { CRASH, PRINT_CMDLINE_AND_REBOOT, syntheticKernel } from './synthetic-kernel.js';

const test = kvmTest(import.meta.url);

// The whole Vm path (KVM set-up, PVH loader, boot state, serial, i8042) with
// a synthetic PVH kernel: runs on any /dev/kvm, PVM included.

function config(kernel: VmConfig['kernel'], out: number[], extra: Partial<VmConfig> = {}): VmConfig {
  return { kernel, cmdline: 'hello-from-cmdline', cpus: 1, memoryMiB: 32, console: { write: (b) => { out.push(...b); } }, ...extra };
}

test('a PVH guest reads start_info, prints its command line on the UART and reboots', async (t) => {
  const out: number[] = [];
  const vm = Vm.create(config(syntheticKernel(PRINT_CMDLINE_AND_REBOOT), out));
  const exit = await vm.run();
  t.deepEqual(exit, { kind: 'reboot' });
  t.regex(Buffer.from(out).toString(), /^reboot=k panic=-1 hello-from-cmdline 8250.nr_uarts=0 earlycon=uart8250,io,0x3f8 keep_bootcon console=hvc0 virtio_mmio.device=4K@0xd0000000:5 virtio_mmio.device=4K@0xd0001000:6\n$/);
});

test('kernel and initrd given as files are read straight into guest memory, as their bytes would be', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'vmctr-vm-test-'));
  const initrdBytes = Buffer.from('an initrd: any bytes, loaded at the top of low RAM\n'.repeat(100));
  writeFileSync(join(dir, 'vmlinux'), syntheticKernel(PRINT_CMDLINE_AND_REBOOT));
  writeFileSync(join(dir, 'initrd'), initrdBytes);
  const kernel = FileImage.open(join(dir, 'vmlinux'));
  const initrd = FileImage.open(join(dir, 'initrd'));
  const out: number[] = [];
  const vm = Vm.create(config(kernel, out, { initrd }));
  kernel.close();
  initrd.close();
  const plan = Vm.plan(config(syntheticKernel(PRINT_CMDLINE_AND_REBOOT), [], { initrd: initrdBytes }));
  t.deepEqual(Buffer.from(vm.memory.read(plan.initrd!.addr, initrdBytes.byteLength)), initrdBytes);
  for (const seg of plan.segments) {
    t.deepEqual(vm.memory.read(seg.paddr, seg.fileSize), syntheticKernel(PRINT_CMDLINE_AND_REBOOT).subarray(seg.fileOffset, seg.fileOffset + seg.fileSize));
  }
  t.deepEqual(await vm.run(), { kind: 'reboot' });
  t.regex(Buffer.from(out).toString(), /hello-from-cmdline/);
  t.throws(() => FileImage.open(dir), { code: 'EISDIR' });
});

test('a guest that triple-faults ends the VM as a crash', async (t) => {
  const vm = Vm.create(config(syntheticKernel(CRASH), []));
  const exit = await vm.run();
  t.is(exit.kind, 'crash');
  t.regex((exit as { detail: string }).detail, /triple fault/);
});

test('a panic banner on the console before the reset makes it a panic', async (t) => {
  const out: number[] = [];
  const vm = Vm.create(config(syntheticKernel(PRINT_CMDLINE_AND_REBOOT), out, { cmdline: 'Kernel panic - not syncing: test' }));
  t.deepEqual(await vm.run(), { kind: 'panic' });
});

test('several vCPUs are created; the boot CPU runs, the others wait for SIPI', async (t) => {
  const vm = Vm.create(config(syntheticKernel(PRINT_CMDLINE_AND_REBOOT), [], { cpus: 4 }));
  t.is(vm.vcpus.length, 4);
  t.deepEqual(await vm.run(), { kind: 'reboot' });
});

test('requestStop from outside stops a running guest', async (t) => {
  // jmp $ : spins forever
  const vm = Vm.create(config(syntheticKernel([0xeb, 0xfe]), []));
  const running = vm.run();
  setTimeout(() => vm.requestStop(), 200);
  t.deepEqual(await running, { kind: 'stopped' });
});

test('bad configurations fail with one-line errors before anything runs', (t) => {
  const k = syntheticKernel(PRINT_CMDLINE_AND_REBOOT);
  t.throws(() => Vm.create(config(k, [], { memoryMiB: 8 })), { message: /^memory must be an integer from 32/ });
  t.throws(() => Vm.create(config(k, [], { cpus: 0 })), { message: /^--cpus must be an integer from 1/ });
  t.throws(() => Vm.create(config(Buffer.from('not an elf at all, just text'.repeat(4)), [])), { message: /^kernel: not an ELF file$/ });
  t.throws(() => Vm.create(config(k.subarray(0, 100), [])), { message: /^kernel: program headers lie outside the file/ });
  t.throws(() => Vm.create(config(syntheticKernel(CRASH, { pvhNote: false }), [])), { message: /no PVH entry point/ });
  t.throws(() => Vm.create(config(k, [], { cmdline: 'x'.repeat(3000) })), { message: /command line is \d+ bytes/ });
  t.throws(() => Vm.create(config(k, [], { initrd: new Uint8Array(40 * 1024 * 1024) })), { message: /^memory too small/ });
});

test('a guest that prints the kernel\'s power-down message is powered off', async (t) => {
  const vm = Vm.create(config(syntheticKernel(PRINT_CMDLINE_AND_REBOOT), [], { cmdline: 'reboot: Power down' }));
  t.deepEqual(await vm.run(), { kind: 'poweroff' });
});

test('port-0x80 boot markers are bounded: a guest writing them in a loop does not grow host memory', async (t) => {
  const vm = Vm.create(config(syntheticKernel(PRINT_CMDLINE_AND_REBOOT), []));
  for (let i = 0; i < 100_000; i++) vm.devices.pio.write(0x80, Uint8Array.of(i & 0xff));
  t.true(vm.bootMarkers.length <= 256, `${vm.bootMarkers.length} markers kept`);
  t.is(vm.bootMarkers[0]?.code, 0, 'the first markers are the ones kept');
  t.deepEqual(await vm.run(), { kind: 'reboot' });
});
