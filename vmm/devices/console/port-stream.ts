// A console port as a Node Duplex, for in-process protocol clients (the
// host-agent channel): guest output is readable with backpressure into the
// guest's transmit queue, and writes complete once the guest has the bytes.
import { Duplex } from 'node:stream';
import type { ConsoleDevice } from './device.js';
import type { PortHandler } from './port.js';

export class ConsolePortStream extends Duplex implements PortHandler {
  private device: ConsoleDevice | undefined;
  private port = -1;

  /** Connects the stream to its port once the device exists. */
  attach(device: ConsoleDevice, port: number): void {
    this.device = device;
    this.port = port;
  }

  output(bytes: Uint8Array): boolean {
    return this.push(bytes);
  }

  override _read(): void {
    this.device?.resume(this.port);
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, callback: (err?: Error | null) => void): void {
    if (!this.device) {
      callback(new Error('console port is not attached to a device'));
      return;
    }
    if (!this.device.input(this.port, chunk, () => callback())) callback(new Error('console port backlog is full'));
  }
}
