// Host-side networking tests run in a network namespace of their own, never
// in the host's: inNetns runs a scenario (scenarios.ts) in a child started
// with `unshare --net --mount`, which refuses to run if its namespace is the
// caller's (netns-child.ts). The host's links, addresses, routes, sysctls
// and nftables ruleset are never touched, and nothing is sent to any
// address outside the namespaces a scenario makes.
import { execFile } from 'node:child_process';
import { readlinkSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const CHILD = fileURLToPath(new URL('./netns-child.js', import.meta.url));
export const PARENT_NETNS_ENV = 'VMCTR_TEST_PARENT_NETNS';

/** The JSON a scenario returns; its stderr's last lines on failure. */
export function inNetns<T>(scenario: string, input: unknown = {}, timeoutMs = 180_000): Promise<T> {
  const env = { ...process.env, [PARENT_NETNS_ENV]: readlinkSync('/proc/self/ns/net') };
  return new Promise((resolve, reject) => {
    execFile('unshare', ['--net', '--mount', '--', process.execPath, CHILD, scenario, JSON.stringify(input)], { env, timeout: timeoutMs, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      if (err) return reject(new Error(`scenario ${scenario} failed (${err.message.split('\n')[0]}):\n${stderr.split('\n').slice(-30).join('\n')}`));
      resolve(JSON.parse(stdout.trim().split('\n').at(-1)!) as T);
    });
  });
}
