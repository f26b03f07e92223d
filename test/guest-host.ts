/**
 * Where e2e tests run commands that need a real KVM: directly on this host
 * when its KVM runs Linux guests, otherwise inside the nested lab. Tests
 * should t.log(host.description) so a lab run is never silent.
 */
import { spawn } from 'node:child_process';
import { appendFileSync } from 'node:fs';
import type { ExecutionContext, TestFn } from 'ava';
import { checkHostSupport } from '../vmm/kvm/host-support.js';
import { collect, commandEnv, type ExecOptions, type ExecResult, type GuestProcess } from './lab/exec.js';
import { LabFault } from './lab/lab-fault.js';
import { Lab, type LabOptions } from './lab/lab.js';

export interface GuestHost {
  kind: 'native' | 'lab';
  /** One line: which kind ran and why. */
  description: string;
  exec(argv: string[], opts?: ExecOptions): Promise<ExecResult>;
  /** Set once the lab's L1 itself died (never on a native host). */
  fault(): LabFault | undefined;
  /** The lab's QEMU process, for the tests that play a dying L1 (undefined natively). */
  labPid?: number;
  close(): Promise<void>;
}

export async function openGuestHost(labOptions?: LabOptions): Promise<GuestHost> {
  const support = checkHostSupport();
  if (support.ok) {
    return {
      kind: 'native',
      description: 'native: this host runs KVM guests itself',
      exec: (argv, opts = {}) => collect(spawnNative(argv, opts), argv, opts),
      fault: () => undefined,
      close: async () => {},
    };
  }
  const lab = await Lab.start(labOptions);
  return {
    kind: 'lab',
    description: `lab: L1 ${lab.kernel} under QEMU TCG (booted in ${(lab.bootMs / 1000).toFixed(1)} s, settings: ${lab.settingsDescription}), because ${support.reason}`,
    exec: (argv, opts) => lab.exec(argv, opts),
    fault: () => lab.fault,
    labPid: lab.pid,
    close: () => lab.stop(),
  };
}

export interface GuestHostTests {
  /** The open guest host: a fresh L1 once the last one died. */
  guest(): GuestHost;
  /**
   * test.serial for tests that run on the guest host. A test that failed
   * because L1 itself died (a LabFault during it, never an L2 or vmctr
   * failure) is run once more on a fresh L1; the retry is logged, printed
   * and appended to $VMCTR_LAB_RETRIES_FILE, which setup/test.sh counts.
   */
  serial(title: string, impl: (t: ExecutionContext) => Promise<void>): void;
}

/** The title a retry is recorded under when the lab failed to open, before any test. */
export const OPENING_THE_LAB = '(opening the lab)';

/**
 * Opens the guest host before a test file's tests and closes it after them.
 * Register it after any before hook that must run first (ava runs them in order).
 */
export function guestHostForTests(test: TestFn, labOptions?: LabOptions): GuestHostTests {
  let host: GuestHost | undefined;
  const reopen = async (): Promise<GuestHost> => {
    await host?.close();
    host = undefined;
    host = await openGuestHost(labOptions);
    return host;
  };
  test.before(async (t) => {
    try {
      host = await openGuestHost(labOptions);
    } catch (err) {
      if (!(err instanceof LabFault)) throw err;
      const note = `lab fault while opening the lab, retried once: ${err.kind}: ${err.detail}; L1 console kept at ${err.consoleLog}`;
      t.log(note);
      recordRetry(OPENING_THE_LAB, err, note);
      host = await openGuestHost(labOptions);
    }
  });
  test.after.always(async () => {
    await host?.close();
  });
  const guest = (): GuestHost => {
    if (!host) throw new Error('the guest host is not open');
    return host;
  };
  const serial = (title: string, impl: (t: ExecutionContext) => Promise<void>): void => {
    test.serial(title, async (t) => {
      const earlier = guest().fault();
      if (earlier) {
        await reopen();
        t.log(`the L1 of an earlier test died (${earlier.kind}); this test runs on a fresh one`);
      }
      const ranOn = guest();
      const first = await t.try(impl);
      const fault = ranOn.fault();
      if (first.passed || !fault) {
        first.commit();
        return;
      }
      first.discard();
      const note = `lab fault, retried once on a fresh L1: ${fault.kind}: ${fault.detail.split('\n')[0]}; L1 console kept at ${fault.consoleLog}`;
      t.log(note);
      for (const error of first.errors) t.log(`first attempt: ${error.message.split('\n')[0]}`);
      recordRetry(title, fault, note);
      await reopen();
      const second = await t.try(impl);
      second.commit();
    });
  };
  return { guest, serial };
}

/** Prints a retry and appends it to $VMCTR_LAB_RETRIES_FILE (one JSON line each), which setup/test.sh counts. */
function recordRetry(title: string, fault: LabFault, note: string): void {
  process.stderr.write(`# ${title}: ${note}\n`);
  const retries = process.env.VMCTR_LAB_RETRIES_FILE;
  if (retries) appendFileSync(retries, `${JSON.stringify({ title, kind: fault.kind, consoleLog: fault.consoleLog })}\n`);
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
