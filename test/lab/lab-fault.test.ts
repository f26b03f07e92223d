import test from 'ava';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkHostSupport } from '../../vmm/kvm/host-support.js';
import { OPENING_THE_LAB } from '../guest-host.js';
import { repoRoot } from './exec.js';

// A dying L1 costs one test, not a file: a real ava run of two lab tests,
// whose first kills its L1's QEMU mid-command. That test is retried on a
// fresh L1 and passes, the retry is printed and recorded, the console is
// kept, and the next test passes.

const FIXTURE = `import test from 'ava';
import { guestHostForTests } from '${repoRoot}/dist/test/guest-host.js';
const { guest, serial } = guestHostForTests(test);
let attempts = 0;
serial('killed mid-test', async (t) => {
  attempts++;
  const host = guest();
  const running = host.exec(['sh', '-c', 'sleep 6; echo survived'], { timeoutMs: 120000 });
  if (attempts === 1) setTimeout(() => process.kill(host.labPid, 'SIGKILL'), 2000);
  const result = await running;
  t.is(result.stdout.toString(), 'survived\\n');
});
serial('the next test', async (t) => {
  t.is((await guest().exec(['echo', 'fine'])).stdout.toString(), 'fine\\n');
});
`;

const lab = !checkHostSupport().ok;

(lab ? test : test.skip)('a killed L1 costs one retried test; the console is kept and the next test passes on a fresh L1', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'vmctr-lab-fault-'));
  try {
    await writeFile(join(dir, 'package.json'), JSON.stringify({ type: 'module', ava: { files: ['*.test.js'], timeout: '5m' } }));
    await symlink(join(repoRoot, 'node_modules'), join(dir, 'node_modules'));
    await writeFile(join(dir, 'killed.test.js'), FIXTURE);
    const retries = join(dir, 'retries');
    const result = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      execFile(join(repoRoot, 'node_modules/.bin/ava'), ['--tap'], { cwd: dir, timeout: 280_000, env: { ...process.env, VMCTR_LAB_RETRIES_FILE: retries } },
        (err, stdout, stderr) => resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr }));
    });
    t.log(result.stderr.split('\n').filter((line) => line.includes('lab fault')).join('\n'));
    t.is(result.code, 0, result.stdout + result.stderr);
    t.regex(result.stdout, /^ok 1 - killed mid-test$/m);
    t.regex(result.stdout, /^ok 2 - the next test$/m);
    t.regex(result.stdout + result.stderr, /lab fault, retried once on a fresh L1: qemu-exit: qemu exited \(SIGKILL\); L1 console kept at \S+/);
    const recorded = (await readFile(retries, 'utf8')).trim().split('\n').map((line) => JSON.parse(line) as { title: string; kind: string; consoleLog: string });
    // An L1 that failed to boot is retried too, and counted in the summary: not what this test is about.
    const [opening, inTests] = [recorded.filter((r) => r.title === OPENING_THE_LAB), recorded.filter((r) => r.title !== OPENING_THE_LAB)];
    if (opening.length > 0) t.log(`also retried: ${opening.map((r) => `${r.kind} (${r.consoleLog})`).join(', ')}`);
    t.deepEqual(inTests.map((r) => [r.title, r.kind]), [['killed mid-test', 'qemu-exit']]);
    const killed = inTests[0]!;
    t.true(existsSync(killed.consoleLog), 'the dead L1\'s console is kept');
    t.regex(await readFile(killed.consoleLog, 'utf8'), /kvm: Nested Virtualization enabled/);
    await rm(killed.consoleLog, { force: true });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
