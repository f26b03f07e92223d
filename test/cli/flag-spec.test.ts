import test from 'ava';
import { parseCommandLine, type CommandSyntax } from '../../cli/flag-spec.js';
import { bootSyntax, parseBootArgv } from '../../cli/boot-command.js';
import { runSyntax } from '../../cli/run-command.js';
import { parseRunArgv } from './run-argv.js';
import { UserError } from '../../cli/user-error.js';
import { MAX_CPUS } from '../../vmm/vm.js';

// One parser reads `vmctr boot`'s and `vmctr run`'s arguments, on the CLI's
// fast path and in the oclif commands: values, 'help', or one-line errors.

const bootDefaults = { kernel: undefined, initrd: undefined, cmdline: 'quiet', cpus: 1, memory: 256, console: 'virtio', tap: undefined, mac: undefined, 'insecure-options': undefined };
const runDefaults = { rm: false, detach: false, name: undefined, env: [], workdir: undefined, user: undefined, hostname: undefined, interactive: false, tty: false, cpus: 1, memory: 256, 'storage-size': undefined, rootfs: undefined, net: undefined, port: [], ip: undefined, dns: [], 'insecure-options': undefined, root: undefined };

function usageError(t: import('ava').ExecutionContext, parse: () => unknown, message: string, exitCode: number) {
  const err = t.throws(parse, { instanceOf: UserError });
  t.is(err?.message, message);
  t.is(err?.exitCode, exitCode);
}

test('boot: plainly valid flags, with the defaults of the definitions', (t) => {
  t.deepEqual(parseBootArgv([]), bootDefaults);
  t.deepEqual(parseBootArgv(['--kernel', '/k', '--initrd=/i', '--cpus', '2', '--memory=512', '--console', 'serial', '--cmdline', 'quiet x=1', '--tap', 'vt0', '--mac=02:00:00:00:00:01', '--insecure-options=image']), {
    kernel: '/k', initrd: '/i', cmdline: 'quiet x=1', cpus: 2, memory: 512, console: 'serial', tap: 'vt0', mac: '02:00:00:00:00:01', 'insecure-options': 'image',
  });
  t.deepEqual(parseBootArgv(['--cmdline=a=b c']), { ...bootDefaults, cmdline: 'a=b c' });
  t.deepEqual(parseBootArgv(['--cmdline', '']), { ...bootDefaults, cmdline: '' }, 'an empty command line drops quiet');
  t.deepEqual(parseBootArgv(['--cmdline', '-x']), { ...bootDefaults, cmdline: '-x' }, 'a value flag takes the next argument');
  t.deepEqual(parseBootArgv(['--']), bootDefaults);
});

test('help wins, even after a mistake among the flags', (t) => {
  for (const argv of [['--help'], ['-h'], ['--cpus', '0', '--help'], ['--frobnicate', '-h']]) t.is(parseBootArgv(argv), 'help', argv.join(' '));
  t.is(parseRunArgv(['--rm', '-h', 'default']), 'help');
  t.is(parseRunArgv(['--bad', '--help']), 'help');
});

test('boot: each mistake is one line naming the flag, the value and what is allowed, exit status 2', (t) => {
  const flags = '--kernel, --initrd, --cmdline, --cpus, --memory, --console, --tap, --mac, --insecure-options';
  const cases: [string[], string][] = [
    [['--cpus', '0'], `--cpus needs an integer from 1 to ${MAX_CPUS}, got 0`],
    [['--cpus', String(MAX_CPUS + 1)], `--cpus needs an integer from 1 to ${MAX_CPUS}, got ${MAX_CPUS + 1}`],
    [['--cpus=-1'], `--cpus needs an integer from 1 to ${MAX_CPUS}, got -1`],
    [['--cpus', 'x'], `--cpus needs an integer from 1 to ${MAX_CPUS}, got x`],
    [['--cpus', '1.5'], `--cpus needs an integer from 1 to ${MAX_CPUS}, got 1.5`],
    [['--cpus', '99999999999999999999'], `--cpus needs an integer from 1 to ${MAX_CPUS}, got 99999999999999999999`],
    [['--cpus', ''], `--cpus needs an integer from 1 to ${MAX_CPUS}, got ""`],
    [['--memory', '8'], '--memory needs an integer from 32 to 1048576, got 8'],
    [['--console', 'foo'], '--console needs virtio or serial, got foo'],
    [['--cpus'], `--cpus needs an integer from 1 to ${MAX_CPUS}, got nothing`],
    [['--kernel'], '--kernel needs a value, got nothing'],
    [['--memory', '64', '--memory=128'], '--memory given more than once (--memory 64, then 128): give it once'],
    [['--frobnicate'], `unknown flag --frobnicate: vmctr boot takes ${flags}`],
    [['--constructor', 'x'], `unknown flag --constructor: vmctr boot takes ${flags}`],
    [['-x'], `unknown flag -x: vmctr boot takes ${flags}`],
    [['extra'], `unexpected argument extra: vmctr boot takes flags only (${flags})`],
    [['--', 'a b'], `unexpected argument "a b": vmctr boot takes flags only (${flags})`],
  ];
  for (const [argv, message] of cases) usageError(t, () => parseBootArgv(argv), message, 2);
});

test('run: flags, then ROOTFS, then the command, flags and all', (t) => {
  t.deepEqual(parseRunArgv(['default']), { flags: runDefaults, rootfs: 'default', command: [] });
  t.deepEqual(parseRunArgv(['default', '--', 'echo', 'hi']), { flags: runDefaults, rootfs: 'default', command: ['echo', 'hi'] });
  t.deepEqual(parseRunArgv(['default', 'ls', '-l', '--rm']), { flags: runDefaults, rootfs: 'default', command: ['ls', '-l', '--rm'] });
  t.deepEqual(parseRunArgv(['--', 'default', '--', '--', 'x']), { flags: runDefaults, rootfs: 'default', command: ['--', 'x'] });
  t.deepEqual(parseRunArgv(['--rm', '--rm', '-it', '-e', 'A=1', '-eB=2', '-e=C=3', '--env', 'D=', '--env=E=x=y', '-w/tmp', '-u', 'vmctr:1', '--name=p', '--hostname', 'h', '--cpus=2', '--memory', '64', '--root', '/r', './rootfs.tar', 'sh']), {
    flags: { rm: true, detach: false, name: 'p', env: ['A=1', 'B=2', 'C=3', 'D=', 'E=x=y'], workdir: '/tmp', user: 'vmctr:1', hostname: 'h', interactive: true, tty: true, cpus: 2, memory: 64, 'storage-size': undefined, rootfs: undefined, net: undefined, port: [], ip: undefined, dns: [], 'insecure-options': undefined, root: '/r' },
    rootfs: './rootfs.tar',
    command: ['sh'],
  });
  t.deepEqual(parseRunArgv(['-tie', 'A=1', 'default']), { flags: { ...runDefaults, interactive: true, tty: true, env: ['A=1'] }, rootfs: 'default', command: [] }, 'a value flag ends a cluster');
});

test('run: each mistake is one line naming the flag, the value and what is allowed, exit status 125', (t) => {
  const flags = '--rm, -d/--detach, --name, -e/--env, -w/--workdir, -u/--user, --hostname, -i/--interactive, -t/--tty, --cpus, --memory, --storage-size, --rootfs, --net, -p/--port, --ip, --dns, --insecure-options, --root';
  const cases: [string[], string][] = [
    [[], 'ROOTFS is missing: default, a root filesystem directory or tar, or an image name'],
    [['--rm'], 'ROOTFS is missing: default, a root filesystem directory or tar, or an image name'],
    [['--cpus', '0', 'default'], `--cpus needs an integer from 1 to ${MAX_CPUS}, got 0`],
    [['--memory', 'lots', 'default'], '--memory needs an integer from 32 to 1048576, got lots'],
    [['-e', 'NOEQUALS', 'default'], '-e needs KEY=VALUE, got NOEQUALS'],
    [['--env==x', 'default'], '--env needs KEY=VALUE, got =x'],
    [['-w', 'tmp', 'default'], '-w needs an absolute path, got tmp'],
    [['--workdir=rel/dir', 'default'], '--workdir needs an absolute path, got rel/dir'],
    [['--rootfs', 'zfs', 'default'], '--rootfs needs block or fs, got zfs'],
    [['--rm=true', 'default'], '--rm takes no value, got --rm=true'],
    [['--name', 'a', '--name', 'b', 'default'], '--name given more than once (--name a, then b): give it once'],
    [['-u'], '-u needs a value, got nothing'],
    [['-ix', 'default'], `unknown flag -x (in -ix): vmctr run takes ${flags}`],
    [['--frobnicate', 'default'], `unknown flag --frobnicate: vmctr run takes ${flags}`],
  ];
  for (const [argv, message] of cases) usageError(t, () => parseRunArgv(argv), message, 125);
});

test('the syntaxes carry their commands\' usage exit statuses', (t) => {
  t.is(bootSyntax.usageExitCode, 2);
  t.is(runSyntax.usageExitCode, 125);
  t.deepEqual(parseCommandLine(runSyntax, ['x', 'y']), { flags: runDefaults, operand: 'x', rest: ['y'] });
});

test('an optional operand may be absent; a flag that belongs elsewhere is refused with why, its value skipped', (t) => {
  const syntax = {
    command: 'x',
    flags: { env: { type: 'string', char: 'e', multiple: true, description: 'e' } },
    usageExitCode: 3,
    operand: { name: 'THING', description: 'a thing', optional: true },
    elsewhere: { flags: { memory: { type: 'integer', description: 'm' }, tty: { type: 'boolean', char: 't', description: 't' } }, why: 'goes first' },
  } as const satisfies CommandSyntax;
  t.deepEqual(parseCommandLine(syntax, ['-e', 'A=1']), { flags: { env: ['A=1'] }, operand: undefined, rest: [] });
  t.deepEqual(parseCommandLine(syntax, ['thing', '--memory', '1']), { flags: { env: [] }, operand: 'thing', rest: ['--memory', '1'] });
  usageError(t, () => parseCommandLine(syntax, ['--memory', '1', 'thing']), '--memory goes first', 3);
  usageError(t, () => parseCommandLine(syntax, ['-et', '-t']), '-t goes first', 3);
  usageError(t, () => parseCommandLine(syntax, ['-t', '-e', 'A']), '-t goes first', 3);
  usageError(t, () => parseCommandLine(syntax, ['--tty=1']), '--tty goes first', 3);
  usageError(t, () => parseCommandLine(syntax, ['--rm']), 'unknown flag --rm: vmctr x takes -e/--env', 3);
  usageError(t, () => parseCommandLine(syntax, ['--memory', '-h']), '--memory goes first', 3);
  t.is(parseCommandLine(syntax, ['--memory', '1', '-h']), 'help');
});
