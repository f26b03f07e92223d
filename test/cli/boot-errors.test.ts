import test from 'ava';
import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { checkHostSupport } from '../../vmm/kvm/host-support.js';
import { repoRoot } from '../lab/exec.js';

// Bad input to `vmctr boot` fails fast with one line on stderr and a
// non-zero exit, before KVM is touched, so these run on any host.

const run = promisify(execFile);
const vmctr = join(repoRoot, 'bin/vmctr');
const dir = mkdtempSync(join(tmpdir(), 'vmctr-boot-errors-'));

async function vmctrBoot(args: string[]) {
  try {
    const r = await run(vmctr, ['boot', ...args], { timeout: 60_000 });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: err.code, stdout: err.stdout, stderr: err.stderr };
  }
}

function oneLine(t: { is: (a: unknown, b: unknown) => void }, stderr: string) {
  t.is(stderr.split('\n').filter(Boolean).length, 1);
}

test('a missing kernel file', async (t) => {
  const r = await vmctrBoot(['--kernel', join(dir, 'nope')]);
  t.is(r.code, 1);
  t.is(r.stderr, `vmctr: kernel not found: ${join(dir, 'nope')}\n`);
});

test('a corrupt kernel file', async (t) => {
  const bad = join(dir, 'corrupt-vmlinux');
  writeFileSync(bad, Buffer.concat([Buffer.from([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1]), Buffer.alloc(200, 0xab)]));
  const r = await vmctrBoot(['--kernel', bad]);
  t.is(r.code, 1);
  t.regex(r.stderr, /^vmctr: kernel: /);
  oneLine(t, r.stderr);
});

// The project kernel, unchecked: these tests are about other errors, whatever this machine's stage1 manifests say (test/stage1/ has the check's).
const UNCHECKED = '--insecure-options=image';

test('memory too small for the kernel and initrd', async (t) => {
  const big = join(dir, 'big-initrd');
  writeFileSync(big, Buffer.alloc(40 << 20));
  const r = await vmctrBoot(['--memory', '32', '--initrd', big, UNCHECKED]);
  t.is(r.code, 1);
  t.regex(r.stderr, /^vmctr: memory too small: kernel and initrd \(41943040 bytes\) do not fit in 32 MiB\n$/);
});


test('a host that cannot run Linux guests says why at once', async (t) => {
  const support = checkHostSupport();
  if (support.ok) {
    t.log('this host runs KVM guests: the refusal path is not reachable here');
    t.pass();
    return;
  }
  const started = Date.now();
  const r = await vmctrBoot([UNCHECKED]);
  t.is(r.code, 1);
  t.is(r.stderr, `vmctr: cannot run VMs on this host: ${support.reason}\n`);
  t.true(Date.now() - started < 10_000, 'no hang');
});
