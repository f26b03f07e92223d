/**
 * The agent image: built and cached by guest-agent/build-agent-image.sh, then
 * loop-mounted and used as the root of a chroot in which the agent runs from
 * the image's own /init (the static QuickJS agent) and vmctr-exec, as in a
 * guest (only the channel is a socket instead of the virtio port).
 */
import test from 'ava';
import { execFile } from 'node:child_process';
import { access, rm, stat } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { buildRootfs, runContainer, startAgentCommand } from './fixtures.js';

const run = promisify(execFile);
const SCRIPT = fileURLToPath(new URL('../../../guest-agent/build-agent-image.sh', import.meta.url));
const loopUsable = process.getuid?.() === 0 && (await access('/dev/loop-control').then(() => true, () => false));

/** Mounts the image read-only and what the agent mounts as PID 1, then runs the image's agent. */
const CHROOT_AGENT = `
set -e
image=$1 rootfs=$2
m=$(mktemp -d)
mount -o ro,loop "$image" "$m"
mount -t proc proc "$m/proc"
mount -t sysfs sysfs "$m/sys"
mount --rbind /dev "$m/dev"
mount -t tmpfs tmpfs "$m/run"
mount -t tmpfs tmpfs "$m/tmp"
mkdir "$m/tmp/rootfs"
mount -o bind "$rootfs" "$m/tmp/rootfs"
exec env -i /usr/sbin/chroot "$m" /init --channel-fd 3
`;

test('the image builds once, --path finds it, and only a change of input rebuilds it', async (t) => {
  const built = await run(SCRIPT, [], { maxBuffer: 1 << 20 });
  const path = built.stdout.trim().split('\n').pop()!;
  t.regex(path, /\/agent-image\/[0-9a-f]{16}\/agent\.ext4$/);
  const again = await run(SCRIPT);
  t.is(again.stdout.trim(), path, 'a second build is a cache hit');
  t.is(again.stderr, '', 'a cache hit builds nothing');
  t.is((await run(SCRIPT, ['--path'])).stdout.trim(), path);
  const size = (await stat(path)).size;
  t.log(`agent image: ${(size / 1024 / 1024).toFixed(1)} MiB at ${path}`);
  t.true(size <= 8 * 1024 * 1024, 'at most 8 MiB');

  const { stdout: label } = await run('e2label', [path]);
  t.is(label.trim(), 'vmctr-agent');
  await t.throwsAsync(run(SCRIPT, ['--path'], { env: { ...process.env, VMCTR_CACHE: '/nonexistent-vmctr-cache' } }), {
    message: /agent image not built for the current inputs/,
  });
});

(loopUsable ? test : test.skip)('the agent runs from the image: its agent binary and vmctr-exec suffice', async (t) => {
  const image = (await run(SCRIPT)).stdout.trim().split('\n').pop()!;
  const rootfs = await buildRootfs();
  const agent = await startAgentCommand(['unshare', '-m', '--propagation', 'private', 'sh', '-c', CHROOT_AGENT, 'sh', image, rootfs], async () => {});
  t.log(`agent from the image: hello ${agent.helloMs.toFixed(0)} ms after spawn (${agent.client.hello.agentStartMs} ms inside the agent)`);
  const plain = await runContainer(agent.client, { rootfs: { directory: '/tmp/rootfs' }, args: ['sh', '-c', 'echo hi from $(hostname)'], hostname: 'img' });
  t.deepEqual(plain.exit, { code: 0 }, plain.stderr.toString());
  t.is(plain.stdout.toString(), 'hi from img\n');
  const tty = await runContainer(agent.client, { rootfs: { directory: '/tmp/rootfs' }, args: ['tty'], tty: { rows: 10, cols: 20 } });
  t.deepEqual(tty.exit, { code: 0 });
  t.regex(tty.stdout.toString(), /^\/dev\/pts\/\d+\r\n$/);
  t.is(await agent.stop(), 0, agent.stderr());
  await rm(rootfs, { recursive: true, force: true });
});
