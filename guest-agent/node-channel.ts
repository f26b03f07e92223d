/**
 * The host's binding of a Channel to a Node Duplex (the VMM's virtio-console
 * port, or a socket in tests).
 */
import type { Duplex } from 'node:stream';
import { Channel, type ChannelHandler } from './channel.js';

export function duplexChannel(stream: Duplex, handler: ChannelHandler): Channel {
  const channel = new Channel(
    {
      write: (buffers, written) => {
        // One writev for a data frame's header and payload.
        stream.cork();
        buffers.forEach((buffer, i) => stream.write(buffer, i === buffers.length - 1 ? written : undefined));
        stream.uncork();
      },
      end: () => stream.end(),
    },
    handler,
  );
  stream.on('data', (chunk: Buffer) => channel.receive(chunk));
  stream.once('end', () => channel.finish());
  stream.once('close', () => channel.finish());
  stream.once('error', (err) => channel.finish(err));
  return channel;
}
