import { kvmTest } from '../kvm-host.js';
import { Writable } from 'node:stream';
import { LineBufferedOutput } from '../../cli/line-buffered-output.js';
import { VIRTIO_MMIO_BASE } from '../../vmm/boot/layout.js';
import { Vm } from '../../vmm/vm.js';
import { Feature, MmioReg, featureBit } from '../../vmm/virtio/spec.js';
import { TestDriver } from '../virtio/driver.js';
import { PRINT_CMDLINE_AND_REBOOT, syntheticKernel } from './synthetic-kernel.js';

const test = kvmTest(import.meta.url);

// hvc0 output honours the console stream's backpressure: while the sink is
// full the device takes no more transmit chains (they wait in the guest's
// queue, the guest's writes block), and it resumes when the sink drains.

test('line-buffered output reports a full stream and calls back when it drains', async (t) => {
  const slow = new Writable({ highWaterMark: 4, write: (_chunk, _enc, done) => { setTimeout(done, 5); } });
  const out = new LineBufferedOutput(slow);
  t.false(out.write(Buffer.from('a line longer than the stream buffer\n')));
  await new Promise<void>((resolve) => out.onDrain(resolve));
  t.true(out.write(Buffer.from('ok\n')));
});

/** A VM whose console sink is full until the test says otherwise, and the guest's driver for its hvc0, played through the VM's MMIO bus. */
function hvc0Vm() {
  const state = { printed: [] as string[], full: true, resume: undefined as (() => void) | undefined };
  const vm = Vm.create({
    kernel: syntheticKernel(PRINT_CMDLINE_AND_REBOOT),
    cmdline: '',
    cpus: 1,
    memoryMiB: 32,
    console: {
      write: (b) => { state.printed.push(Buffer.from(b).toString()); return !state.full; },
      onDrain: (cb) => { state.resume = cb; },
    },
  });
  const bus = vm.devices.mmio; // virtio-console is the first window
  const port = {
    read: (offset: number, data: Uint8Array) => { bus.read(VIRTIO_MMIO_BASE + offset, data); },
    write: (offset: number, data: Uint8Array) => { bus.write(VIRTIO_MMIO_BASE + offset, data); },
    notify: (q: number) => { bus.write(VIRTIO_MMIO_BASE + MmioReg.QUEUE_NOTIFY, Uint8Array.of(q, 0, 0, 0)); },
  };
  const d = new TestDriver({ port, mem: vm.memory });
  d.negotiate(featureBit(Feature.VERSION_1));
  d.setupQueue(0, 16);
  d.setupQueue(1, 16);
  d.driverOk();
  ['a', 'b', 'c'].forEach((s, i) => {
    d.writeDesc(1, i, { addr: d.buffer(1, Buffer.from(s)), len: 1, flags: 0 });
    d.offer(1, i, false);
  });
  port.notify(1);
  return { vm, d, state };
}

test('hvc0 stops taking transmit chains while the console sink is full, and resumes on drain', (t) => {
  const { vm, d, state } = hvc0Vm();
  // The VM is run (and so released) however the test ends: its eventfd watchers keep the process alive.
  t.teardown(() => vm.run());
  t.deepEqual(state.printed, ['a'], 'the first chain filled the sink; the others wait');
  t.is(d.usedIdx(1), 1);
  state.full = false;
  t.truthy(state.resume, 'the VMM asked to hear when the sink drains');
  state.resume!();
  t.deepEqual(state.printed, ['a', 'b', 'c']);
  t.is(d.usedIdx(1), 3);
});

test('what hvc0 holds when the VM stops reaches the sink, full or not', async (t) => {
  const { vm, state } = hvc0Vm();
  t.deepEqual(state.printed, ['a']);
  await vm.run(); // the guest reboots: the VMM drains the queues as it stops
  t.deepEqual(state.printed, ['a', 'b', 'c']);
});
