// Port 0x80 boot-progress markers (as Cloud Hypervisor uses them): a guest
// writes a code at a milestone and the VMM records when, at the cost of one
// exit. Conventional codes: 0x40 kernel started, 0x41 userspace started.
import type { BusDevice } from '../../bus.js';

export const DEBUG_PORT = 0x80;

export class DebugPort implements BusDevice {
  private readonly onMarker: (code: number) => void;

  constructor(onMarker: (code: number) => void) {
    this.onMarker = onMarker;
  }

  read(_offset: number, data: Uint8Array): void {
    data.fill(0);
  }

  write(_offset: number, data: Uint8Array): void {
    this.onMarker(data[0] ?? 0);
  }
}
