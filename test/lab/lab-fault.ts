/**
 * Why a lab died. A LabFault means L1 itself failed (its kernel, QEMU, or the
 * channel to its agent), not a command run inside it: the one kind of failure
 * a test may be retried for on a fresh L1.
 */
import type { ConsoleFaultKind } from './l1-console.js';

export type LabFaultKind = ConsoleFaultKind | 'boot-failed' | 'qemu-exit' | 'silent-hang' | 'channel';

export class LabFault extends Error {
  override readonly name = 'LabFault';

  constructor(
    readonly kind: LabFaultKind,
    readonly detail: string,
    /** Where L1's console (with any CPU report appended) was kept. */
    readonly consoleLog: string,
    consoleTail: string,
  ) {
    const [headline, ...report] = detail.split('\n');
    super([`lab fault (${kind}): ${headline}; L1 console kept at ${consoleLog}`, ...report, '--- L1 console, last lines ---', consoleTail].join('\n'));
  }
}
