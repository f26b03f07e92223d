/**
 * What the agent tests run against, without a VM: the vmctr-exec helper
 * compiled with gcc, a root filesystem made of busybox-static, and the agent
 * itself (the QuickJS binary the agent image holds) as a host process in a
 * private mount namespace, its channel a socketpair on fd 3, driven through
 * AgentClient.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chown, copyFile, mkdir, mkdtemp, readFile, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { AgentClient, type ContainerExit, type ContainerProcess } from '../../guest-agent/client.js';
import type { ContainerSpec } from '../../guest-agent/protocol.js';

const run = promisify(execFile);
const AGENT_BUILD = fileURLToPath(new URL('../../../guest-agent/build-agent.sh', import.meta.url));
const HELPER_SOURCE = fileURLToPath(new URL('../../../guest-agent/exec/vmctr-exec.c', import.meta.url));

/** The agent binary, built (and cached) by guest-agent/build-agent.sh. */
export async function buildAgent(): Promise<string> {
  const { stdout } = await run(AGENT_BUILD, [], { maxBuffer: 1 << 20 });
  return stdout.trim().split('\n').pop()!;
}

/** Compiles vmctr-exec once per source version (shared by the test processes). */
export async function buildHelper(): Promise<string> {
  const source = await readFile(HELPER_SOURCE);
  const out = join(tmpdir(), `vmctr-exec-${createHash('sha256').update(source).digest('hex').slice(0, 16)}`);
  const exists = await readFile(out).then(() => true, () => false);
  if (!exists) {
    const temporary = `${out}.${process.pid}`;
    await run('gcc', ['-static', '-O2', '-s', '-Wall', '-Werror', '-o', temporary, HELPER_SOURCE]);
    await rename(temporary, out);
  }
  return out;
}

export const PASSWD = 'root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:App:/home/app:/bin/sh\n';
export const GROUP = 'root:x:0:\ntty:x:5:\napp:x:1000:\nextra:x:2000:app\n';

/** A busybox-static root filesystem with a user "app" (1000, also in group "extra" 2000). */
export async function buildRootfs(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'vmctr-rootfs-'));
  for (const sub of ['bin', 'etc', 'root', 'home/app', 'proc', 'sys', 'dev', 'tmp']) await mkdir(join(dir, sub), { recursive: true });
  await copyFile('/bin/busybox', join(dir, 'bin/busybox'));
  const { stdout } = await run('/bin/busybox', ['--list']);
  for (const applet of stdout.split('\n').filter((a) => a && a !== 'busybox')) await symlink('busybox', join(dir, 'bin', applet));
  await writeFile(join(dir, 'etc/passwd'), PASSWD);
  await writeFile(join(dir, 'etc/group'), GROUP);
  await chown(join(dir, 'home/app'), 1000, 1000);
  return dir;
}

export interface AgentUnderTest {
  client: AgentClient;
  process: ChildProcess;
  /** Milliseconds from spawning the agent to its hello. */
  helloMs: number;
  stderr(): string;
  /** Shuts the agent down and waits for it to exit; returns its exit code. */
  stop(): Promise<number | null>;
}

export async function startAgent(helper: string): Promise<AgentUnderTest> {
  const agent = await buildAgent();
  const stateDir = await mkdtemp(join(tmpdir(), 'vmctr-agent-state-'));
  return startAgentCommand(
    ['unshare', '-m', '--propagation', 'private', agent, '--channel-fd', '3', '--exec-helper', helper, '--state-dir', stateDir],
    () => rm(stateDir, { recursive: true, force: true }),
  );
}

/** Starts any command that runs the agent with its channel on fd 3. */
export async function startAgentCommand(argv: string[], cleanup: () => Promise<void>): Promise<AgentUnderTest> {
  const started = performance.now();
  const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'inherit', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (text: string) => (stderr += text));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  let client: AgentClient;
  try {
    client = await AgentClient.connect(child.stdio[3] as Duplex, { timeoutMs: 10_000 });
  } catch (err) {
    child.kill('SIGKILL');
    throw new Error(`${(err as Error).message}; agent stderr: ${stderr}`);
  }
  const helloMs = performance.now() - started;
  return {
    client,
    process: child,
    helloMs,
    stderr: () => stderr,
    stop: async () => {
      await client.shutdown();
      const code = await exited;
      await cleanup();
      return code;
    },
  };
}

export interface Finished {
  stdout: Buffer;
  stderr: Buffer;
  exit: ContainerExit;
}

export async function collect(proc: ContainerProcess): Promise<Finished> {
  const read = async (stream: NodeJS.ReadableStream): Promise<Buffer> => {
    const chunks: Buffer[] = [];
    for await (const chunk of stream) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks);
  };
  const [stdout, stderr, exit] = await Promise.all([read(proc.stdout), read(proc.stderr), proc.exit]);
  return { stdout, stderr, exit };
}

/** Runs one container to its end, feeding `input` to its stdin if given. */
export async function runContainer(client: AgentClient, spec: ContainerSpec, input?: Buffer | string): Promise<Finished> {
  const proc = client.startContainer({ ...spec, stdin: input !== undefined || spec.stdin === true });
  if (input !== undefined) proc.stdin!.end(input);
  return collect(proc);
}

/** Collects a stream's text while letting a test wait for something in it. */
export class TextSink {
  text = '';
  readonly ended: Promise<string>;
  private waiters: Array<{ pattern: RegExp; resolve: () => void; reject: (err: Error) => void }> = [];

  constructor(stream: NodeJS.ReadableStream) {
    stream.on('data', (chunk: Buffer) => {
      this.text += chunk.toString('utf8');
      this.waiters = this.waiters.filter((w) => !w.pattern.test(this.text) || (w.resolve(), false));
    });
    this.ended = new Promise((resolve) =>
      stream.once('end', () => {
        for (const w of this.waiters.splice(0)) w.reject(new Error(`ended without ${w.pattern}: ${JSON.stringify(this.text)}`));
        resolve(this.text);
      }),
    );
  }

  waitFor(pattern: RegExp): Promise<void> {
    if (pattern.test(this.text)) return Promise.resolve();
    return new Promise((resolve, reject) => this.waiters.push({ pattern, resolve, reject }));
  }
}
