// How much guest-driven work one queue gets per event-loop turn. A vCPU can
// post buffers as fast as the device takes them, so a queue loop that runs
// until the ring is empty may never end: timers, signal handlers and the
// other devices would starve. A device stops when its budget is spent; the
// transport continues the queue on a later turn (setImmediate), after the
// event loop has run everything else that was waiting.

/**
 * Chains per turn: the largest queue vmctr offers (256 entries), so a
 * driver that fills its queue once is served in one turn; more than that
 * means it is refilling while the device works.
 */
export const TURN_CHAINS = 256;

/**
 * Bytes moved per turn (copied, read or written): 1 MiB is well under a
 * millisecond of copying or page-cache I/O, so a timer is late by about that
 * much at worst. Checked between chains: a turn ends at the first chain that
 * reaches it, so it moves at most this plus one chain's bytes.
 */
export const TURN_BYTES = 1 << 20;

export class TurnBudget {
  private chains = TURN_CHAINS;
  private bytes = TURN_BYTES;

  /** Whether the device may take another chain this turn. */
  get left(): boolean {
    return this.chains > 0 && this.bytes > 0;
  }

  /** One chain done, `bytes` moved for it. */
  spend(bytes: number): void {
    this.chains--;
    this.bytes -= bytes;
  }
}
