/**
 * Credit-based flow control per stdio stream, as in SSH channels and HTTP/2:
 * a sender never has more than its credit in flight, and a receiver returns
 * credit only as bytes leave its buffer. One slow stream therefore cannot
 * stall the shared channel, and neither side buffers more than
 * INITIAL_CREDIT per stream, whatever the producer's speed.
 */
import { ProtocolError } from './frames.js';
import { CREDIT_BATCH, INITIAL_CREDIT, MAX_DATA } from './protocol.js';

export class StreamClosedError extends Error {
  override name = 'StreamClosedError';
}

/** The sending half: splits chunks into data frames and waits for credit. */
export class CreditedSender {
  private credit = INITIAL_CREDIT;
  private waiting: { resume: () => void; fail: (err: Error) => void } | undefined;
  private closedBecause: Error | undefined;

  constructor(private readonly write: (payload: Uint8Array) => void) {}

  async send(chunk: Uint8Array): Promise<void> {
    for (let offset = 0; offset < chunk.length;) {
      while (this.credit === 0) {
        if (this.closedBecause) throw this.closedBecause;
        await new Promise<void>((resume, fail) => (this.waiting = { resume, fail }));
      }
      if (this.closedBecause) throw this.closedBecause;
      const length = Math.min(this.credit, MAX_DATA, chunk.length - offset);
      this.write(chunk.subarray(offset, offset + length));
      this.credit -= length;
      offset += length;
    }
  }

  grant(bytes: number): void {
    this.credit += bytes;
    this.wake()?.resume();
  }

  /** Fails a pending and every later send: the receiver is gone. */
  close(reason: Error): void {
    this.closedBecause ??= reason;
    this.wake()?.fail(reason);
  }

  private wake(): { resume: () => void; fail: (err: Error) => void } | undefined {
    const waiting = this.waiting;
    this.waiting = undefined;
    return waiting;
  }
}

/** The receiving half's accounting: enforces the sender's credit and batches credit returns. */
export class CreditReceiver {
  private outstanding = 0;
  private unreturned = 0;

  constructor(
    private readonly name: string,
    private readonly returnCredit: (bytes: number) => void,
  ) {}

  /** Bytes arrived from the peer; a peer exceeding its credit is broken or hostile. */
  received(bytes: number): void {
    this.outstanding += bytes;
    if (this.outstanding > INITIAL_CREDIT) {
      throw new ProtocolError(`${this.name}: peer sent ${this.outstanding} bytes on a credit of ${INITIAL_CREDIT}`);
    }
  }

  /** Bytes left the buffer (read by the consumer or written to the process). */
  consumed(bytes: number): void {
    this.unreturned += bytes;
    if (this.unreturned >= CREDIT_BATCH) {
      this.outstanding -= this.unreturned;
      this.returnCredit(this.unreturned);
      this.unreturned = 0;
    }
  }
}
