/**
 * The whole guest side in a real guest, without KVM: QEMU's software
 * emulator boots our kernel from the agent image (/dev/vda) with the
 * container's ext4 root as /dev/vdb and the agent on a virtio-console port
 * named vmctr.agent, wired exactly as PROTOCOL.md tells the VMM to. Skipped
 * when qemu-system-x86_64 or the built kernel is missing.
 */
import test from 'ava';
import { execFile, spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { AgentClient } from '../../guest-agent/client.js';
import { PORT_NAME } from '../../guest-agent/protocol.js';
import { buildRootfs, runContainer } from './fixtures.js';

const run = promisify(execFile);
const repo = (path: string) => fileURLToPath(new URL(`../../../${path}`, import.meta.url));

async function prerequisites(): Promise<{ kernel: string } | { missing: string }> {
  try {
    await run('qemu-system-x86_64', ['--version']);
  } catch {
    return { missing: 'qemu-system-x86_64 is not installed' };
  }
  try {
    return { kernel: (await run(repo('kernel-config/kernel-path.sh'))).stdout.trim() };
  } catch {
    return { missing: 'the guest kernel is not built (kernel-config/build-kernel.sh)' };
  }
}

const found = await prerequisites();

async function connectWhenListening(path: string, deadline: number): Promise<Socket> {
  for (;;) {
    try {
      return await new Promise<Socket>((resolve, reject) => {
        const socket = connect(path);
        socket.once('connect', () => resolve(socket));
        socket.once('error', reject);
      });
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await sleep(20);
    }
  }
}

('kernel' in found ? test : test.skip)('in a QEMU guest: hello, a container on /dev/vdb, a tty, shutdown ends the VM', async (t) => {
  if (!('kernel' in found)) return;
  const work = await mkdtemp(join(tmpdir(), 'vmctr-qemu-agent-'));
  const rootfsDir = await buildRootfs();
  const rootfsImage = join(work, 'rootfs.ext4');
  await run('mke2fs', ['-q', '-t', 'ext4', '-L', 'rootfs', '-d', rootfsDir, rootfsImage, '16M']);
  const agentImage = (await run(repo('guest-agent/build-agent-image.sh'))).stdout.trim().split('\n').pop()!;
  const socketPath = join(work, 'agent.sock');
  const consoleLog = join(work, 'console.log');
  const started = Date.now();
  // The disks are probed in the order given: the agent image is vda, the container's root vdb.
  const qemu = spawn('qemu-system-x86_64', [
    '-M', 'microvm,acpi=off,x-option-roms=off,rtc=off', '-accel', 'tcg', '-cpu', 'max', '-m', '512', '-smp', '1',
    '-nodefaults', '-no-user-config', '-nographic', '-no-reboot',
    '-kernel', found.kernel,
    '-append', 'console=ttyS0 root=/dev/vda ro rootfstype=ext4 init=/init panic=-1 reboot=k',
    '-serial', `file:${consoleLog}`,
    '-drive', `file=${agentImage},if=none,id=agent,format=raw,readonly=on`, '-device', 'virtio-blk-device,drive=agent',
    '-drive', `file=${rootfsImage},if=none,id=rootfs,format=raw,readonly=on`, '-device', 'virtio-blk-device,drive=rootfs',
    '-device', 'virtio-serial-device',
    '-chardev', `socket,id=agent-port,path=${socketPath},server=on,wait=off`,
    '-device', `virtserialport,chardev=agent-port,name=${PORT_NAME}`,
  ], { stdio: ['ignore', 'ignore', 'pipe'] });
  let qemuErrors = '';
  qemu.stderr!.setEncoding('utf8').on('data', (text: string) => (qemuErrors += text));
  const qemuExit = new Promise<number | null>((resolve) => qemu.once('exit', (code) => resolve(code)));
  const consoleTail = async () => `${qemuErrors}\n${await readFile(consoleLog, 'utf8').catch(() => '')}`.trim().split('\n').slice(-15).join('\n');
  try {
    const client = await AgentClient.connect(await connectWhenListening(socketPath, Date.now() + 30_000), { timeoutMs: 240_000 });
    t.log(`guest ${client.hello.kernel}: hello at guest uptime ${client.hello.uptime} s (agent ${client.hello.agentStartMs} ms), ${Date.now() - started} ms wall, under TCG`);
    const rootfs = { device: '/dev/vdb', fstype: 'ext4' };
    const first = await runContainer(client, {
      rootfs,
      args: ['sh', '-c', 'echo "$(hostname) $(id)"; echo x > /etc/new; grep -c " / .* overlay " /proc/self/mountinfo; exit 3'],
      user: 'app',
      hostname: 'guest1',
    });
    t.deepEqual(first.exit, { code: 3 }, first.stderr.toString());
    t.is(first.stdout.toString(), 'guest1 uid=1000(app) gid=1000(app) groups=1000(app),2000(extra)\n1\n');
    const tty = await runContainer(client, { rootfs, args: ['sh', '-c', 'tty; stty size'], tty: { rows: 33, cols: 99 } });
    t.regex(tty.stdout.toString(), /^\/dev\/pts\/\d+\r\n33 99\r\n$/);
    const missing = await runContainer(client, { rootfs, args: ['nope'] });
    t.is((missing.exit as { code: number }).code, 127);
    await client.shutdown();
    t.is(await qemuExit, 0, 'the guest rebooted, which ends the VM');
  } catch (err) {
    t.fail(`${(err as Error).message}\n${await consoleTail()}`);
  } finally {
    qemu.kill('SIGKILL');
    await rm(work, { recursive: true, force: true });
    await rm(rootfsDir, { recursive: true, force: true });
  }
});
