/**
 * One end of the agent channel over any byte transport: decodes frames into
 * messages for a handler and writes messages out whole and in order. The
 * same code runs in the agent (QuickJS, over the virtio port) and in the host
 * client (Node, over a Duplex: node-channel.ts), so each side binds its own
 * transport: it calls receive() with what arrives and finish() at its end.
 */
import { encodeControl, encodeDataHeader, FrameDecoder, ProtocolError } from './frames.js';
import type { ControlMessage, DataMessage, Message } from './protocol.js';

export interface ChannelHandler {
  /** Called in arrival order; throwing a ProtocolError fails the channel. */
  message(message: Message): void;
  /** Called once: no error for an orderly end, else why the channel failed. */
  closed(error?: Error): void;
}

export interface Transport {
  /** Writes the buffers in order, as one unit; `written` runs once the transport has taken them. */
  write(buffers: Uint8Array[], written?: (error?: Error | null) => void): void;
  /** Ends the transport after what is queued. */
  end(): void;
}

export class Channel {
  private readonly decoder = new FrameDecoder();
  private done = false;

  constructor(
    private readonly transport: Transport,
    private readonly handler: ChannelHandler,
  ) {}

  /** Queues a control message; `written` runs once the transport has taken it. */
  send(message: ControlMessage, written?: (error?: Error | null) => void): void {
    if (this.done) {
      written?.(new Error('agent channel is closed'));
      return;
    }
    this.transport.write([encodeControl(message)], written);
  }

  sendData(type: DataMessage['type'], id: number, payload: Uint8Array): void {
    if (this.done) return;
    // Header and payload in one transport write, without copying the payload.
    this.transport.write([encodeDataHeader(type, id, payload.length), payload]);
  }

  get closed(): boolean {
    return this.done;
  }

  /** Ends the channel from this side after what is queued. */
  end(): void {
    if (!this.done) this.transport.end();
  }

  /** Bytes from the transport, as they come. */
  receive(chunk: Uint8Array): void {
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
      this.transport.end();
    }
  }

  /** The transport ended (with an error if it failed). */
  finish(error?: Error): void {
    if (this.done) return;
    this.done = true;
    this.handler.closed(error);
  }
}
