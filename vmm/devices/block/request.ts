// Parsing a virtio-blk request (virtio 1.2, 5.2.6) out of a descriptor
// chain: a pure function, so every malformed shape is unit-testable.
// Layout: a 16-byte device-readable header, data buffers (readable for
// writes, writable for reads), and a 1-byte device-writable status.
import { ChainReader, type DescriptorChain } from '../../virtio/descriptor-chain.js';
import { VirtioError, type VirtioMemory } from '../../virtio/memory.js';

export const SECTOR_SIZE = 512;
export const HEADER_SIZE = 16;

export const RequestType = { IN: 0, OUT: 1, FLUSH: 4, GET_ID: 8 } as const;
export const Status = { OK: 0, IOERR: 1, UNSUPP: 2 } as const;
/** GET_ID returns a 20-byte serial (5.2.6). */
export const ID_BYTES = 20;

export type BlockRequest =
  | { type: 'read'; sector: number; buffers: Uint8Array[]; length: number }
  | { type: 'write'; sector: number; buffers: Uint8Array[]; length: number }
  | { type: 'flush' }
  | { type: 'get-id'; buffers: Uint8Array[] }
  | { type: 'unsupported'; code: number };

export interface ParsedRequest {
  request: BlockRequest;
  /** The status byte: the last device-writable byte of the chain. */
  status: Uint8Array;
}

/** Splits a chain into a request and its status byte; throws VirtioError if it has no such shape. */
export function parseBlockRequest(mem: VirtioMemory, chain: DescriptorChain): ParsedRequest {
  const reader = new ChainReader(mem, chain);
  if (reader.remaining < HEADER_SIZE) throw new VirtioError(`block request header needs ${HEADER_SIZE} readable bytes, the chain has ${reader.remaining}`);
  const header = new DataView(reader.read(HEADER_SIZE).buffer);
  const type = header.getUint32(0, true);
  const sector = header.getBigUint64(8, true);

  const writable = chain.writableBytes;
  if (writable < 1) throw new VirtioError('block request has no status byte');
  // Everything writable but the last byte is data; the last byte is status.
  const dataIn = writerViews(mem, chain, writable - 1);
  const status = lastWritableByte(mem, chain);

  const sectorNumber = sector > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(sector);
  switch (type) {
    case RequestType.IN:
      return { request: { type: 'read', sector: sectorNumber, buffers: dataIn, length: writable - 1 }, status };
    case RequestType.OUT: {
      const length = reader.remaining;
      return { request: { type: 'write', sector: sectorNumber, buffers: reader.rest(), length }, status };
    }
    case RequestType.FLUSH:
      return { request: { type: 'flush' }, status };
    case RequestType.GET_ID:
      return { request: { type: 'get-id', buffers: dataIn }, status };
    default:
      return { request: { type: 'unsupported', code: type }, status };
  }
}

/** Views over the first `n` device-writable bytes. */
function writerViews(mem: VirtioMemory, chain: DescriptorChain, n: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (const d of chain.descriptors) {
    if (!d.writable || n === 0) continue;
    const take = Math.min(n, d.len);
    if (take > 0) out.push(mem.slice(d.addr, take));
    n -= take;
  }
  return out;
}

function lastWritableByte(mem: VirtioMemory, chain: DescriptorChain): Uint8Array {
  for (let i = chain.descriptors.length - 1; i >= 0; i--) {
    const d = chain.descriptors[i]!;
    if (d.writable && d.len > 0) return mem.slice(d.addr + d.len - 1, 1);
  }
  throw new VirtioError('block request has no status byte');
}
