import test from 'ava';
import { execFile, execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { promisify } from 'node:util';
import { RACY_WINDOW_MS, stampOf, verificationCachePath } from '../../stage1/verification-cache.js';
import { loadPrivateKey, loadPublicKey, publicKeyPath } from '../../stage1/key.js';
import { ManifestError, manifestPath, openManifest, signManifest } from '../../stage1/manifest.js';
import { INSECURE_FLAG, Stage1Error, verifyArtifact, verifyStage1 } from '../../stage1/verify.js';
import { repoRoot } from '../lab/exec.js';
import { otherKeyDir, someBytes, stage1Fixture } from './fixture.js';

const exec = promisify(execFile);

// The check before a boot, on artifacts and a key of the test's own: every
// way an artifact can differ from what set-up signed is refused, with one
// line naming the file and the reason. Serial: the tests share the key,
// and some change its files.

const f = stage1Fixture('vmctr-stage1-verify');
const REMEDY = `rebuild it with setup/install.sh, or pass ${INSECURE_FLAG}`;

function refusal(t: { throws: (fn: () => unknown, e: { instanceOf: typeof Stage1Error }) => unknown }, fn: () => unknown): string {
  const err = t.throws(fn, { instanceOf: Stage1Error }) as Stage1Error;
  return err.message;
}

function flipByte(path: string, at: number): void {
  const bytes = readFileSync(path);
  bytes[at] = bytes[at]! ^ 0x01;
  writeFileSync(path, bytes);
}

test.serial('a manifest signed with the key opens, with what was signed', (t) => {
  const bytes = someBytes(100_000, 1);
  const kernel = f.signed('kernel', 'sign/vmlinux', bytes);
  const manifest = openManifest(readFileSync(manifestPath(kernel), 'utf8'), loadPublicKey().key);
  t.is(manifest.kind, 'kernel');
  t.is(manifest.path, kernel);
  t.is(manifest.size, bytes.length);
  t.regex(manifest.sha256, /^[0-9a-f]{64}$/);
  t.is(manifest.builtAt, statSync(kernel).mtime.toISOString());
  t.notThrows(() => verifyArtifact({ kind: 'kernel', path: kernel }));
});

test.serial('a flipped byte in the artifact is refused with one line', (t) => {
  const kernel = f.signed('kernel', 'flip/vmlinux', someBytes(200_000, 2));
  flipByte(kernel, 123_456);
  const line = refusal(t, () => verifyArtifact({ kind: 'kernel', path: kernel }));
  t.is(line, `the guest kernel ${kernel} does not match its signed digest (stage1 manifest ${kernel}.stage1.json): ${REMEDY}`);
  t.false(line.includes('\n'));
});

test.serial('an artifact of another size is refused', (t) => {
  const image = f.signed('agent-image', 'grown/agent.ext4', someBytes(8192, 3));
  writeFileSync(image, Buffer.concat([readFileSync(image), Buffer.alloc(1)]));
  t.regex(refusal(t, () => verifyArtifact({ kind: 'agent-image', path: image })), /^the guest agent image .* does not match its signed digest/);
});

test.serial('a manifest moved beside another artifact is refused: it names its own', (t) => {
  const kernel = f.signed('kernel', 'swap/vmlinux', someBytes(4096, 4));
  const image = f.signed('agent-image', 'swap/agent.ext4', someBytes(4096, 4)); // the same bytes: only kind and path tell them apart
  copyFileSync(manifestPath(image), manifestPath(kernel));
  t.is(refusal(t, () => verifyArtifact({ kind: 'kernel', path: kernel })),
    `the stage1 manifest ${kernel}.stage1.json is for the guest agent image ${image}, not the guest kernel ${kernel}: ${REMEDY}`);
});

test.serial('an older signed kernel copied, with its manifest, where the current one lives is refused', (t) => {
  const older = f.signed('kernel', 'rollback/old/vmlinux', someBytes(4096, 5));
  const current = f.signed('kernel', 'rollback/new/vmlinux', someBytes(4096, 6));
  copyFileSync(older, current);
  copyFileSync(manifestPath(older), manifestPath(current));
  t.regex(refusal(t, () => verifyArtifact({ kind: 'kernel', path: current })), /is for the guest kernel .*\/old\/vmlinux, not the guest kernel .*\/new\/vmlinux/);
});

test.serial('a manifest signed by another key, or changed after signing, has a bad signature', (t) => {
  const kernel = f.signed('kernel', 'badsig/vmlinux', someBytes(4096, 7));
  const signed = JSON.parse(readFileSync(manifestPath(kernel), 'utf8')) as { payload: string; signature: string };
  const payload = JSON.parse(signed.payload) as Parameters<typeof signManifest>[0];

  writeFileSync(manifestPath(kernel), signManifest(payload, loadPrivateKey(otherKeyDir('vmctr-stage1-verify'))));
  const line = refusal(t, () => verifyArtifact({ kind: 'kernel', path: kernel }));
  t.regex(line, /^the stage1 manifest .*vmlinux\.stage1\.json of the guest kernel .*vmlinux has a bad signature \(not made by the stage1 key [0-9a-f]{16}\): rebuild it/);

  // The artifact changed, and the digest in the manifest with it, by someone without the key.
  flipByte(kernel, 10);
  const forged = { ...signed, payload: signed.payload.replace(/"sha256":"[0-9a-f]+"/, `"sha256":"${'0'.repeat(64)}"`) };
  writeFileSync(manifestPath(kernel), JSON.stringify(forged));
  t.regex(refusal(t, () => verifyArtifact({ kind: 'kernel', path: kernel })), /has a bad signature/);

  writeFileSync(manifestPath(kernel), '{"payload": 1}');
  t.regex(refusal(t, () => verifyArtifact({ kind: 'kernel', path: kernel })), /has no payload and signature: rebuild it/);
  t.throws(() => openManifest('not json', loadPublicKey().key), { instanceOf: ManifestError, message: 'is not JSON' });
});

test.serial('a missing manifest is refused with the way to sign it', (t) => {
  const initramfs = f.signed('initramfs', 'missing/initramfs.cpio.gz', someBytes(1000, 8));
  rmSync(manifestPath(initramfs));
  t.is(refusal(t, () => verifyArtifact({ kind: 'initramfs', path: initramfs })),
    `the demo initramfs ${initramfs} has no signed stage1 manifest (${initramfs}.stage1.json): run setup/install.sh, which signs what it builds, or pass ${INSECURE_FLAG}`);
});

test.serial('an older signed kernel linked where the current one lives is refused; so is its directory', (t) => {
  const older = f.signed('kernel', 'link/old/vmlinux', someBytes(4096, 9));
  const current = f.signed('kernel', 'link/new/vmlinux', someBytes(4096, 19));
  const { symlinkSync } = process.getBuiltinModule('node:fs');
  rmSync(current);
  symlinkSync(older, current);
  t.regex(refusal(t, () => verifyArtifact({ kind: 'kernel', path: current })), /^the guest kernel .*\/new\/vmlinux does not match/);
  rmSync(manifestPath(current));
  symlinkSync(manifestPath(older), manifestPath(current));
  t.regex(refusal(t, () => verifyArtifact({ kind: 'kernel', path: current })), /is for the guest kernel .*\/old\/vmlinux, not the guest kernel .*\/new\/vmlinux/);
  const dir = join(f.dir, 'link/dir');
  symlinkSync(join(f.dir, 'link/old'), dir);
  t.regex(refusal(t, () => verifyArtifact({ kind: 'kernel', path: join(dir, 'vmlinux') })), /is for the guest kernel .*\/old\/vmlinux, not the guest kernel .*\/dir\/vmlinux/);
});

test.serial('a FIFO in the artifact\'s place is refused at once, not waited on', (t) => {
  const kernel = f.signed('kernel', 'fifo/vmlinux', someBytes(4096, 18));
  rmSync(kernel);
  execFileSync('mkfifo', [kernel]);
  t.regex(refusal(t, () => verifyArtifact({ kind: 'kernel', path: kernel })), /^the guest kernel .*\/fifo\/vmlinux cannot be read \(not a regular file\): rebuild it/);
});

test.serial('a missing key, or one others could have written, is refused', (t) => {
  const kernel = f.signed('kernel', 'key/vmlinux', someBytes(4096, 10));
  chmodSync(publicKeyPath(), 0o666);
  t.regex(refusal(t, () => verifyArtifact({ kind: 'kernel', path: kernel })), /^cannot verify the guest kernel .*: the stage1 key .*public\.pem \(or its directory\) is writable by users other than root/);
  chmodSync(publicKeyPath(), 0o644);
  const pem = readFileSync(publicKeyPath());
  rmSync(publicKeyPath());
  t.is(refusal(t, () => verifyArtifact({ kind: 'kernel', path: kernel })),
    `cannot verify the guest kernel ${kernel}: there is no stage1 key (${publicKeyPath()}): run setup/install.sh, or pass ${INSECURE_FLAG}`);
  writeFileSync(publicKeyPath(), pem, { mode: 0o644 });
  t.notThrows(() => verifyArtifact({ kind: 'kernel', path: kernel }));
});

test.serial('--insecure-options=image skips the check; without it the first bad artifact is refused', (t) => {
  const kernel = f.signed('kernel', 'insecure/vmlinux', someBytes(4096, 11));
  const image = f.signed('agent-image', 'insecure/agent.ext4', someBytes(4096, 12));
  flipByte(image, 0);
  const artifacts = [{ kind: 'kernel', path: kernel }, { kind: 'agent-image', path: image }] as const;
  t.notThrows(() => verifyStage1(artifacts, true));
  t.regex(refusal(t, () => verifyStage1(artifacts, false)), /^the guest agent image .* does not match its signed digest/);
});

test.serial('a check is remembered only for files whose last change is older than the racy window', async (t) => {
  const kernel = f.signed('kernel', 'cache/vmlinux', someBytes(300_000, 13));
  t.false(verifyArtifact({ kind: 'kernel', path: kernel }).cached);
  t.false(verifyArtifact({ kind: 'kernel', path: kernel }).cached, 'changed within the window: checked in full again');
  await delay(RACY_WINDOW_MS + 100);
  t.false(verifyArtifact({ kind: 'kernel', path: kernel }).cached);
  t.true(verifyArtifact({ kind: 'kernel', path: kernel }).cached, 'then remembered');

  // A changed byte with its mtime set back changes ctime, which no user can set: checked in full, and refused.
  const { atime, mtime } = statSync(kernel);
  flipByte(kernel, 1000);
  utimesSync(kernel, atime, mtime);
  t.regex(refusal(t, () => verifyArtifact({ kind: 'kernel', path: kernel })), /does not match its signed digest/);
});

test.serial('a new key is not covered by checks remembered with the old one', async (t) => {
  const kernel = f.signed('kernel', 'rekey/vmlinux', someBytes(4096, 16));
  await delay(RACY_WINDOW_MS + 100);
  verifyArtifact({ kind: 'kernel', path: kernel });
  t.true(verifyArtifact({ kind: 'kernel', path: kernel }).cached);
  const pem = readFileSync(publicKeyPath());
  writeFileSync(publicKeyPath(), readFileSync(join(otherKeyDir('vmctr-stage1-verify'), 'public.pem')));
  t.regex(refusal(t, () => verifyArtifact({ kind: 'kernel', path: kernel })), /has a bad signature/);
  writeFileSync(publicKeyPath(), pem);
});

test.serial('the verification cache is believed only when no one but root or this user could have written it', async (t) => {
  const kernel = f.signed('kernel', 'forged/vmlinux', someBytes(4096, 14));
  await delay(RACY_WINDOW_MS + 100);
  verifyArtifact({ kind: 'kernel', path: kernel });
  flipByte(kernel, 5);
  // An entry forged for the tampered file's new stamps...
  const cache = verificationCachePath();
  const entries = JSON.parse(readFileSync(cache, 'utf8')) as Record<string, string>;
  const [, ...others] = entries[`kernel ${kernel}`]!.split('\n');
  entries[`kernel ${kernel}`] = [stampOf(statSync(kernel, { bigint: true })), ...others].join('\n');
  writeFileSync(cache, JSON.stringify(entries));
  // ...is believed from a cache that is ours (which is why it must be root's)...
  t.true(verifyArtifact({ kind: 'kernel', path: kernel }).cached);
  // ...and ignored from one others could have written.
  chmodSync(cache, 0o666);
  t.regex(refusal(t, () => verifyArtifact({ kind: 'kernel', path: kernel })), /does not match its signed digest/);
  rmSync(cache);
});

test.serial('a file others can write is never remembered', async (t) => {
  const kernel = f.signed('kernel', 'writable/vmlinux', someBytes(4096, 15));
  chmodSync(kernel, 0o666);
  await delay(RACY_WINDOW_MS + 100);
  t.false(verifyArtifact({ kind: 'kernel', path: kernel }).cached);
  t.false(verifyArtifact({ kind: 'kernel', path: kernel }).cached);
});

test.serial('a remembered check loads no node:crypto; a check made in full does', async (t) => {
  const kernel = f.signed('kernel', 'crypto/vmlinux', someBytes(4096, 17));
  const script = `
    const { verifyArtifact } = await import(${JSON.stringify(join(repoRoot, 'dist/stage1/verify.js'))});
    const { cached } = verifyArtifact({ kind: 'kernel', path: process.argv[1] });
    console.log(JSON.stringify({ cached, crypto: process.moduleLoadList.some((m) => m === 'NativeModule crypto') }));`;
  const check = async () => JSON.parse((await exec(process.execPath, ['--input-type=module', '-e', script, kernel])).stdout) as { cached: boolean; crypto: boolean };
  t.deepEqual(await check(), { cached: false, crypto: true });
  await delay(RACY_WINDOW_MS + 100);
  t.deepEqual(await check(), { cached: false, crypto: true });
  t.deepEqual(await check(), { cached: true, crypto: false });
});
