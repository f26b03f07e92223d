import test from 'ava';
import { spawnSync } from 'node:child_process';

// An eventfd watcher's callback runs straight from libuv: an exception
// thrown there must not unwind through C code (that aborts the process) but
// reach Node's uncaught-exception handling like any other callback's.

test('an exception thrown in an eventfd callback reaches uncaughtException instead of aborting the process', (t) => {
  const native = new URL('../../vmm/kvm/native.js', import.meta.url).href;
  const script = `
    const { native } = await import(${JSON.stringify(native)});
    process.on('uncaughtException', (e) => { console.log('uncaught: ' + e.message); process.exit(0); });
    const fd = native.createEventFd();
    new native.EventFdWatcher(fd, () => { throw new Error('thrown in the callback'); });
    native.writeEventFd(fd);
  `;
  const child = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 10_000 });
  t.is(child.signal, null, `the process died of ${child.signal}: ${child.stderr}`);
  t.is(child.status, 0, child.stderr);
  t.is(child.stdout.trim(), 'uncaught: thrown in the callback');
});
