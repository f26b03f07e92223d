// Fuzz targets for the virtio devices and the MMIO transport: a hostile
// guest (TestDriver over a transport of its own) that negotiates random
// features, lays out rings anywhere (aliased, misaligned, past the end of
// RAM, above 4 GiB), fills descriptor tables with loops, aliasing, indirect
// tables and wild addresses and lengths, posts and re-posts chains, storms
// notifications, writes config space at every offset and width, and resets
// and renegotiates mid-flight. After every step: nothing escaped the
// transport, the status register obeys 3.1.1, the host took a bounded
// amount of output; at the end: the host wrote only guest bytes the guest
// let it write.
import { BlockDevice } from '../../vmm/devices/block/device.js';
import { ConsoleDevice } from '../../vmm/devices/console/device.js';
import { RngDevice } from '../../vmm/devices/rng/device.js';
import { TURN_BYTES } from '../../vmm/virtio/budget.js';
import type { VirtioDevice } from '../../vmm/virtio/device.js';
import { DESCRIPTOR_SIZE, DescFlag, DeviceStatus as S, Feature, MmioReg, featureBit } from '../../vmm/virtio/spec.js';
import { DATA_BASE, MEMORY_SIZE, TestDriver } from '../virtio/driver.js';
import { memoryBackend } from '../virtio/memory-disk.js';
import { FuzzFailure, MemoryWatch, checkBound, type FuzzTarget } from './invariants.js';
import { freshRam } from './ram.js';
import { interesting32, interesting64, type Rng } from './prng.js';

/** Where the hostile guest keeps indirect tables: past the data its descriptors point at. */
const INDIRECT_BASE = DATA_BASE + 0x40000;
/** A transmit chain is capped at 1 MiB, and a turn at TURN_BYTES plus the chain that crosses it. */
const OUTPUT_PER_STEP = TURN_BYTES + (1 << 20);
const CONFIG_SPAN = 0x1000 - MmioReg.CONFIG;

interface Guest {
  rng: Rng;
  d: TestDriver;
  watch: MemoryWatch;
  /** Bytes the device handed the host since the step began. */
  output: { bytes: number };
  /** Host-side input to the device, for devices that take it (the console). */
  input?: (rng: Rng) => void;
}

/** A host action: anything it throws is a bug (the transport documents that nothing escapes it). */
function host(g: Guest, what: string, action: () => void): void {
  allowRings(g);
  g.output.bytes = 0;
  try {
    action();
  } catch (e) {
    throw new FuzzFailure(`${what} threw: ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}`);
  }
  allowRings(g);
  checkBound(g.output.bytes, OUTPUT_PER_STEP, `${what}: bytes of guest output taken in one step`);
  checkStatus(g.d);
  // A non-VirtioError inside a device is a device bug the transport caught: fuzzing's business.
  const bug = g.d.errors.find((m) => m.startsWith('device error:'));
  if (bug) throw new FuzzFailure(`${what}: ${bug}`);
}

/** 3.1.1: DRIVER_OK only after FEATURES_OK after DRIVER after ACKNOWLEDGE; an active device has DRIVER_OK and no FAILED. */
function checkStatus(d: TestDriver): void {
  const st = d.mmio.deviceStatus;
  const need = (bit: number, needs: number) => {
    if (st & bit && (st & needs) !== needs) throw new FuzzFailure(`status 0x${st.toString(16)} has bit 0x${bit.toString(16)} without 0x${needs.toString(16)}`);
  };
  need(S.DRIVER_OK, S.ACKNOWLEDGE | S.DRIVER | S.FEATURES_OK);
  need(S.FEATURES_OK, S.ACKNOWLEDGE | S.DRIVER);
  need(S.DRIVER, S.ACKNOWLEDGE);
  if (d.mmio.isActive && (!(st & S.DRIVER_OK) || st & S.FAILED)) throw new FuzzFailure(`device active with status 0x${st.toString(16)}`);
}

/**
 * What the host may write, read off the transport's own queue set-up:
 * used rings (avail_event included) and the device-writable buffers of
 * every descriptor, indirect tables included. Taken before and after each
 * host action, so a buffer the guest rewrote in between is allowed too.
 */
function allowRings(g: Guest): void {
  const mem = g.d.mem;
  const tables = new Set<string>();
  for (const q of g.d.mmio.queues) {
    g.watch.allow(q.usedRing, 6 + 8 * q.size);
    const descs = (table: number, count: number, nested: boolean) => {
      const key = `${table}:${count}`;
      if (tables.has(key)) return;
      tables.add(key);
      for (let i = 0; i < count; i++) {
        const at = table + DESCRIPTOR_SIZE * i;
        // The driver's RAM is one region from 0: a plain compare, not a GuestMemoryError per miss.
        if (!(at >= 0 && at + DESCRIPTOR_SIZE <= MEMORY_SIZE)) return;
        const addr = Number(mem.readU64(at));
        const len = mem.readU32(at + 8);
        const flags = mem.readU16(at + 12);
        if (flags & DescFlag.INDIRECT) {
          if (nested) descs(addr, Math.min(Math.floor(len / DESCRIPTOR_SIZE), q.size), false);
        } else if (flags & DescFlag.WRITE) {
          g.watch.allow(addr, len);
        }
      }
    };
    descs(q.descTable, q.size, true);
  }
}

function setReg(g: Guest, offset: number, v: number): void {
  host(g, `write 0x${(v >>> 0).toString(16)} to register 0x${offset.toString(16)}`, () => g.d.setReg(offset, v));
}

const FEATURES = [Feature.VERSION_1, Feature.RING_EVENT_IDX, Feature.RING_INDIRECT_DESC].map(featureBit);

/** Feature negotiation as 3.1.1 has it, with random feature bits (VERSION_1 most of the time). */
function negotiate(g: Guest): void {
  const { rng } = g;
  let features = rng.chance(0.1) ? g.rng.u64() : 0n;
  for (const f of FEATURES) if (rng.chance(f === featureBit(Feature.VERSION_1) ? 0.95 : 0.5)) features |= f;
  host(g, 'negotiate', () => g.d.negotiate(features));
}

const QUEUE_SIZES = [1, 2, 4, 8, 8, 16, 16, 64, 256, 0, 3, 512, 0xffff];

/** A 64-bit ring address: mostly per-queue and sane, sometimes aliased, at the end of RAM, misaligned or wild. */
function ringAddress(rng: Rng, q: number, part: number): bigint {
  switch (rng.below(8)) {
    case 0: return BigInt(0x1000 + q * 0x8000); // all three rings on one spot
    case 1: return BigInt(MEMORY_SIZE - 16 * rng.below(0x200));
    case 2: return BigInt(0x1000 + q * 0x8000 + part * 0x2000 + 1 + rng.below(15));
    case 3: return interesting64(rng);
    default: return BigInt(0x1000 + q * 0x8000 + part * 0x2000);
  }
}

function setupQueues(g: Guest): void {
  const { rng } = g;
  for (let q = 0; q < g.d.mmio.queues.length + (rng.chance(0.1) ? 1 : 0); q++) {
    if (rng.chance(0.05)) continue; // a queue left unset
    setReg(g, MmioReg.QUEUE_SEL, q);
    setReg(g, MmioReg.QUEUE_NUM, rng.chance(0.9) ? rng.pick(QUEUE_SIZES.slice(0, 7)) : rng.pick(QUEUE_SIZES));
    const regs = [MmioReg.QUEUE_DESC_LOW, MmioReg.QUEUE_DRIVER_LOW, MmioReg.QUEUE_DEVICE_LOW];
    regs.forEach((low, part) => {
      const addr = ringAddress(rng, q, part);
      setReg(g, low, Number(addr & 0xffffffffn));
      setReg(g, low + 4, Number(addr >> 32n));
    });
    setReg(g, MmioReg.QUEUE_READY, rng.chance(0.97) ? 1 : rng.u32());
  }
}

function start(g: Guest): void {
  negotiate(g);
  setupQueues(g);
  host(g, 'DRIVER_OK', () => g.d.driverOk());
}

/** A buffer address: in the data area, aliased onto the rings, at the edge of RAM, or wild. */
function bufferAddress(rng: Rng, ringBase: number): bigint {
  switch (rng.below(10)) {
    case 0: return BigInt(ringBase + rng.below(0x2000));
    case 1: return BigInt(MEMORY_SIZE - rng.below(64));
    case 2: return interesting64(rng);
    case 3: return BigInt(DATA_BASE); // every buffer on the same bytes
    default: return BigInt(DATA_BASE + rng.below(0x10000));
  }
}

function bufferLength(rng: Rng): number {
  switch (rng.below(8)) {
    case 0: return 0;
    case 1: return interesting32(rng);
    case 2: return MEMORY_SIZE;
    case 3: return rng.below(0x10000);
    default: return 1 + rng.below(512);
  }
}

function flags(rng: Rng, indirect: boolean): number {
  if (rng.chance(0.05)) return rng.u32() & 0xffff;
  return (rng.chance(0.5) ? DescFlag.NEXT : 0) | (rng.chance(0.5) ? DescFlag.WRITE : 0) | (indirect && rng.chance(0.1) ? DescFlag.INDIRECT : 0);
}

function next(rng: Rng, i: number, size: number): number {
  switch (rng.below(8)) {
    case 0: return i; // a loop of one
    case 1: return rng.u32() & 0xffff;
    default: return (i + 1 + rng.below(2)) % Math.max(size, 1);
  }
}

function writeDesc(g: Guest, at: number, d: { addr: bigint; len: number; flags: number; next: number }): void {
  g.watch.writeU64(at, d.addr);
  g.watch.writeU32(at + 8, d.len);
  g.watch.writeU16(at + 12, d.flags);
  g.watch.writeU16(at + 14, d.next);
}

/** Rewrites part of a queue's descriptor table, sometimes with an indirect table behind an entry. */
function fillDescriptors(g: Guest, q: number): void {
  const { rng } = g;
  const queue = g.d.mmio.queues[q];
  if (!queue) return;
  const size = Math.min(queue.size, 64);
  for (let n = rng.below(size) + 1; n > 0; n--) {
    const i = rng.below(size);
    if (rng.chance(0.15)) {
      const entries = 1 + rng.below(rng.chance(0.1) ? 300 : 8);
      const table = INDIRECT_BASE + 16 * rng.below(0x1000);
      for (let e = 0; e < entries; e++) writeDesc(g, table + 16 * e, { addr: bufferAddress(rng, queue.descTable), len: bufferLength(rng), flags: flags(rng, true), next: next(rng, e, entries) });
      const len = rng.chance(0.9) ? entries * 16 : interesting32(rng);
      writeDesc(g, queue.descTable + 16 * i, { addr: rng.chance(0.95) ? BigInt(table) : interesting64(rng), len, flags: DescFlag.INDIRECT | (rng.below(4) & DescFlag.NEXT), next: next(rng, i, size) });
    } else {
      writeDesc(g, queue.descTable + 16 * i, { addr: bufferAddress(rng, queue.descTable), len: bufferLength(rng), flags: flags(rng, false), next: next(rng, i, queue.size) });
    }
  }
}

/** Posts chains on the avail ring: mostly in order, sometimes a wild head or a jump of avail.idx. */
function post(g: Guest, q: number): void {
  const { rng } = g;
  const queue = g.d.mmio.queues[q];
  if (!queue) return;
  const avail = queue.availRing;
  const idx = g.d.mem.checkRange(avail + 2, 2) ? g.d.mem.readU16(avail + 2) : 0;
  const count = rng.below(queue.size + 2);
  for (let k = 0; k < count; k++) {
    const head = rng.chance(0.95) ? rng.below(queue.size) : rng.u32() & 0xffff;
    g.watch.writeU16(avail + 4 + 2 * ((idx + k) % Math.max(queue.size, 1)), head);
  }
  g.watch.writeU16(avail + 2, rng.chance(0.9) ? (idx + count) & 0xffff : rng.u32() & 0xffff);
  if (rng.chance(0.2)) g.watch.writeU16(avail, rng.u32() & 0xffff); // avail.flags
  if (rng.chance(0.2)) g.watch.writeU16(avail + 4 + 2 * queue.size, rng.u32() & 0xffff); // used_event
}

function notify(g: Guest, q: number): void {
  const storm = g.rng.chance(0.1) ? 1 + g.rng.below(100) : 1;
  host(g, `${storm} notifications of queue ${q}`, () => {
    for (let k = 0; k < storm; k++) g.d.transport.notify(q);
  });
}

function configAccess(g: Guest): void {
  const { rng } = g;
  const offset = rng.below(CONFIG_SPAN + 0x10);
  const width = rng.pick([1, 2, 4, 8, 3]);
  if (rng.chance(0.5)) {
    const data = rng.bytes(width);
    host(g, `config write of ${width} at 0x${offset.toString(16)}`, () => g.d.transport.write(MmioReg.CONFIG + offset, data));
  } else {
    host(g, `config read of ${width} at 0x${offset.toString(16)}`, () => g.d.transport.read(MmioReg.CONFIG + offset, new Uint8Array(width)));
  }
}

/** A raw register access at any offset of the window and any width, values biased to the meaningful. */
function registerAccess(g: Guest): void {
  const { rng } = g;
  const offset = rng.chance(0.7) ? 4 * rng.below(MmioReg.CONFIG / 4) : rng.below(MmioReg.CONFIG + 0x10);
  const width = rng.chance(0.8) ? 4 : rng.pick([1, 2, 8, 3]);
  const data = new Uint8Array(width);
  if (rng.chance(0.3)) {
    host(g, `register read of ${width} at 0x${offset.toString(16)}`, () => g.d.transport.read(offset, data));
    return;
  }
  const v = rng.chance(0.3) ? rng.below(0x100) : rng.chance(0.5) ? interesting32(rng) : rng.u32();
  for (let i = 0; i < width; i++) data[i] = i < 4 ? (v >>> (8 * i)) & 0xff : 0;
  host(g, `register write of 0x${v.toString(16)} (${width} bytes) at 0x${offset.toString(16)}`, () => g.d.transport.write(offset, data));
}

/** A status write: a legal next step, a skipped step, FAILED, a reset, or noise. */
function statusWrite(g: Guest): void {
  const { rng } = g;
  const st = g.d.mmio.deviceStatus;
  const steps = [S.ACKNOWLEDGE, S.DRIVER, S.FEATURES_OK, S.DRIVER_OK, S.FAILED, S.DEVICE_NEEDS_RESET];
  const v = rng.chance(0.2) ? 0 : rng.chance(0.2) ? rng.u32() & 0xff : st | rng.pick(steps);
  setReg(g, MmioReg.STATUS, v);
}

type Action = (g: Guest) => void;

/** Host-side input racing the guest's rings (console input into whatever receive buffers it posted). */
function hostInput(g: Guest): void {
  const input = g.input;
  if (input) host(g, 'host input', () => input(g.rng));
}

const queueOf = (g: Guest) => g.rng.below(g.d.mmio.queues.length + 1);

/** The device targets' mix: mostly rings and notifications. */
const RING_ACTIONS: [number, Action][] = [
  [6, (g) => fillDescriptors(g, queueOf(g))],
  [6, (g) => post(g, queueOf(g))],
  [6, (g) => notify(g, queueOf(g))],
  [2, configAccess],
  [1, registerAccess],
  [1, statusWrite],
  [1, (g) => setReg(g, MmioReg.INTERRUPT_ACK, g.rng.u32())],
  [1, hostInput],
  [1, start], // renegotiation: from wherever the device is
];

/** The transport target's mix: mostly raw register traffic, with enough rings to make notifications do work. */
const REGISTER_ACTIONS: [number, Action][] = [
  [10, registerAccess],
  [4, statusWrite],
  [2, configAccess],
  [2, (g) => fillDescriptors(g, queueOf(g))],
  [2, (g) => post(g, queueOf(g))],
  [2, (g) => setReg(g, MmioReg.QUEUE_NOTIFY, g.rng.chance(0.9) ? queueOf(g) : g.rng.u32())],
  [1, start],
];

function pickAction(rng: Rng, actions: readonly [number, Action][]): Action {
  let r = rng.below(actions.reduce((n, [w]) => n + w, 0));
  for (const [w, a] of actions) {
    if (r < w) return a;
    r -= w;
  }
  return actions[0]![1];
}

interface DeviceUnderTest {
  device: VirtioDevice;
  output: { bytes: number };
  input?: (rng: Rng) => void;
}

function hostileGuest(rng: Rng, make: () => DeviceUnderTest, actions: readonly [number, Action][], startFirst: boolean): void {
  const dut = make();
  const d = new TestDriver(dut.device, freshRam(MEMORY_SIZE));
  try {
    const g: Guest = { rng, d, watch: new MemoryWatch(d.mem), output: dut.output, ...(dut.input ? { input: dut.input } : {}) };
    if (startFirst) start(g);
    for (let steps = 4 + rng.below(28); steps > 0; steps--) pickAction(rng, actions)(g);
    try {
      d.checkPage();
    } catch (e) {
      throw new FuzzFailure(e instanceof Error ? e.message : String(e));
    }
    g.watch.check('the device');
  } finally {
    // Work past a turn's budget would continue on a later turn, on memory the next case reuses.
    d.mmio.stop();
  }
}

function consoleDevice(): DeviceUnderTest {
  const output = { bytes: 0 };
  const handler = { output: (b: Uint8Array) => { output.bytes += b.byteLength; } };
  const device = new ConsoleDevice([{ console: true, handler }, { name: 'agent', handler }]);
  return {
    device,
    output,
    input: (rng) => { device.input(rng.below(3), rng.bytes(rng.chance(0.1) ? rng.below(0x20000) : rng.below(64))); },
  };
}

const rngDevice = (): DeviceUnderTest => ({ device: new RngDevice(), output: { bytes: 0 } });
const blockDevice = (): DeviceUnderTest => ({ device: new BlockDevice(memoryBackend(), 'fuzz'), output: { bytes: 0 } });

export const virtioTargets: FuzzTarget[] = [
  { name: 'virtio-console', run: (rng) => hostileGuest(rng, consoleDevice, RING_ACTIONS, true) },
  { name: 'virtio-rng', run: (rng) => hostileGuest(rng, rngDevice, RING_ACTIONS, true) },
  { name: 'virtio-blk', run: (rng) => hostileGuest(rng, blockDevice, RING_ACTIONS, true) },
  {
    name: 'mmio-transport',
    run: (rng, caseIndex) => hostileGuest(rng, [consoleDevice, rngDevice, blockDevice][caseIndex % 3]!, REGISTER_ACTIONS, rng.chance(0.5)),
  },
];
