// The other end of a native Unix stream socket, for tests: a Node server
// that accepts one connection and leaves it unread (pauseOnConnect), so the
// test drives the accepted fd with the addon's sendWithFds and recvWithFds
// and can pass fds both ways, which Node's own sockets cannot.
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface StreamPeer {
  path: string;
  /** The accepted connection's fd (non-blocking, as libuv makes it). */
  accept(): Promise<number>;
  /** Closes the accepted connection, as a back-end that exits does. */
  hangUp(): Promise<void>;
  /** Ends the accepted connection's sending side: the client reads EOF once it has read what was sent. */
  endWrites(): Promise<void>;
  close(): Promise<void>;
}

export async function listenStream(): Promise<StreamPeer> {
  const dir = mkdtempSync(join(tmpdir(), 'vmctr-stream-'));
  const path = join(dir, 'sock');
  const server = createServer({ pauseOnConnect: true });
  let accepted: Socket | undefined;
  const connection = new Promise<Socket>((resolve) =>
    server.once('connection', (socket: Socket) => {
      accepted = socket;
      resolve(socket);
    }),
  );
  await new Promise<void>((resolve) => server.listen(path, resolve));
  return {
    path,
    // No public API gives a net.Socket's fd; _handle.fd is libuv's.
    accept: async () => ((await connection) as unknown as { _handle: { fd: number } })._handle.fd,
    hangUp: async () => {
      const socket = await connection;
      if (!socket.destroyed) await new Promise<void>((resolve) => socket.once('close', () => resolve()).destroy());
    },
    endWrites: async () => {
      const socket = await connection;
      await new Promise<void>((resolve) => socket.end(resolve));
    },
    close: async () => {
      accepted?.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
