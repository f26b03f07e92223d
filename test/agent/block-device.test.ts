/**
 * The VM's way of giving a container its root: a read-only ext4 block device
 * under a tmpfs overlay. A loop device stands in for the virtio-blk disk;
 * the test is skipped where loop devices cannot be used.
 */
import test from 'ava';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { access, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { buildHelper, buildRootfs, runContainer, startAgent } from './fixtures.js';

const run = promisify(execFile);
const loopUsable = process.getuid?.() === 0 && (await access('/dev/loop-control').then(() => true, () => false));

const sha256 = async (path: string) => createHash('sha256').update(await readFile(path)).digest('hex');

(loopUsable ? test : test.skip)('an ext4 block device is mounted read-only under a tmpfs overlay and never written', async (t) => {
  const rootfs = await buildRootfs();
  const work = await mkdtemp(join(tmpdir(), 'vmctr-blk-'));
  const image = join(work, 'rootfs.ext4');
  await run('mke2fs', ['-q', '-t', 'ext4', '-L', 'rootfs', '-d', rootfs, image, '16M']);
  const before = await sha256(image);
  const device = (await run('losetup', ['--find', '--show', '--read-only', image])).stdout.trim();
  try {
    const agent = await startAgent(await buildHelper());
    const { stdout, stderr, exit } = await runContainer(agent.client, {
      rootfs: { device, fstype: 'ext4' },
      args: ['sh', '-c', 'echo written > /etc/new && cat /etc/new && rm /bin/ls && cat /etc/hostname && grep -c " / .* overlay " /proc/self/mountinfo'],
      hostname: 'blk',
    });
    t.deepEqual(exit, { code: 0 }, stderr.toString());
    t.is(stdout.toString(), 'written\nblk\n1\n');
    t.is(await agent.stop(), 0, agent.stderr());
  } finally {
    await run('losetup', ['--detach', device]);
  }
  t.is(await sha256(image), before, 'the image is byte-for-byte unchanged');
  await rm(work, { recursive: true, force: true });
  await rm(rootfs, { recursive: true, force: true });
});
