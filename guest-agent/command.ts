/**
 * Runs a system command (mount, umount, sync, reboot: busybox applets in the
 * agent image) and fails with a one-line reason taken from its stderr.
 */
import { spawn } from 'node:child_process';

export async function runCommand(argv: string[]): Promise<void> {
  const [file, ...args] = argv;
  if (file === undefined) throw new Error('empty command');
  const child = spawn(file, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (text: string) => (stderr += text));
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (c, s) => resolve([c, s]));
  });
  if (code === 0) return;
  const reason = stderr.trim().split('\n').pop() || (signal ? `killed by ${signal}` : `exit status ${code}`);
  throw new Error(`${argv.join(' ')}: ${reason}`);
}
