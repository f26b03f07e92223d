/**
 * L1's serial console: QEMU's stdout goes through here into the console log,
 * line by line, so a dying L1 is recognised by what its kernel prints (soft
 * lockup, RCU stall, hung task, panic, oops) the moment it prints it.
 */
import { createWriteStream, type WriteStream } from 'node:fs';
import type { Readable } from 'node:stream';

export type ConsoleFaultKind = 'soft-lockup' | 'hard-lockup' | 'rcu-stall' | 'hung-task' | 'oops' | 'panic' | 'lab-init';

export interface ConsoleFault {
  kind: ConsoleFaultKind;
  line: string;
}

// Linux's own wording (kernel/watchdog.c, kernel/rcu/tree_stall.h,
// kernel/hung_task.c, kernel/panic.c, arch/x86/mm/fault.c); the first match wins.
const PATTERNS: ReadonlyArray<[RegExp, ConsoleFaultKind]> = [
  [/BUG: soft lockup - CPU#\d+ stuck for/, 'soft-lockup'],
  [/Watchdog detected hard LOCKUP on cpu/, 'hard-lockup'],
  [/rcu: INFO: rcu_\w+ (self-)?detected stalls?/, 'rcu-stall'],
  [/INFO: task .+ blocked for more than \d+ seconds/, 'hung-task'],
  [/BUG: unable to handle|general protection fault|kernel BUG at|Oops: /, 'oops'],
  [/Kernel panic - not syncing/, 'panic'],
  [/^lab-init: (?!agent exited with status 0$)/, 'lab-init'],
];

/** What a console line says about L1's health: a fault, or nothing. Pure. */
export function classifyConsoleLine(line: string): ConsoleFault | undefined {
  // The kernel prefixes "[   12.345678] " (printk time); the lab init prints bare lines.
  const text = line.replace(/^\[\s*\d+\.\d+\]\s*/, '').trimEnd();
  for (const [pattern, kind] of PATTERNS) if (pattern.test(text)) return { kind, line: text };
  return undefined;
}

const TAIL_LINES = 40;

/** Copies console streams into a file and reports the first fault line it sees. */
export class ConsoleLog {
  /** Called once, with the first fault line. */
  onFault: (fault: ConsoleFault) => void = () => {};
  private readonly file: WriteStream;
  private partial = '';
  private fault: ConsoleFault | undefined;
  private readonly recent: string[] = [];

  constructor(readonly path: string) {
    this.file = createWriteStream(path, { flags: 'a' });
  }

  /** Copies `source` (QEMU's stdout or stderr) into the log, scanning it line by line. */
  attach(source: Readable): void {
    source.on('data', (chunk: Buffer) => {
      this.file.write(chunk);
      const lines = (this.partial + chunk.toString('latin1')).split('\n');
      this.partial = lines.pop() ?? '';
      // An unterminated line can grow without bound only if L1 never prints a newline.
      if (this.partial.length > 4096) this.partial = this.partial.slice(-4096);
      for (const line of lines) this.scan(line);
    });
  }

  /** The first fault line seen, if any. */
  get firstFault(): ConsoleFault | undefined {
    return this.fault;
  }

  /** Appends lab-side evidence (a CPU report) to the log, marked as such. */
  note(text: string): void {
    this.file.write(`\n--- vmctr lab ---\n${text.trimEnd()}\n`);
  }

  /** Resolves once everything written so far is on disk. */
  close(): Promise<void> {
    return new Promise((resolve) => this.file.end(resolve));
  }

  /** The last lines L1 printed, for an error message. */
  tail(): string {
    return this.recent.length ? this.recent.join('\n') : '(L1 printed nothing)';
  }

  private scan(line: string): void {
    this.recent.push(line.trimEnd());
    if (this.recent.length > TAIL_LINES) this.recent.shift();
    if (this.fault) return;
    const fault = classifyConsoleLine(line);
    if (fault) {
      this.fault = fault;
      this.onFault(fault);
    }
  }
}
