/**
 * What a command run on a guest host looks like, whether it runs natively
 * or inside the lab: the same options, streams and result either way.
 */
import { dirname, join, resolve } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';

export interface SpawnOptions {
  /** Defaults to this process's cwd (the same path exists inside the lab). */
  cwd?: string;
  /** Added to this process's environment. */
  env?: Record<string, string>;
}

export interface ExecOptions extends SpawnOptions {
  /** Written to the command's stdin, which is then closed (it is closed at once without it). */
  input?: Buffer | string;
  /** Kills the command and rejects after this long. */
  timeoutMs?: number;
}

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface ExecResult extends Exit {
  stdout: Buffer;
  stderr: Buffer;
}

/** A running command with its stdio as streams, for interactive use. */
export interface GuestProcess {
  stdin: Writable;
  stdout: Readable;
  stderr: Readable;
  /** Settles once the command exited and its output has been delivered. */
  exited: Promise<Exit>;
  kill(signal?: NodeJS.Signals): void;
}

/** The checkout this module runs from (dist/test/lab/ -> the repo root). */
export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');

/** The repo's Node 24, what `node` means on a guest host. */
export const repoNode = join(repoRoot, 'node_modules/.bin/node');

/** This process's environment plus `extra`, with the repo's node_modules/.bin first on PATH. */
export function commandEnv(extra: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(process.env)) if (value !== undefined) env[key] = value;
  env.PATH = [join(repoRoot, 'node_modules/.bin'), env.PATH ?? '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'].join(':');
  return { ...env, ...extra };
}

/** Feeds the input, gathers the output and waits for the exit of `proc`. */
export async function collect(proc: GuestProcess, argv: string[], opts: ExecOptions = {}): Promise<ExecResult> {
  const stdout: Buffer[] = [];
  const stderr: Buffer[] = [];
  proc.stdout.on('data', (chunk: Buffer) => stdout.push(chunk));
  proc.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
  proc.stdin.on('error', () => {}); // the command may exit without reading its input
  proc.stdin.end(opts.input);
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    if (opts.timeoutMs === undefined) return;
    timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`timed out after ${opts.timeoutMs} ms: ${argv.join(' ')}`));
    }, opts.timeoutMs);
  });
  try {
    const [exit] = await Promise.race([
      Promise.all([proc.exited, finished(proc.stdout), finished(proc.stderr)]),
      timeout,
    ]);
    return { ...exit, stdout: Buffer.concat(stdout), stderr: Buffer.concat(stderr) };
  } finally {
    clearTimeout(timer);
  }
}
