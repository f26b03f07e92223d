/**
 * The guest end of the agent channel: the virtio-console port named
 * vmctr.agent, found through sysfs and opened as a character device. Node's
 * net module refuses character devices, so this Duplex reads and writes
 * through a FileHandle (one read and one write in flight at a time).
 */
import { open, readdir, readFile, type FileHandle } from 'node:fs/promises';
import { Duplex } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { MAX_DATA, PORT_NAME } from './protocol.js';

const PORT_WAIT_MS = 10_000;

export async function findPort(name = PORT_NAME): Promise<string> {
  const deadline = Date.now() + PORT_WAIT_MS;
  for (;;) {
    for (const dev of await readdir('/sys/class/virtio-ports').catch(() => [])) {
      const portName = await readFile(`/sys/class/virtio-ports/${dev}/name`, 'utf8').catch(() => '');
      if (portName.trim() === name) return `/dev/${dev}`;
    }
    if (Date.now() > deadline) throw new Error(`no virtio-console port named ${name} in /sys/class/virtio-ports`);
    await sleep(20);
  }
}

export class PortStream extends Duplex {
  private readonly connected: Promise<void>;
  private markConnected!: () => void;

  private constructor(private readonly handle: FileHandle) {
    super();
    this.connected = new Promise((resolve) => (this.markConnected = resolve));
  }

  static async open(path: string): Promise<PortStream> {
    return new PortStream(await open(path, 'r+'));
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.writeAll([chunk]).then(() => callback(), callback);
  }

  override _writev(chunks: Array<{ chunk: Buffer }>, callback: (error?: Error | null) => void): void {
    this.writeAll(chunks.map((c) => c.chunk)).then(() => callback(), callback);
  }

  override _read(): void {
    // Until the host has opened its end a read returns 0 at once, which would
    // look like the end; a write blocks until the host is there instead.
    this.connected
      .then(() => this.handle.read(Buffer.allocUnsafe(MAX_DATA), 0, MAX_DATA, null))
      .then(
        ({ bytesRead, buffer }) => this.push(bytesRead > 0 ? buffer.subarray(0, bytesRead) : null),
        (err: Error) => this.destroy(err),
      );
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.handle.close().then(() => callback(error), () => callback(error));
  }

  private async writeAll(buffers: Buffer[]): Promise<void> {
    let pending = buffers.filter((b) => b.length > 0);
    while (pending.length) {
      let { bytesWritten } = await this.handle.writev(pending);
      while (pending.length && bytesWritten >= pending[0]!.length) bytesWritten -= pending.shift()!.length;
      if (bytesWritten > 0) pending[0] = pending[0]!.subarray(bytesWritten);
    }
    this.markConnected();
  }
}
