// The one-line reason of a guest kernel panic, from the pod's console log.
import { readFileSync } from 'node:fs';

const PANIC = 'Kernel panic - not syncing: ';

/** The kernel's panic message, sanitised for a terminal, or undefined if the log has none. */
export function panicReason(consoleLog: string): string | undefined {
  let text: string;
  try {
    text = readFileSync(consoleLog, 'latin1');
  } catch {
    return undefined;
  }
  const line = text.split('\n').find((l) => l.includes(PANIC));
  return line?.slice(line.indexOf(PANIC) + PANIC.length).replace(/[\x00-\x1f\x7f-\xff]/g, '?').trim().slice(0, 300);
}
