/**
 * The guest end of the agent channel: the virtio-console port named
 * vmctr.agent, found through sysfs (it may appear a little after the agent
 * starts) and opened as a character device.
 */
import { PORT_NAME } from '../protocol.js';
import { decodeUtf8 } from '../utf8.js';
import type { ByteStream, Platform } from './platform.js';

const PORT_WAIT_MS = 10_000;
const PORTS = '/sys/class/virtio-ports';

export async function openPort(platform: Platform, name = PORT_NAME): Promise<ByteStream> {
  const deadline = Date.now() + PORT_WAIT_MS;
  for (;;) {
    let devices: string[] = [];
    try {
      devices = platform.listDirectory(PORTS);
    } catch {
      // not there yet
    }
    for (const dev of devices) {
      const portName = platform.readFile(`${PORTS}/${dev}/name`, 256);
      if (portName && decodeUtf8(portName).trim() === name) return platform.openDevice(`/dev/${dev}`);
    }
    if (Date.now() > deadline) throw new Error(`no virtio-console port named ${name} in ${PORTS}`);
    await platform.sleep(20);
  }
}
