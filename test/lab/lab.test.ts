import test from 'ava';
import { Lab } from './lab.js';

let lab: Lab | undefined;

test.before(async (t) => {
  lab = await Lab.start();
  t.log(`lab: L1 ${lab.kernel} booted to the agent's hello in ${lab.bootMs} ms`);
});

test.after.always(async () => {
  await lab?.stop();
});

function theLab(): Lab {
  if (!lab) throw new Error('the lab did not start');
  return lab;
}

test.serial('stdout, stderr and the exit code come back separate and exact', async (t) => {
  const result = await theLab().exec(['sh', '-c', 'echo out; echo err >&2; exit 7']);
  t.is(result.stdout.toString(), 'out\n');
  t.is(result.stderr.toString(), 'err\n');
  t.is(result.code, 7);
  t.is(result.signal, null);
});

test.serial('stdin is piped through, binary-safe', async (t) => {
  const input = Buffer.concat([Buffer.from('hello lab\n'), Buffer.from([0, 1, 2, 255, 254]), Buffer.alloc(300_000, 'x')]);
  const result = await theLab().exec(['cat'], { input });
  t.is(result.code, 0);
  t.true(result.stdout.equals(input));
});

test.serial('a signal ends a command and is reported', async (t) => {
  const result = await theLab().exec(['sh', '-c', 'kill -TERM $$']);
  t.is(result.code, null);
  t.is(result.signal, 'SIGTERM');
});

test.serial('a missing command or cwd is an error, not a hang', async (t) => {
  await t.throwsAsync(theLab().exec(['/nonexistent/command']), { message: /ENOENT/ });
  await t.throwsAsync(theLab().exec(['true'], { cwd: '/nonexistent/dir' }), { message: /cwd \/nonexistent\/dir does not exist/ });
});

test.serial('commands run concurrently and in the same cwd as the host', async (t) => {
  const [a, b] = await Promise.all([
    theLab().exec(['sh', '-c', 'sleep 0.5; pwd']),
    theLab().exec(['sh', '-c', 'echo $VMCTR_LAB_PROBE'], { env: { VMCTR_LAB_PROBE: 'probe' } }),
  ]);
  t.is(a.stdout.toString().trim(), process.cwd());
  t.is(b.stdout.toString().trim(), 'probe');
});

test.serial('L1 has a real KVM with SVM, not PVM', async (t) => {
  const result = await theLab().exec(['sh', '-c', 'test -c /dev/kvm && echo kvm; test -e /sys/module/kvm_pvm && echo pvm; grep -qw svm /proc/cpuinfo && echo svm']);
  t.is(result.stdout.toString(), 'kvm\nsvm\n');
});

test.serial('node inside is the repo\'s Node 24', async (t) => {
  const started = Date.now();
  const result = await theLab().exec(['node', '-e', '1']);
  t.log(`node -e 1 inside the lab: ${Date.now() - started} ms`);
  t.is(result.code, 0);
  const version = await theLab().exec(['node', '--version']);
  t.regex(version.stdout.toString(), /^v24\./);
});

test.serial('one empty VM is held open for L1\'s lifetime, so pods flip no static keys', async (t) => {
  // kvm-hold.c; a VM of KVM's runs a kvm-nx-lpage-recovery kthread while it lives.
  const result = await theLab().exec(['sh', '-c', 'pgrep -x kvm-hold >/dev/null && echo held; pgrep -c kvm-nx-lpage']);
  t.is(result.stdout.toString(), 'held\n1\n');
});
