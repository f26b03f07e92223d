import test from 'ava';
import { Bus } from '../../vmm/bus.js';
import { Serial } from '../../vmm/devices/legacy/serial.js';
import { I8042 } from '../../vmm/devices/legacy/i8042.js';

function uart() {
  const out: number[] = [];
  let irqs = 0;
  const s = new Serial({ write: (b) => { out.push(...b); } }, () => irqs++);
  const rd = (off: number) => { const d = new Uint8Array(1); s.read(off, d); return d[0]!; };
  const wr = (off: number, v: number) => s.write(off, Uint8Array.of(v));
  return { s, out, rd, wr, irqs: () => irqs };
}

test('16550: transmitted bytes reach the sink and THRE is always set', (t) => {
  const u = uart();
  for (const c of 'hi') u.wr(0, c.charCodeAt(0));
  t.is(Buffer.from(u.out).toString(), 'hi');
  t.is(u.rd(5) & 0x60, 0x60);
});

test('16550: loopback maps MCR outputs to MSR inputs, as Linux probes it', (t) => {
  const u = uart();
  u.wr(4, 0x10 | 0x0a); // LOOP | OUT2 | RTS
  t.is(u.rd(6) & 0xf0, 0x90);
  u.wr(0, 0x41); // looped back into the receiver, not the sink
  t.deepEqual(u.out, []);
  t.is(u.rd(5) & 1, 1);
  t.is(u.rd(0), 0x41);
});

test('16550: enabling THRE interrupts fires one, and reading IIR acknowledges it', (t) => {
  const u = uart();
  u.wr(1, 0x02);
  t.is(u.irqs(), 1);
  t.is(u.rd(2) & 0x0f, 0x02);
  t.is(u.rd(2) & 0x0f, 0x01, 'no interrupt pending after the acknowledgment');
});

test('16550: received data raises RDA when enabled and is read in order', (t) => {
  const u = uart();
  u.wr(1, 0x01);
  t.true(u.s.enqueueInput(Buffer.from('ab')));
  t.is(u.irqs(), 1);
  t.is(u.rd(2) & 0x0f, 0x04);
  t.is(String.fromCharCode(u.rd(0), u.rd(0)), 'ab');
  t.is(u.rd(5) & 1, 0);
});

test('16550: divisor latch is separate from data and IER', (t) => {
  const u = uart();
  u.wr(3, 0x80);
  u.wr(0, 0x01);
  u.wr(1, 0x00);
  t.is(u.rd(0), 0x01);
  u.wr(3, 0x03);
  t.deepEqual(u.out, [], 'a divisor write is not a transmitted byte');
  t.is(u.rd(1), 0);
});

test('16550: input beyond the receive limit is refused, not buffered without bound', (t) => {
  const u = uart();
  t.false(u.s.enqueueInput(new Uint8Array(70 * 1024)));
});

test('i8042: only the pulse-reset command resets', (t) => {
  let resets = 0;
  const k = new I8042(() => resets++);
  k.write(0, Uint8Array.of(0xfe)); // data port: ignored
  k.write(4, Uint8Array.of(0xaa));
  t.is(resets, 0);
  k.write(4, Uint8Array.of(0xfe));
  t.is(resets, 1);
});

test('bus: routes by range, refuses overlaps, unclaimed reads are all ones', (t) => {
  const bus = new Bus('test');
  const seen: [number, number][] = [];
  bus.insert(0x100, 8, 'a', { read: (o, d) => d.fill(o), write: (o, d) => seen.push([o, d[0]!]) });
  t.throws(() => bus.insert(0x104, 8, 'b', { read: () => {}, write: () => {} }), { message: /b at 0x104 overlaps a at 0x100/ });
  bus.insert(0x108, 8, 'c', { read: (_o, d) => d.fill(0xcc), write: () => {} });
  const d = new Uint8Array(1);
  t.true(bus.read(0x103, d));
  t.is(d[0], 3);
  t.true(bus.read(0x108, d));
  t.is(d[0], 0xcc);
  t.false(bus.read(0x200, d));
  t.is(d[0], 0xff);
  const wide = new Uint8Array(4);
  t.false(bus.read(0x106, wide), 'an access straddling two devices is not routed');
  t.true(bus.write(0x101, Uint8Array.of(9)));
  t.deepEqual(seen, [[1, 9]]);
});

test('16550: loopback bytes fill a 16-byte FIFO, not host memory without bound', (t) => {
  const u = uart();
  u.wr(4, 0x10); // LOOP
  for (let i = 0; i < 100_000; i++) u.wr(0, i & 0xff);
  let readable = 0;
  while (u.rd(5) & 1) {
    u.rd(0);
    readable++;
  }
  t.is(readable, 16);
});
