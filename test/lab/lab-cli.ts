/**
 * `npm run lab -- <command...>`: runs a command inside the nested KVM lab,
 * in the current directory, with live output, and exits with its status
 * (128+N when a signal N ended it). VMCTR_LAB_CONSOLE=<file> keeps L1's
 * serial console there.
 */
import { constants } from 'node:os';
import { finished } from 'node:stream/promises';
import { Lab } from './lab.js';

const argv = process.argv.slice(2);
if (argv.length === 0) {
  console.error('usage: npm run lab -- <command> [args...]');
  process.exit(2);
}

let lab: Lab;
try {
  lab = await Lab.start({ consoleLog: process.env.VMCTR_LAB_CONSOLE });
} catch (err) {
  console.error(`lab: ${(err as Error).message}`);
  process.exit(1);
}
console.error(`lab: L1 (${lab.kernel}) up in ${(lab.bootMs / 1000).toFixed(1)} s`);

const proc = lab.spawn(argv);
proc.stdout.pipe(process.stdout);
proc.stderr.pipe(process.stderr);
process.stdin.pipe(proc.stdin);
// ^C goes to the command; a second one gives up on it.
let interrupts = 0;
process.on('SIGINT', () => {
  if (interrupts++ === 0) proc.kill('SIGINT');
  else void lab.stop().then(() => process.exit(130));
});
process.on('SIGTERM', () => proc.kill('SIGTERM'));

let status: number;
try {
  const [exit] = await Promise.all([proc.exited, finished(proc.stdout), finished(proc.stderr)]);
  status = exit.code ?? 128 + (exit.signal ? constants.signals[exit.signal] : 0);
} catch (err) {
  console.error(`lab: ${(err as Error).message}`);
  status = 127;
}
await lab.stop();
process.exit(status);
