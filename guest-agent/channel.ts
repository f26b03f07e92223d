/**
 * One end of the agent channel over any byte-stream Duplex: decodes frames
 * into messages for a handler and writes messages out whole and in order.
 * Used by the agent (over the virtio port) and by the host client alike.
 */
import type { Duplex } from 'node:stream';
import { encodeControl, encodeDataHeader, FrameDecoder, ProtocolError } from './frames.js';
import type { ControlMessage, DataMessage, Message } from './protocol.js';

export interface ChannelHandler {
  /** Called in arrival order; throwing a ProtocolError fails the channel. */
  message(message: Message): void;
  /** Called once: no error for an orderly end, else why the channel failed. */
  closed(error?: Error): void;
}

export class Channel {
  private readonly decoder = new FrameDecoder();
  private done = false;

  constructor(
    private readonly stream: Duplex,
    private readonly handler: ChannelHandler,
  ) {
    stream.on('data', (chunk: Buffer) => this.receive(chunk));
    stream.once('end', () => this.finish());
    stream.once('close', () => this.finish());
    stream.once('error', (err) => this.finish(err));
  }

  /** Queues a control message; `written` runs once the transport has taken it. */
  send(message: ControlMessage, written?: (error?: Error | null) => void): void {
    if (this.done) {
      written?.(new Error('agent channel is closed'));
      return;
    }
    this.stream.write(encodeControl(message), written);
  }

  sendData(type: DataMessage['type'], id: number, payload: Buffer): void {
    if (this.done) return;
    // Header and payload in one transport write (writev), without copying the payload.
    this.stream.cork();
    this.stream.write(encodeDataHeader(type, id, payload.length));
    this.stream.write(payload);
    this.stream.uncork();
  }

  get closed(): boolean {
    return this.done;
  }

  /** Ends the channel from this side after what is queued. */
  end(): void {
    if (!this.done) this.stream.end();
  }

  private receive(chunk: Buffer): void {
    if (this.done) return;
    try {
      for (const message of this.decoder.push(chunk)) {
        this.handler.message(message);
        if (this.done) return;
      }
    } catch (err) {
      if (!(err instanceof ProtocolError)) throw err;
      this.finish(err);
      // end, not destroy: what was queued (such as an error report) still goes out.
      this.stream.end();
    }
  }

  private finish(error?: Error): void {
    if (this.done) return;
    this.done = true;
    this.handler.closed(error);
  }
}
