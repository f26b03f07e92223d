/**
 * One control-socket connection, either end: frames in (decoded as they
 * come, a protocol error closes the connection), frames out. Backpressure is
 * the socket's own: sendData says when the peer is not keeping up, and the
 * sender stops reading its source until `drain`.
 */
import type { Socket } from 'node:net';
import { encodeControl, encodeDataHeader, FrameDecoder, ProtocolError } from '../guest-agent/frames.js';
import { MAX_DATA } from '../guest-agent/protocol.js';
import { MonitorMessage } from './protocol.js';

export type DataType = typeof MonitorMessage.stdin | typeof MonitorMessage.stdout | typeof MonitorMessage.stderr;

export type Frame =
  | { kind: 'control'; type: number; body: Record<string, unknown> }
  | { kind: 'data'; type: DataType; id: number; payload: Uint8Array };

export interface ConnectionHandler {
  frame(frame: Frame): void;
  /** Once, when the connection has ended: no error for an orderly end. */
  closed(error?: Error): void;
}

/** Bytes queued on the socket beyond which a data sender should wait for drain. */
export const SOCKET_HIGH_WATER = 256 * 1024;

export class Connection {
  private readonly decoder = new FrameDecoder();
  private ended = false;

  constructor(
    readonly socket: Socket,
    private readonly handler: ConnectionHandler,
  ) {
    socket.on('data', (chunk: Buffer) => this.receive(chunk));
    socket.once('end', () => this.finish());
    socket.once('close', () => this.finish());
    socket.once('error', (err) => this.finish(err));
  }

  get closed(): boolean {
    return this.ended;
  }

  send(type: number, body: object): void {
    if (!this.ended && this.socket.writable) this.socket.write(encodeControl({ type, body }));
  }

  /** Sends `payload` in frames of at most MAX_DATA; false when the socket's buffer is full (wait for drain). */
  sendData(type: DataType, id: number, payload: Uint8Array): boolean {
    if (this.ended || !this.socket.writable) return true;
    for (let at = 0; at < payload.length; at += MAX_DATA) {
      const piece = payload.subarray(at, at + MAX_DATA);
      this.socket.cork();
      this.socket.write(encodeDataHeader(type, id, piece.length));
      this.socket.write(piece);
      this.socket.uncork();
    }
    return this.socket.writableLength < SOCKET_HIGH_WATER;
  }

  /** Sends the last message and ends the connection once it is written. */
  end(type?: number, body?: object): void {
    if (type !== undefined && body !== undefined) this.send(type, body);
    this.socket.end();
  }

  private receive(chunk: Uint8Array): void {
    if (this.ended) return;
    try {
      for (const message of this.decoder.push(chunk)) {
        if ('payload' in message) this.handler.frame({ kind: 'data', type: message.type, id: message.id, payload: message.payload });
        else this.handler.frame({ kind: 'control', type: message.type, body: message.body as unknown as Record<string, unknown> });
        if (this.ended) return;
      }
    } catch (err) {
      if (!(err instanceof ProtocolError)) throw err;
      this.socket.destroy();
      this.finish(err);
    }
  }

  private finish(error?: Error): void {
    if (this.ended) return;
    this.ended = true;
    this.handler.closed(error);
  }
}

export { MonitorMessage };
