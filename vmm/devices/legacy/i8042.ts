// Just enough of the i8042 keyboard controller for a guest to reset the
// machine: Linux's `reboot=k` writes the pulse-reset command to port 0x64.
import type { BusDevice } from '../../bus.js';

export const I8042_DATA_PORT = 0x60;
export const I8042_COMMAND_PORT = 0x64;
const CMD_PULSE_RESET = 0xfe;

export class I8042 implements BusDevice {
  private readonly onReset: () => void;

  constructor(onReset: () => void) {
    this.onReset = onReset;
  }

  /** Status 0: output buffer empty, input buffer empty (ready for a command). */
  read(_offset: number, data: Uint8Array): void {
    data.fill(0);
  }

  write(offset: number, data: Uint8Array): void {
    if (offset === I8042_COMMAND_PORT - I8042_DATA_PORT && data[0] === CMD_PULSE_RESET) this.onReset();
  }
}
