import test from 'ava';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { repoRoot } from '../lab/exec.js';

// setup/test.sh's summary line comes from setup/tap-summary.sh: here it reads
// the TAP of a real ava run whose reporter crashes on a timed-out test.

const run = promisify(execFile);

async function avaRun(files: Record<string, string>, timeout: string): Promise<{ tap: string; status: number; dir: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'vmctr-tap-'));
  await writeFile(join(dir, 'package.json'), JSON.stringify({ type: 'module', ava: { files: ['*.test.js'], timeout } }));
  await symlink(join(repoRoot, 'node_modules'), join(dir, 'node_modules'));
  for (const [name, text] of Object.entries(files)) await writeFile(join(dir, name), text);
  const ava = await run(join(repoRoot, 'node_modules/.bin/ava'), ['--tap'], { cwd: dir, timeout: 60_000 }).then(
    (out) => ({ stdout: out.stdout, status: 0 }),
    (err: { stdout?: string; code?: number }) => ({ stdout: err.stdout ?? '', status: typeof err.code === 'number' ? err.code : 1 }),
  );
  await writeFile(join(dir, 'tap.log'), ava.stdout);
  return { tap: ava.stdout, status: ava.status, dir };
}

async function summary(dir: string, status: number, retries?: string): Promise<string> {
  const args = [join(dir, 'tap.log'), String(status), ...(retries === undefined ? [] : [retries])];
  return (await run(join(repoRoot, 'setup/tap-summary.sh'), args)).stdout;
}

test('a timed-out test crashes ava\'s TAP reporter, and the summary still counts what ran, plus one failure', async (t) => {
  const { tap, status, dir } = await avaRun({
    'a.test.js': `import test from 'ava';
test.serial('passes', (t) => t.pass());
test.serial('hangs', async (t) => { await new Promise((r) => setTimeout(r, 30000)); t.pass(); });
test.skip('skipped', (t) => t.pass());
`,
  }, '2s');
  try {
    t.not(status, 0);
    t.regex(tap, /^ok \d+ - passes$/m);
    t.notRegex(tap, /^# pass/m, 'the reporter crashed before its footer (if ava is fixed, this test shows it)');
    const out = await summary(dir, status);
    t.regex(out, /without its plan line/);
    t.is(out.trim().split('\n').at(-1), 'tests: 1 passed, 1 failed, 1 skipped');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('a clean run is counted line by line, and retried lab faults are named in the line', async (t) => {
  const { status, dir } = await avaRun({
    'a.test.js': `import test from 'ava';
test('one', (t) => t.pass());
test('two', (t) => t.fail());
test.todo('later');
`,
  }, '30s');
  try {
    await writeFile(join(dir, 'retries'), '{"title":"x"}\n{"title":"y"}\n');
    t.is((await summary(dir, status, join(dir, 'retries'))).trim(), 'tests: 1 passed, 1 failed, 1 skipped (2 lab fault retried)');
    // ava exited non-zero yet no test line failed (a crash outside a test): one failure, never a clean zero.
    await writeFile(join(dir, 'tap.log'), 'TAP version 13\nok 1 - one\n\n1..1\n');
    const out = await summary(dir, 1);
    t.is(out.trim().split('\n').at(-1), 'tests: 1 passed, 1 failed, 0 skipped');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
