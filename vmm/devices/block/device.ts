// virtio-blk (virtio 1.2, 5.2): read-only or read-write, with flush.
// Requests are parsed by request.ts; a malformed chain is a VirtioError
// (the device asks for a reset), a bad sector range completes with IOERR.
import type { TurnBudget } from '../../virtio/budget.js';
import type { ActivateContext, VirtioDevice } from '../../virtio/device.js';
import { readConfigBytes } from '../../virtio/device.js';
import { DeviceType, featureBit } from '../../virtio/spec.js';
import type { BlockBackend } from './backend.js';
import { ID_BYTES, SECTOR_SIZE, Status, parseBlockRequest, type BlockRequest } from './request.js';

// Feature bits (5.2.3).
const F_SEG_MAX = 2;
const F_RO = 5;
const F_BLK_SIZE = 6;
const F_FLUSH = 9;

const QUEUE_SIZE = 256;
/** Data segments per request we accept (the queue minus header and status). */
const SEG_MAX = QUEUE_SIZE - 2;

export class BlockDevice implements VirtioDevice {
  readonly deviceType = DeviceType.BLOCK;
  readonly features: bigint;
  readonly queueMaxSizes = [QUEUE_SIZE];
  private readonly backend: BlockBackend;
  private readonly id: Uint8Array;
  /** struct virtio_blk_config up to blk_size: capacity, size_max, seg_max, geometry, blk_size. */
  private readonly config = new Uint8Array(24);
  private ctx: ActivateContext | undefined;
  /** Completed requests, for tests and statistics. */
  requests = 0;

  constructor(backend: BlockBackend, serial: string) {
    this.backend = backend;
    this.features = featureBit(F_SEG_MAX) | featureBit(F_BLK_SIZE) | featureBit(F_FLUSH) | (backend.readOnly ? featureBit(F_RO) : 0n);
    const v = new DataView(this.config.buffer);
    v.setBigUint64(0, BigInt(backend.size / SECTOR_SIZE), true);
    v.setUint32(12, SEG_MAX, true);
    v.setUint32(20, SECTOR_SIZE, true);
    this.id = new Uint8Array(ID_BYTES);
    this.id.set(new TextEncoder().encode(serial).subarray(0, ID_BYTES));
  }

  readConfig(offset: number, data: Uint8Array): void {
    readConfigBytes(this.config, offset, data);
  }

  writeConfig(): void {}

  activate(ctx: ActivateContext): void {
    this.ctx = ctx;
  }

  reset(): void {
    this.ctx = undefined;
  }

  queueNotify(_index: number, budget: TurnBudget): void {
    const ctx = this.ctx;
    const q = ctx?.queues[0];
    if (!ctx || !q) return;
    let used = false;
    while (budget.left) {
      const chain = q.pop();
      if (!chain) break;
      const { request, status } = parseBlockRequest(ctx.mem, chain);
      const { code, written } = this.execute(request);
      status[0] = code;
      q.addUsed(chain.head, written + 1);
      // The header and any data read from the guest, and the data written to it.
      budget.spend(chain.readableBytes + written);
      this.requests++;
      used = true;
    }
    if (used && q.needsInterrupt()) ctx.interrupt.usedBuffer();
  }

  /** Runs one request against the backend: its status and the data bytes written to the guest. */
  private execute(r: BlockRequest): { code: number; written: number } {
    switch (r.type) {
      case 'read':
      case 'write': {
        if (r.type === 'write' && this.backend.readOnly) return { code: Status.IOERR, written: 0 };
        const pos = r.sector * SECTOR_SIZE;
        if (r.length % SECTOR_SIZE !== 0 || pos + r.length > this.backend.size || !Number.isSafeInteger(pos + r.length)) return { code: Status.IOERR, written: 0 };
        let at = pos;
        try {
          for (const buf of r.buffers) {
            if (r.type === 'read') this.backend.read(at, buf);
            else this.backend.write(at, buf);
            at += buf.byteLength;
          }
        } catch {
          return { code: Status.IOERR, written: 0 };
        }
        return { code: Status.OK, written: r.type === 'read' ? r.length : 0 };
      }
      case 'flush':
        try {
          this.backend.flush();
          return { code: Status.OK, written: 0 };
        } catch {
          return { code: Status.IOERR, written: 0 };
        }
      case 'get-id': {
        let written = 0;
        for (const buf of r.buffers) {
          const part = this.id.subarray(written, written + buf.byteLength);
          buf.set(part);
          written += part.byteLength;
        }
        return { code: Status.OK, written };
      }
      case 'unsupported':
        return { code: Status.UNSUPP, written: 0 };
    }
  }
}
