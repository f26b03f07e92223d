import test from 'ava';
import { execFile } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { verifyArtifact } from '../../stage1/verify.js';
import { repoRoot } from '../lab/exec.js';
import { stage1Fixture } from './fixture.js';

// setup/stage1-artifact.sh, install.sh's step for one stage1 artifact, with a
// build script of the test's own (it counts its builds) and the test's key
// (VMCTR_STAGE1_DIR; this runs as root, so its sudo is not used): nobody
// is locked out after an upgrade, and nothing that does not match is ever
// signed.

const exec = promisify(execFile);
stage1Fixture('vmctr-stage1-setup'); // the key, and VMCTR_STAGE1_DIR for the scripts this runs

/** A build script like build-kernel.sh: `--path` prints the artifact's path or fails; without it, it builds if needed. */
function buildScript() {
  const dir = mkdtempSync(join(tmpdir(), 'vmctr-stage1-setup-build-'));
  const artifact = join(dir, 'vmlinux');
  const script = join(dir, 'build.sh');
  writeFileSync(script, `#!/bin/sh
if [ ! -f "${artifact}" ]; then
  [ "$1" = --path ] && exit 1
  echo build >>"${dir}/builds"
  echo "kernel bytes, build $(wc -l <"${dir}/builds")" >"${artifact}"
fi
echo "${artifact}"
`);
  chmodSync(script, 0o755);
  const builds = () => { try { return readFileSync(join(dir, 'builds'), 'utf8').split('\n').filter(Boolean).length; } catch { return 0; } };
  return { artifact, script, builds };
}

async function step(script: string, ...flags: string[]) {
  const r = await exec(join(repoRoot, 'setup/stage1-artifact.sh'), [...flags, 'kernel', script], { timeout: 60_000 });
  return r.stderr;
}

test.serial('an artifact built now is signed; a second run only checks', async (t) => {
  const b = buildScript();
  t.regex(await step(b.script), /^\[setup\] signed the kernel .*vmlinux\n$/);
  t.is(b.builds(), 1);
  t.notThrows(() => verifyArtifact({ kind: 'kernel', path: b.artifact }));
  t.is(await step(b.script), '');
  t.is(b.builds(), 1);
});

test.serial('an artifact from an install before manifests is signed, not rebuilt, by the install that made the key', async (t) => {
  const b = buildScript();
  await exec(b.script);
  t.regex(await step(b.script, '--sign-unsigned'), /^\[setup\] signing the kernel .*vmlinux, built before stage1 manifests\n\[setup\] signed/);
  t.is(b.builds(), 1);
  t.notThrows(() => verifyArtifact({ kind: 'kernel', path: b.artifact }));
});

test.serial('otherwise an unsigned artifact, or one that does not match, is rebuilt before it is signed', async (t) => {
  const b = buildScript();
  await exec(b.script);
  t.regex(await step(b.script), /^\[setup\] rebuilding: the guest kernel .* has no signed stage1 manifest/);
  t.is(b.builds(), 2);
  writeFileSync(b.artifact, 'tampered');
  const out = await step(b.script, '--sign-unsigned'); // a manifest is there: never signed as found
  t.regex(out, /^\[setup\] rebuilding: the guest kernel .* does not match its signed digest \(stage1 manifest [^)]*\)\n/, 'the reason, without the advice to run set-up');
  t.is(b.builds(), 3);
  t.is(readFileSync(b.artifact, 'utf8'), 'kernel bytes, build 3\n');
  t.notThrows(() => verifyArtifact({ kind: 'kernel', path: b.artifact }));
});

test.serial('setup-cli key makes the key pair once, private.pem for root only', async (t) => {
  const dir = join(mkdtempSync(join(tmpdir(), 'vmctr-stage1-setup-key-')), 'stage1');
  const key = () => exec(join(repoRoot, 'node_modules/.bin/node'), [join(repoRoot, 'dist/stage1/setup-cli.js'), 'key'], { env: { ...process.env, VMCTR_STAGE1_DIR: dir } });
  t.is((await key()).stdout, 'created\n');
  const pem = readFileSync(join(dir, 'private.pem'), 'utf8');
  t.is((await key()).stdout, 'present\n');
  t.is(readFileSync(join(dir, 'private.pem'), 'utf8'), pem, 'not made again');
  t.is(statSync(join(dir, 'private.pem')).mode & 0o777, 0o600);
  t.is(statSync(join(dir, 'public.pem')).mode & 0o777, 0o644);
});
