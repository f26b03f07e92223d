// Fuzz targets for the pure parsers a guest (or its agent) feeds: the
// virtio-blk request parser, the ELF/PVH loader and the agent protocol's
// frame decoder. Each may refuse an input with its documented error
// (VirtioError, BootError, ProtocolError) and nothing else; what it
// accepts must be consistent and, for the loader, land inside guest RAM.
import { parseBlockRequest, type ParsedRequest } from '../../vmm/devices/block/request.js';
import { BytesImage } from '../../vmm/boot/boot-image.js';
import { BootError, loadLinuxPvh, planLinuxPvh, type BootPlan } from '../../vmm/boot/linux-loader.js';
import { CMDLINE_ADDR, CMDLINE_MAX, PVH_START_INFO_ADDR } from '../../vmm/boot/layout.js';
import type { GuestMemory } from '../../vmm/memory/guest-memory.js';
import { DescriptorChain } from '../../vmm/virtio/descriptor-chain.js';
import { VirtioError } from '../../vmm/virtio/memory.js';
import { DescFlag } from '../../vmm/virtio/spec.js';
import { FrameDecoder, ProtocolError } from '../../guest-agent/frames.js';
import { DATA_TYPES, MAX_DATA, MAX_FRAME, type Message } from '../../guest-agent/protocol.js';
import { PRINT_CMDLINE_AND_REBOOT, SYNTHETIC_LOAD_ADDR, syntheticKernel } from '../vmm/synthetic-kernel.js';
import { FuzzFailure, MemoryWatch, type FuzzTarget } from './invariants.js';
import { freshRam } from './ram.js';
import { interesting32, interesting64, type Rng } from './prng.js';

/** Runs `f`; the documented error type is an answer, anything else a failure. Returns undefined when refused. */
function refusedWith<T>(what: string, documented: abstract new (...args: never[]) => Error, f: () => T): T | undefined {
  try {
    return f();
  } catch (e) {
    if (e instanceof documented) return undefined;
    throw new FuzzFailure(`${what} threw ${e instanceof Error ? `${e.name}: ${e.message}\n${e.stack ?? ""}` : String(e)}, not a ${documented.name}`);
  }
}

// --- virtio-blk request parser ---------------------------------------------

const BLK_RAM = 64 * 1024;
const TABLE = 0;

function blockRequest(rng: Rng): void {
  const mem = freshRam(BLK_RAM);
  const size = rng.pick([1, 4, 8, 16]);
  const v = mem.regions[0]!.view;
  for (let i = 0; i < size; i++) {
    const at = TABLE + 16 * i;
    const addr = rng.chance(0.85) ? 0x1000 + rng.below(BLK_RAM - 0x1000) : Number(interesting64(rng) % BigInt(2 ** 53));
    const len = rng.chance(0.2) ? interesting32(rng) : rng.chance(0.3) ? 1 : rng.below(1024);
    v.setBigUint64(at, BigInt(addr), true);
    v.setUint32(at + 8, len >>> 0, true);
    v.setUint16(at + 12, rng.chance(0.05) ? rng.u32() & 0xffff : (i < size - 1 && rng.chance(0.8) ? DescFlag.NEXT : 0) | (rng.chance(0.5) ? DescFlag.WRITE : 0), true);
    v.setUint16(at + 14, rng.chance(0.9) ? i + 1 : rng.u32() & 0xffff, true);
    // A header where a header would be: a plausible type and a sector, often at the edges.
    if (addr + 16 <= BLK_RAM) {
      v.setUint32(addr, rng.chance(0.8) ? rng.pick([0, 1, 4, 8]) : rng.u32(), true);
      v.setBigUint64(addr + 8, rng.chance(0.5) ? BigInt(rng.below(256)) : interesting64(rng), true);
    }
  }
  const table = new DataView(mem.regions[0]!.buffer, TABLE, 16 * size);
  const head = rng.chance(0.95) ? 0 : rng.below(size + 2);
  const chain = refusedWith('DescriptorChain.parse', VirtioError, () => DescriptorChain.parse(mem, table, size, head, false));
  if (!chain) return;
  const parsed = refusedWith('parseBlockRequest', VirtioError, () => parseBlockRequest(mem, chain));
  if (parsed) checkBlockRequest(mem, chain, parsed);
}

/** Whether `view` is guest memory inside one of the chain's descriptors of the given direction. */
function inDescriptors(mem: GuestMemory, chain: DescriptorChain, view: Uint8Array, writable: boolean): boolean {
  if (view.buffer !== mem.regions[0]!.buffer) return false;
  return chain.descriptors.some((d) => d.writable === writable && view.byteOffset >= d.addr && view.byteOffset + view.byteLength <= d.addr + d.len);
}

function checkBlockRequest(mem: GuestMemory, chain: DescriptorChain, { request, status }: ParsedRequest): void {
  const fail = (why: string) => { throw new FuzzFailure(`block request ${JSON.stringify({ type: request.type })}: ${why}`); };
  if (status.byteLength !== 1 || !inDescriptors(mem, chain, status, true)) fail('the status byte is not one device-writable guest byte');
  const sum = (bufs: Uint8Array[]) => bufs.reduce((n, b) => n + b.byteLength, 0);
  switch (request.type) {
    case 'read':
      if (sum(request.buffers) !== request.length) fail(`buffers hold ${sum(request.buffers)} bytes, length says ${request.length}`);
      if (request.buffers.some((b) => !inDescriptors(mem, chain, b, true))) fail('a read buffer is not device-writable');
      if (!Number.isSafeInteger(request.sector)) fail(`sector ${request.sector}`);
      break;
    case 'write':
      if (sum(request.buffers) !== request.length) fail(`buffers hold ${sum(request.buffers)} bytes, length says ${request.length}`);
      if (request.buffers.some((b) => !inDescriptors(mem, chain, b, false))) fail('a write buffer is not device-readable');
      if (!Number.isSafeInteger(request.sector)) fail(`sector ${request.sector}`);
      break;
    case 'get-id':
      if (request.buffers.some((b) => !inDescriptors(mem, chain, b, true))) fail('an id buffer is not device-writable');
      break;
    default:
      break;
  }
}

// --- ELF/PVH loader --------------------------------------------------------

const KERNEL = syntheticKernel(PRINT_CMDLINE_AND_REBOOT);
const EHDR = 64;
const PHDR = 56;
/** RAM a little larger than the synthetic kernel needs (it loads at 1 MiB), so "too small" is reachable too. */
const ELF_RAM_SIZE = SYNTHETIC_LOAD_ADDR + 0x10000;
const ELF_RAM = [{ base: 0, size: ELF_RAM_SIZE }];

/** A valid kernel with 1 to 4 mutations: headers, program headers, notes, truncation, trailing bytes. */
function mutatedKernel(rng: Rng): Uint8Array {
  let file: Uint8Array = Uint8Array.from(KERNEL);
  for (let n = 1 + rng.below(4); n > 0; n--) {
    const v = new DataView(file.buffer, file.byteOffset, file.byteLength);
    const at = (off: number, width: number) => off + width <= file.byteLength;
    switch (rng.below(7)) {
      case 0: {
        const off = rng.below(Math.min(file.byteLength, EHDR + 2 * PHDR + 32));
        file[off] = rng.chance(0.5) ? rng.u32() & 0xff : file[off]! ^ (1 << rng.below(8));
        break;
      }
      case 1: { // ELF header: entry, phoff, phentsize, phnum
        const [off, width] = rng.pick([[24, 8], [32, 8], [54, 2], [56, 2]] as const);
        if (!at(off, width)) break;
        if (width === 8) v.setBigUint64(off, interesting64(rng), true);
        else v.setUint16(off, rng.chance(0.5) ? interesting32(rng) & 0xffff : rng.below(8), true);
        break;
      }
      case 2:
      case 3: { // a program header field: type, offset, paddr, filesz, memsz
        const p = EHDR + PHDR * rng.below(2) + rng.pick([0, 8, 24, 32, 40]);
        if (!at(p, 8)) break;
        const near = BigInt(SYNTHETIC_LOAD_ADDR + rng.below(0x20000)) - 0x10000n;
        v.setBigUint64(p, rng.chance(0.5) ? interesting64(rng) : BigInt.asUintN(64, near), true);
        break;
      }
      case 4: { // the PVH note's namesz, descsz or type
        const note = EHDR + 2 * PHDR + 4 * rng.below(3);
        if (at(note, 4)) v.setUint32(note, rng.chance(0.5) ? interesting32(rng) : rng.below(32), true);
        break;
      }
      case 5:
        file = file.subarray(0, rng.below(file.byteLength));
        break;
      default: {
        const grown = new Uint8Array(file.byteLength + rng.below(256));
        grown.set(file);
        grown.set(rng.bytes(grown.byteLength - file.byteLength), file.byteLength);
        file = grown;
      }
    }
  }
  return file;
}

function elfLoader(rng: Rng): void {
  const kernel = new BytesImage(mutatedKernel(rng));
  const initrd = rng.chance(0.2) ? new BytesImage(rng.bytes(rng.below(0x4000))) : undefined;
  const cmdline = 'x'.repeat(rng.chance(0.05) ? CMDLINE_MAX + rng.below(4) - 2 : rng.below(64));
  const plan = refusedWith('planLinuxPvh', BootError, () => planLinuxPvh({ kernel, initrd, cmdline }, ELF_RAM));
  if (plan) loadInto(plan);
}

/** Loads an accepted plan into fresh RAM: it must fit, and write only the segments and the boot structures. */
function loadInto(plan: BootPlan): void {
  const mem = freshRam(ELF_RAM_SIZE);
  const watch = new MemoryWatch(mem);
  for (const seg of plan.segments) {
    if (!mem.checkRange(seg.paddr, seg.fileSize)) throw new FuzzFailure(`a planned segment 0x${seg.paddr.toString(16)}+${seg.fileSize} is outside guest RAM`);
    watch.allow(seg.paddr, seg.fileSize);
  }
  if (plan.initrd) watch.allow(plan.initrd.addr, plan.initrd.image.byteLength);
  watch.allow(CMDLINE_ADDR, plan.cmdline.byteLength + 1);
  // hvm_start_info, the module list and the memory map: the two pages from PVH_START_INFO_ADDR.
  watch.allow(PVH_START_INFO_ADDR, 0x2000);
  refusedWith('loadLinuxPvh', BootError, () => loadLinuxPvh(mem, plan));
  watch.check('loadLinuxPvh');
}

// --- agent frame decoder ---------------------------------------------------

function frame(type: number, body: Uint8Array, length = 1 + body.byteLength): Uint8Array {
  const out = new Uint8Array(5 + body.byteLength);
  new DataView(out.buffer).setUint32(0, length >>> 0);
  out[4] = type;
  out.set(body, 5);
  return out;
}

const utf8 = new TextEncoder();
const dataTypes = [...DATA_TYPES];

/** One frame: valid (the expected message alongside) or broken in one of the ways a hostile agent could. */
function randomFrame(rng: Rng): { bytes: Uint8Array; message?: Message } {
  switch (rng.below(10)) {
    case 0: { // a length outside [1, MAX_FRAME]
      const length = rng.pick([0, MAX_FRAME + 1, 0xffffffff, MAX_FRAME + rng.below(1 << 20)]);
      return { bytes: frame(rng.below(256), rng.bytes(rng.below(16)), length) };
    }
    case 1: // not JSON, or JSON that is not an object
      return { bytes: frame(0x01 + rng.below(16), rng.chance(0.5) ? rng.bytes(rng.below(32)) : utf8.encode(rng.pick(['[]', 'null', '1', '"s"', '{', '{"a":'])) ) };
    case 2: { // a data frame too short for its process id, or too long for MAX_DATA
      const payload = rng.chance(0.5) ? rng.bytes(rng.below(4)) : new Uint8Array(4 + MAX_DATA + 1 + rng.below(16));
      return { bytes: frame(rng.pick(dataTypes), payload) };
    }
    case 3: { // a frame whose length promises more than follows: the stream ends inside it
      const length = rng.chance(0.9) ? 1 + rng.below(0x10000) : MAX_FRAME;
      return { bytes: frame(rng.below(256), rng.bytes(rng.below(Math.min(length, 64))), length) };
    }
    case 4:
    case 5:
    case 6: {
      const type = rng.pick(dataTypes);
      const id = rng.u32();
      const payload = rng.bytes(rng.chance(0.02) ? MAX_DATA : rng.below(300));
      const body = new Uint8Array(4 + payload.byteLength);
      new DataView(body.buffer).setUint32(0, id);
      body.set(payload, 4);
      return { bytes: frame(type, body), message: { type, id, payload } as Message };
    }
    default: {
      const type = rng.below(256);
      if (DATA_TYPES.has(type)) return randomFrame(rng);
      const body = { id: rng.u32(), s: String.fromCodePoint(...Array.from({ length: rng.below(8) }, () => rng.below(0x10ffff) & ~0x800)), n: rng.u32() / 7 };
      return { bytes: frame(type, utf8.encode(JSON.stringify(body))), message: { type, body } as Message };
    }
  }
}

function frameDecoder(rng: Rng): void {
  const frames = Array.from({ length: 1 + rng.below(8) }, () => randomFrame(rng));
  const stream = new Uint8Array(frames.reduce((n, f) => n + f.bytes.byteLength, 0));
  let at = 0;
  for (const f of frames) {
    stream.set(f.bytes, at);
    at += f.bytes.byteLength;
  }
  const decoder = new FrameDecoder();
  const got: Message[] = [];
  // Split anywhere: single bytes, small pieces, or whole.
  for (let off = 0; off < stream.byteLength; ) {
    const n = rng.chance(0.1) ? 1 : rng.chance(0.5) ? 1 + rng.below(64) : stream.byteLength - off;
    const piece = stream.subarray(off, off + n);
    off += n;
    const messages = refusedWith('FrameDecoder.push', ProtocolError, () => decoder.push(piece));
    if (!messages) return; // refused: the channel is out of step and is closed, as the host does
    got.push(...messages);
  }
  // Every frame valid: every message back, equal, in order; otherwise a prefix of them.
  const expected: Message[] = [];
  for (const f of frames) {
    if (!f.message) break;
    expected.push(f.message);
  }
  if (got.length < expected.length && expected.length === frames.length) throw new FuzzFailure(`${expected.length} valid frames decoded as ${got.length} messages`);
  got.slice(0, expected.length).forEach((m, i) => {
    if (JSON.stringify(normalize(m)) !== JSON.stringify(normalize(expected[i]!))) throw new FuzzFailure(`message ${i} decoded as ${JSON.stringify(normalize(m)).slice(0, 200)}`);
  });
  for (const m of got) if ('payload' in m && m.payload.byteLength > MAX_DATA) throw new FuzzFailure(`a data message of ${m.payload.byteLength} bytes`);
}

/** A message in a comparable form (payload bytes as an array). */
function normalize(m: Message): unknown {
  return 'payload' in m ? { type: m.type, id: m.id, payload: Array.from(m.payload) } : m;
}

export const parserTargets: FuzzTarget[] = [
  { name: 'blk-request', run: blockRequest },
  { name: 'elf-pvh', run: elfLoader },
  { name: 'agent-frames', run: frameDecoder },
];
