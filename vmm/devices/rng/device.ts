// virtio-rng (virtio 1.2, 5.4): fills the guest's buffers from the host's
// CSPRNG (getrandom(2), through the addon: node:crypto would cost every VM
// start its load time), so the guest kernel has entropy from its first second.
import { native } from '../../kvm/native.js';
import type { TurnBudget } from '../../virtio/budget.js';
import { ChainWriter } from '../../virtio/descriptor-chain.js';
import type { ActivateContext, VirtioDevice } from '../../virtio/device.js';
import { DeviceType } from '../../virtio/spec.js';

const QUEUE_SIZE = 64;
/** Bytes given per request at most: the guest asks again for more. */
const MAX_PER_REQUEST = 64 * 1024;

export class RngDevice implements VirtioDevice {
  readonly deviceType = DeviceType.ENTROPY;
  readonly features = 0n;
  readonly queueMaxSizes = [QUEUE_SIZE];
  private ctx: ActivateContext | undefined;

  readConfig(_offset: number, data: Uint8Array): void {
    data.fill(0);
  }

  writeConfig(): void {}

  activate(ctx: ActivateContext): void {
    this.ctx = ctx;
  }

  queueNotify(_index: number, budget: TurnBudget): void {
    const ctx = this.ctx;
    const q = ctx?.queues[0];
    if (!ctx || !q) return;
    let used = false;
    while (budget.left) {
      const chain = q.pop();
      if (!chain) break;
      const w = new ChainWriter(ctx.mem, chain);
      const bytes = new Uint8Array(Math.min(w.remaining, MAX_PER_REQUEST));
      native.fillRandom(bytes);
      w.write(bytes);
      q.addUsed(chain.head, w.written);
      budget.spend(w.written);
      used = true;
    }
    if (used && q.needsInterrupt()) ctx.interrupt.usedBuffer();
  }

  reset(): void {
    this.ctx = undefined;
  }
}
