import test from 'ava';
import { spawn } from 'node:child_process';
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { MONITOR_COMMAND } from '../../cli/monitor-command.js';
import type { PodLaunch } from '../../monitor/launch.js';
import { newPodId, PodDir } from '../../pod/pod-dir.js';
import { RECORD_VERSION } from '../../pod/pod-record.js';
import { INSECURE_FLAG } from '../../stage1/verify.js';
import { repoRoot } from '../lab/exec.js';
import { someBytes, stage1Fixture } from './fixture.js';

// The pod's monitor checks the kernel and agent image again right before it
// boots them (they may change after `vmctr run` checked them): started as
// `vmctr run` starts it, on a pod whose agent image was changed, it reports
// the refusal as its start-up failure, one line with exit status 125, and
// boots nothing. With the launch's insecureImage (--insecure-options=image)
// it goes past the check to the boot, which these files cannot pass (and
// this host may not run): its failure is another.

const f = stage1Fixture('vmctr-stage1-monitor');
const node = join(repoRoot, 'node_modules/.bin/node');

/** Starts a monitor for a one-app pod with these artifacts; resolves with its start-up failure. */
async function monitorFailure(kernel: string, agentImage: string, insecureImage: boolean): Promise<{ error: string; exitCode: number }> {
  const root = mkdtempSync(join(tmpdir(), 'vmctr-stage1-monitor-root-'));
  const rootfs = join(root, 'rootfs');
  mkdirSync(join(rootfs, 'bin'), { recursive: true });
  writeFileSync(join(rootfs, 'bin', 'true'), '');
  const app = { name: 'app', image: rootfs, command: ['/bin/true'], env: [], mounts: [] };
  const { dir, lock } = await PodDir.create(root, {
    version: RECORD_VERSION, id: newPodId(), name: '', created: new Date().toISOString(), state: 'starting',
    apps: [{ name: app.name, image: app.image, command: app.command }],
  });
  const launch: PodLaunch = {
    apps: [app], volumes: [], exitOnFirst: false, cpus: 1, memoryMiB: 64, rootfs: 'block', layerBytes: 64 << 20, hostname: 'h',
    stdin: false, rm: false, foreground: false, root, kernel, agentImage, insecureImage, defaultImage: '',
  };
  await writeFile(dir.launchPath, JSON.stringify(launch));
  const log = openSync(dir.monitorLog, 'a');
  const monitor = spawn(node, [join(repoRoot, 'dist/cli/main.js'), MONITOR_COMMAND, dir.path], { stdio: ['ignore', log, log, lock.fd, 'pipe'] });
  closeSync(log);
  lock.release();
  const exited = new Promise((resolve) => monitor.once('exit', resolve));
  for await (const line of createInterface({ input: monitor.stdio[4] as NodeJS.ReadableStream })) {
    const event = JSON.parse(line) as { error?: string; exitCode?: number };
    if (event.error !== undefined) {
      await exited;
      return { error: event.error, exitCode: event.exitCode! };
    }
  }
  throw new Error(`the monitor reported no failure: ${readFileSync(dir.monitorLog, 'utf8')}`);
}

test.serial('a changed agent image is refused by the monitor before it boots', async (t) => {
  const kernel = f.signed('kernel', 'a/vmlinux', someBytes(8192, 1));
  const agentImage = f.signed('agent-image', 'a/agent.ext4', someBytes(8192, 2));
  writeFileSync(agentImage, someBytes(8192, 3));
  const failure = await monitorFailure(kernel, agentImage, false);
  t.deepEqual(failure, {
    error: `the guest agent image ${agentImage} does not match its signed digest (stage1 manifest ${agentImage}.stage1.json): rebuild it with setup/install.sh, or pass ${INSECURE_FLAG}`,
    exitCode: 125,
  });
});

test.serial('with --insecure-options=image the monitor goes past the check', async (t) => {
  const kernel = f.signed('kernel', 'b/vmlinux', someBytes(8192, 4));
  const agentImage = f.signed('agent-image', 'b/agent.ext4', someBytes(8192, 5));
  writeFileSync(agentImage, someBytes(8192, 6));
  const failure = await monitorFailure(kernel, agentImage, true);
  t.log(failure.error);
  t.notRegex(failure.error, /stage1|signed digest/);
});
