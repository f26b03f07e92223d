import test from 'ava';
import { parseFlags } from '../../cli/flag-spec.js';
import { bootFlags } from '../../cli/boot-command.js';
import { MAX_CPUS } from '../../vmm/vm.js';

// The fast path of `vmctr boot` takes only plainly valid arguments; all
// else must come back undefined so that oclif parses it and reports errors.

const defaults = { kernel: undefined, initrd: undefined, cmdline: 'quiet', cpus: 1, memory: 256, console: 'virtio' };

test('plainly valid flags parse, with the defaults of the definitions', (t) => {
  t.deepEqual(parseFlags(bootFlags, []), defaults);
  t.deepEqual(parseFlags(bootFlags, ['--kernel', '/k', '--initrd=/i', '--cpus', '2', '--memory=512', '--console', 'serial', '--cmdline', 'quiet x=1']), {
    kernel: '/k', initrd: '/i', cmdline: 'quiet x=1', cpus: 2, memory: 512, console: 'serial',
  });
  t.deepEqual(parseFlags(bootFlags, ['--cmdline=a=b c']), { ...defaults, cmdline: 'a=b c' });
});

test('anything else is left to oclif', (t) => {
  for (const argv of [
    ['--help'], ['-h'], ['--version'], ['extra'], ['--'], ['--frobnicate'], ['--kernel'], ['--kernel='], ['--kernel', '-x'],
    ['--cpus', '0'], ['--cpus', String(MAX_CPUS + 1)], ['--cpus', '-1'], ['--cpus', 'x'], ['--cpus', '1.5'], ['--cpus', '99999999999999999999'],
    ['--console', 'foo'], ['--memory', '8', '--memory', '16'], ['--constructor', 'x'], ['--toString=1'],
  ]) {
    t.is(parseFlags(bootFlags, argv), undefined, argv.join(' '));
  }
});
