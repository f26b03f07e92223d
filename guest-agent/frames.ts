/**
 * Framing: [u32 BE length][u8 type][body], the length counting the type byte
 * and the body. Control bodies are UTF-8 JSON objects; data bodies are a u32
 * BE process id followed by raw bytes, so stdio is never re-encoded.
 * Plain Uint8Arrays, no Buffer: the agent runs this code on QuickJS.
 */
import { DATA_TYPES, MAX_DATA, MAX_FRAME, type ControlMessage, type DataMessage, type Message } from './protocol.js';
import { decodeUtf8, encodeUtf8 } from './utf8.js';

export class ProtocolError extends Error {
  override name = 'ProtocolError';
}

/** Any control frame: the agent's messages, and the monitor protocol's, which shares the framing. */
export function encodeControl(message: { type: number; body: object }): Uint8Array {
  const json = encodeUtf8(JSON.stringify(message.body));
  if (json.length + 1 > MAX_FRAME) throw new ProtocolError(`message too large: ${json.length} bytes`);
  const frame = new Uint8Array(5 + json.length);
  const view = new DataView(frame.buffer);
  view.setUint32(0, 1 + json.length);
  view.setUint8(4, message.type);
  frame.set(json, 5);
  return frame;
}

/** The 9-byte prefix of a data frame; the payload follows as its own buffer (no copy). */
export function encodeDataHeader(type: DataMessage['type'], id: number, payloadLength: number): Uint8Array {
  if (payloadLength > MAX_DATA) throw new ProtocolError(`data frame too large: ${payloadLength} bytes`);
  const header = new Uint8Array(9);
  const view = new DataView(header.buffer);
  view.setUint32(0, 5 + payloadLength);
  view.setUint8(4, type);
  view.setUint32(5, id);
  return header;
}

function readUint32(bytes: Uint8Array, offset: number): number {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(offset);
}

/**
 * Reassembles frames from arbitrarily split chunks. Chunks are kept as a list
 * and joined once per frame, and a frame's length is read once, so a peer
 * dribbling single bytes costs linear time, not quadratic.
 */
export class FrameDecoder {
  private chunks: Uint8Array[] = [];
  private buffered = 0;
  /** The length of the frame being assembled, once its 4 bytes have arrived. */
  private frameLength: number | undefined;

  push(chunk: Uint8Array): Message[] {
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    const messages: Message[] = [];
    for (;;) {
      if (this.frameLength === undefined) {
        if (this.buffered < 4) break;
        const length = readUint32(this.take(4), 0);
        if (length < 1 || length > MAX_FRAME) throw new ProtocolError(`channel out of step: frame length ${length}`);
        this.frameLength = length;
      }
      if (this.buffered < this.frameLength) break;
      const frame = this.take(this.frameLength);
      this.frameLength = undefined;
      messages.push(decodeFrame(frame[0]!, frame.subarray(1)));
    }
    return messages;
  }

  /** Removes the next `length` buffered bytes; a slice without copying when one chunk holds them. */
  private take(length: number): Uint8Array {
    const pieces: Uint8Array[] = [];
    let used = 0;
    for (let need = length; need > 0; ) {
      const head = this.chunks[used]!;
      if (head.length <= need) {
        pieces.push(head);
        used++;
        need -= head.length;
      } else {
        pieces.push(head.subarray(0, need));
        this.chunks[used] = head.subarray(need);
        need = 0;
      }
    }
    // One splice, not a shift per chunk: shifting a long array is linear each time.
    this.chunks.splice(0, used);
    this.buffered -= length;
    return pieces.length === 1 ? pieces[0]! : concatBytes(pieces, length);
  }
}

/** The pieces joined into one new array (Buffer.concat without Buffer). */
export function concatBytes(pieces: Uint8Array[], length = pieces.reduce((sum, p) => sum + p.length, 0)): Uint8Array {
  const joined = new Uint8Array(length);
  let at = 0;
  for (const piece of pieces) {
    joined.set(piece, at);
    at += piece.length;
  }
  return joined;
}

function decodeFrame(type: number, body: Uint8Array): Message {
  if (DATA_TYPES.has(type)) {
    if (body.length < 4) throw new ProtocolError(`data frame of type ${type} without a process id`);
    if (body.length - 4 > MAX_DATA) throw new ProtocolError(`data frame of ${body.length - 4} bytes, above ${MAX_DATA}`);
    return { type: type as DataMessage['type'], id: readUint32(body, 0), payload: body.subarray(4) };
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(decodeUtf8(body));
  } catch {
    throw new ProtocolError(`frame of type ${type} is not JSON`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new ProtocolError(`frame of type ${type} is not a JSON object`);
  }
  // Field shapes are checked by the receiver, which knows what it expects of each type.
  return { type, body: parsed } as ControlMessage;
}
