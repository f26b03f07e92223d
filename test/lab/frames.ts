/**
 * Wire format of the lab's control channel (a virtio-serial port): each
 * frame is [u32 BE total length][u32 BE header length][JSON header][payload],
 * so stdio bytes travel raw and commands are multiplexed by header id.
 */

/** The name of the virtio-serial port (qemu virtserialport,name=...) the agent serves on. */
export const PORT_NAME = 'vmctr.lab';

export type Frame = { header: FrameHeader; payload: Buffer };

/**
 * Host to agent: spawn, stdin, stdin-end, kill, ping, shutdown. Agent to
 * host: hello, symbols (L1's kallsyms, once), stdout, stderr, exit, pong
 * (the heartbeat: an L1 that stops answering is hung even when no watchdog
 * of its own fires).
 */
export type FrameHeader =
  | { t: 'hello'; kernel: string; node: string }
  | { t: 'spawn'; id: number; argv: string[]; cwd: string; env: Record<string, string> }
  | { t: 'stdin' | 'stdin-end' | 'stdout' | 'stderr'; id: number }
  | { t: 'kill'; id: number; signal: NodeJS.Signals }
  | { t: 'exit'; id: number; code: number | null; signal: NodeJS.Signals | null; error?: string }
  | { t: 'ping' | 'pong'; seq: number }
  | { t: 'symbols' }
  | { t: 'shutdown' };

// Far above any real frame: a larger length means the stream is out of step.
const MAX_FRAME = 64 * 1024 * 1024;

export function encodeFrame(header: FrameHeader, payload: Buffer = Buffer.alloc(0)): Buffer {
  const json = Buffer.from(JSON.stringify(header));
  const prefix = Buffer.alloc(8);
  prefix.writeUInt32BE(4 + json.length + payload.length, 0);
  prefix.writeUInt32BE(json.length, 4);
  return Buffer.concat([prefix, json, payload]);
}

/** Reassembles frames from arbitrarily split chunks. */
export class FrameDecoder {
  private buffered: Buffer = Buffer.alloc(0);

  push(chunk: Buffer): Frame[] {
    this.buffered = this.buffered.length ? Buffer.concat([this.buffered, chunk]) : chunk;
    const frames: Frame[] = [];
    while (this.buffered.length >= 4) {
      const total = this.buffered.readUInt32BE(0);
      if (total < 4 || total > MAX_FRAME) throw new Error(`lab channel out of step: frame length ${total}`);
      if (this.buffered.length < 4 + total) break;
      const headerLength = this.buffered.readUInt32BE(4);
      if (headerLength > total - 4) throw new Error(`lab channel out of step: header length ${headerLength} in a ${total}-byte frame`);
      const header = JSON.parse(this.buffered.subarray(8, 8 + headerLength).toString()) as FrameHeader;
      // Copy the payload: the receiver may keep it after the buffer is reused.
      const payload = Buffer.from(this.buffered.subarray(8 + headerLength, 4 + total));
      frames.push({ header, payload });
      this.buffered = this.buffered.subarray(4 + total);
    }
    return frames;
  }
}
