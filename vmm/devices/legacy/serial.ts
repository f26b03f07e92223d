// A 16550A UART: the guest console. Register map and bits from the
// National Semiconductor PC16550D datasheet (and Linux's serial_reg.h).
import type { BusDevice } from '../../bus.js';

export const COM1_PORT = 0x3f8;
export const COM1_IRQ = 4;
export const UART_PORTS = 8;

// Register offsets from the base port.
const DATA = 0; // RBR (read) / THR (write); DLL when DLAB=1
const IER = 1; // interrupt enable; DLM when DLAB=1
const IIR = 2; // interrupt identification (read) / FCR (write)
const LCR = 3;
const MCR = 4;
const LSR = 5;
const MSR = 6;
const SCR = 7;

const IER_RDA = 0x01; // received data available
const IER_THRE = 0x02; // transmit holding register empty
const IER_MASK = 0x0f;
const IIR_NONE = 0x01;
const IIR_THRE = 0x02;
const IIR_RDA = 0x04;
const IIR_FIFO_ENABLED = 0xc0;
const LCR_DLAB = 0x80;
const LSR_DATA_READY = 0x01;
const LSR_THR_EMPTY = 0x20;
const LSR_IDLE = 0x40;
const MCR_LOOP = 0x10;
// In loopback, MCR outputs feed MSR inputs: DTR->DSR, RTS->CTS, OUT1->RI, OUT2->DCD.
const MSR_CTS = 0x10;
const MSR_DSR = 0x20;
const MSR_RI = 0x40;
const MSR_DCD = 0x80;

/** Receive FIFO bound: input beyond this waits in the host's stream, not in VMM memory. */
const RX_LIMIT = 64 * 1024;
/**
 * The 16550's receive FIFO: in loopback the guest feeds the receiver itself,
 * one byte per exit and as fast as it likes, and what the FIFO cannot hold
 * is lost as on the chip (an overrun). Linux's loopback probe sends one byte.
 */
const FIFO_SIZE = 16;

export interface SerialSink {
  /** false: the sink is full (the UART cannot wait and ignores it; virtio-console can). */
  write(bytes: Uint8Array): boolean | void;
}

/**
 * 16550A with an unbounded-speed transmitter: THR writes go straight to the
 * sink, so THRE is always set. The interrupt is edge-signalled through
 * `raiseIrq` (an irqfd) whenever a newly pending condition appears.
 */
export class Serial implements BusDevice {
  private ier = 0;
  private lcr = 0x03; // 8N1
  private mcr = 0x08; // OUT2
  private scr = 0;
  private dll = 0x0c; // 9600 baud
  private dlm = 0;
  private threPending = false;
  private readonly rx: number[] = [];
  private readonly out: SerialSink;
  private readonly raiseIrq: () => void;

  constructor(out: SerialSink, raiseIrq: () => void) {
    this.out = out;
    this.raiseIrq = raiseIrq;
  }

  /** Queues host input for the guest; returns false once the FIFO is full. */
  enqueueInput(bytes: Uint8Array): boolean {
    for (const b of bytes) {
      if (this.rx.length >= RX_LIMIT) return false;
      this.rx.push(b);
    }
    if (this.ier & IER_RDA) this.raiseIrq();
    return true;
  }

  read(offset: number, data: Uint8Array): void {
    data.fill(0);
    data[0] = this.readRegister(offset);
  }

  write(offset: number, data: Uint8Array): void {
    this.writeRegister(offset, data[0] ?? 0);
  }

  private get loopback(): boolean {
    return (this.mcr & MCR_LOOP) !== 0;
  }

  private readRegister(offset: number): number {
    switch (offset) {
      case DATA:
        if (this.lcr & LCR_DLAB) return this.dll;
        return this.rx.shift() ?? 0;
      case IER:
        return this.lcr & LCR_DLAB ? this.dlm : this.ier;
      case IIR: {
        // Highest priority first; reading IIR acknowledges a THRE interrupt.
        if (this.ier & IER_RDA && this.rx.length > 0) return IIR_RDA | IIR_FIFO_ENABLED;
        if (this.ier & IER_THRE && this.threPending) {
          this.threPending = false;
          return IIR_THRE | IIR_FIFO_ENABLED;
        }
        return IIR_NONE | IIR_FIFO_ENABLED;
      }
      case LCR:
        return this.lcr;
      case MCR:
        return this.mcr;
      case LSR:
        return LSR_THR_EMPTY | LSR_IDLE | (this.rx.length > 0 ? LSR_DATA_READY : 0);
      case MSR:
        if (this.loopback) {
          return ((this.mcr & 0x01) ? MSR_DSR : 0) | ((this.mcr & 0x02) ? MSR_CTS : 0) | ((this.mcr & 0x04) ? MSR_RI : 0) | ((this.mcr & 0x08) ? MSR_DCD : 0);
        }
        return MSR_DCD | MSR_DSR | MSR_CTS; // carrier, data set ready, clear to send
      case SCR:
        return this.scr;
      default:
        return 0;
    }
  }

  private writeRegister(offset: number, value: number): void {
    switch (offset) {
      case DATA:
        if (this.lcr & LCR_DLAB) {
          this.dll = value;
        } else if (this.loopback) {
          if (this.rx.length < FIFO_SIZE) this.rx.push(value);
          if (this.ier & IER_RDA) this.raiseIrq();
        } else {
          this.out.write(Uint8Array.of(value));
          this.signalThre();
        }
        break;
      case IER:
        if (this.lcr & LCR_DLAB) {
          this.dlm = value;
        } else {
          const enabledThre = value & IER_THRE & ~this.ier;
          this.ier = value & IER_MASK;
          // The transmitter is always empty: enabling THRE interrupts fires one at once.
          if (enabledThre) this.signalThre();
          else if (this.ier & IER_RDA && this.rx.length > 0) this.raiseIrq();
        }
        break;
      case IIR:
        break; // FCR: the FIFO is always on and never needs clearing
      case LCR:
        this.lcr = value;
        break;
      case MCR:
        this.mcr = value & 0x1f;
        break;
      case SCR:
        this.scr = value;
        break;
      default:
        break;
    }
  }

  private signalThre(): void {
    this.threPending = true;
    if (this.ier & IER_THRE) this.raiseIrq();
  }
}
