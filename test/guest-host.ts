/**
 * Where e2e tests run commands that need a real KVM: directly on this host
 * when its KVM runs Linux guests, otherwise inside the nested lab. Tests
 * should t.log(host.description) so a lab run is never silent.
 */
import { spawn } from 'node:child_process';
import type { TestFn } from 'ava';
import { checkHostSupport } from '../vmm/kvm/host-support.js';
import { collect, commandEnv, type ExecOptions, type ExecResult, type GuestProcess } from './lab/exec.js';
import { Lab, type LabOptions } from './lab/lab.js';

export interface GuestHost {
  kind: 'native' | 'lab';
  /** One line: which kind ran and why. */
  description: string;
  exec(argv: string[], opts?: ExecOptions): Promise<ExecResult>;
  close(): Promise<void>;
}

export async function openGuestHost(labOptions?: LabOptions): Promise<GuestHost> {
  const support = checkHostSupport();
  if (support.ok) {
    return {
      kind: 'native',
      description: 'native: this host runs KVM guests itself',
      exec: (argv, opts = {}) => collect(spawnNative(argv, opts), argv, opts),
      close: async () => {},
    };
  }
  const lab = await Lab.start(labOptions);
  return {
    kind: 'lab',
    description: `lab: L1 ${lab.kernel} under QEMU TCG (booted in ${(lab.bootMs / 1000).toFixed(1)} s), because ${support.reason}`,
    exec: (argv, opts) => lab.exec(argv, opts),
    close: () => lab.stop(),
  };
}

/**
 * Opens the guest host before a test file's tests and closes it after them;
 * the returned function gives it to the tests.
 */
export function guestHostForTests(test: TestFn, labOptions?: LabOptions): () => GuestHost {
  let host: GuestHost | undefined;
  test.before(async () => {
    host = await openGuestHost(labOptions);
  });
  test.after.always(async () => {
    await host?.close();
  });
  return () => {
    if (!host) throw new Error('the guest host is not open');
    return host;
  };
}

function spawnNative(argv: string[], opts: ExecOptions): GuestProcess {
  const [file, ...args] = argv;
  if (file === undefined) throw new Error('exec needs a command');
  const child = spawn(file, args, { cwd: opts.cwd ?? process.cwd(), env: commandEnv(opts.env), stdio: 'pipe' });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code, signal) => resolve({ code, signal }));
  });
  return { stdin: child.stdin, stdout: child.stdout, stderr: child.stderr, exited, kill: (signal) => child.kill(signal) };
}
