// Runs one scenario (scenarios.ts) inside the namespaces netns.ts made: it
// checks first that its network namespace is not its parent's, mounts a
// sysfs of that namespace, brings loopback up, and prints the scenario's
// result as one line of JSON.
import { execFileSync } from 'node:child_process';
import { readlinkSync } from 'node:fs';
import { toolPath } from '../../net/tool.js';
import { PARENT_NETNS_ENV } from './netns.js';
import { scenarios } from './scenarios.js';

const [name, input] = process.argv.slice(2);
const parent = process.env[PARENT_NETNS_ENV];
if (!parent || readlinkSync('/proc/self/ns/net') === parent) {
  process.stderr.write('netns-child: refusing to run in the network namespace of its parent\n');
  process.exit(3);
}
const scenario = name !== undefined && Object.hasOwn(scenarios, name) ? scenarios[name as keyof typeof scenarios] : undefined;
if (!scenario) {
  process.stderr.write(`netns-child: no scenario "${name}"\n`);
  process.exit(2);
}
execFileSync('mount', ['-t', 'sysfs', 'sysfs', '/sys']);
execFileSync(toolPath('ip'), ['link', 'set', 'lo', 'up']);
const result: unknown = await scenario(JSON.parse(input ?? '{}'));
process.stdout.write(`${JSON.stringify(result)}\n`);
process.exit(0);
