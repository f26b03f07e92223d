/**
 * For test files whose tiny guests run against the host's /dev/kvm (PVM on
 * these machines, which runs them but no Linux guest). On a host with no
 * /dev/kvm at all, the file runs inside the nested lab, where L1 has one:
 * one test here runs it there with ava and passes when every test of it
 * passed, printing its report; the file's own tests are not registered.
 */
import avaTest, { type TestFn } from 'ava';
import { existsSync } from 'node:fs';
import { relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { guestHostForTests } from './guest-host.js';
import { repoRoot } from './lab/exec.js';

const LAB_RUN_TIMEOUT_MS = 480_000;

/** ava's `test` for the file at `fileUrl` (its import.meta.url). */
export function kvmTest(fileUrl: string): TestFn {
  if (existsSync('/dev/kvm')) return avaTest;
  const file = relative(repoRoot, fileURLToPath(fileUrl));
  const { guest, serial } = guestHostForTests(avaTest);
  serial(`all of ${file}, in the lab: this host has no /dev/kvm`, async (t) => {
    t.log(guest().description);
    const r = await guest().exec([`${repoRoot}/node_modules/.bin/ava`, '--tap', file], { cwd: repoRoot, timeoutMs: LAB_RUN_TIMEOUT_MS });
    const tap = r.stdout.toString();
    t.log(tap.split('\n').filter((line) => /^(not )?ok |^# /.test(line)).join('\n'));
    t.regex(tap, /^ok 1 /m, 'its tests ran');
    t.notRegex(tap, /^not ok /m, r.stderr.toString().slice(-2000));
    t.is(r.code, 0, tap.slice(-3000) + r.stderr.toString().slice(-2000));
  });
  return ignoredTests;
}

/** A `test` that registers nothing, however it is called (test(), test.serial(), test.before()...). */
const ignoredTests: TestFn = new Proxy(() => {}, {
  get: () => ignoredTests,
  apply: () => undefined,
}) as unknown as TestFn;
