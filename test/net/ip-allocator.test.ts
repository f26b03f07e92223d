import test from 'ava';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { allocate, chooseAddress, portClaimed, reclaim, release } from '../../net/ip-allocator.js';
import { defaultNetwork, NetworkStore, type Lease, type Network } from '../../net/network-store.js';
import { parsePortForward } from '../../net/port-forward.js';
import { formatIpv4, parseCidr, parseIpv4 } from '../../net/subnet.js';

// Leases: pure address choice, and the leases file under the store's lock,
// shared by separate processes allocating at once. Only files: no network
// namespace is needed (the default network is built in, nothing reads the
// host's routes).

const execFileP = promisify(execFile);
const ALLOCATOR = fileURLToPath(new URL('../../net/ip-allocator.js', import.meta.url));
const STORE = fileURLToPath(new URL('../../net/network-store.js', import.meta.url));
const PORTS = fileURLToPath(new URL('../../net/port-forward.js', import.meta.url));

const podId = () => randomBytes(16).toString('hex');
const network = (cidr: string): Network => ({ name: 'n', subnet: parseCidr(cidr), gateway: parseCidr(cidr).network + 1, bridge: 'vmbr-00000000', isDefault: false });
const lease = (ip: string, ports: string[] = []): Lease => ({ podId: podId(), ip: parseIpv4(ip), ports: ports.map(parsePortForward), created: new Date().toISOString() });

let work: string;
test.before(async () => {
  work = await mkdtemp(join(tmpdir(), 'vmctr-leases-'));
});
test.after.always(async () => {
  await rm(work, { recursive: true, force: true });
});

test('the lowest free address after the gateway, or the one asked for', (t) => {
  const n = network('10.77.0.0/29');
  t.is(formatIpv4(chooseAddress(n, [])), '10.77.0.2');
  t.is(formatIpv4(chooseAddress(n, [lease('10.77.0.2'), lease('10.77.0.4')])), '10.77.0.3');
  t.is(formatIpv4(chooseAddress(n, [lease('10.77.0.2')], parseIpv4('10.77.0.6'))), '10.77.0.6');
  const full = ['2', '3', '4', '5', '6'].map((d) => lease(`10.77.0.${d}`));
  t.is(t.throws(() => chooseAddress(n, full))?.message, 'network "n" (10.77.0.0/29) has no free address: all 5 are taken');
  t.is(t.throws(() => chooseAddress(n, [], parseIpv4('10.77.0.7')))?.message, '--ip 10.77.0.7 is not a pod address of network "n" (10.77.0.0/29): 10.77.0.2 to 10.77.0.6');
  t.is(t.throws(() => chooseAddress(n, [], parseIpv4('10.77.0.8')))?.message, '--ip 10.77.0.8 is not in network "n" (10.77.0.0/29)');
});

test('host ports: twice in one request, or claimed by a lease, same protocol and a shared address', (t) => {
  const leases = [{ network: 'vmctr0', lease: lease('10.88.0.2', ['8080:80', '127.0.0.1:53:53/udp']) }];
  const id = leases[0]!.lease.podId.slice(0, 12);
  const claimed = (specs: string[]) => portClaimed(specs.map(parsePortForward), leases);
  t.is(claimed(['8080:81']), `host port 8080/tcp is already forwarded to pod ${id} (network "vmctr0")`);
  t.is(claimed(['192.0.2.1:8080:81']), `host port 192.0.2.1:8080/tcp is already forwarded to pod ${id} (network "vmctr0")`);
  t.is(claimed(['8080:80/udp']), undefined);
  t.is(claimed(['53:53/udp']), `host port 53/udp is already forwarded to pod ${id} (network "vmctr0")`);
  t.is(claimed(['192.0.2.1:53:53/udp']), undefined);
  t.is(claimed(['9000:1', '127.0.0.1:9000:2']), 'host port 127.0.0.1:9000/tcp is given twice');
});

test('20 processes allocating at once get 20 distinct addresses; of 10 asking for one address or one host port, one gets it', async (t) => {
  const root = await mkdtemp(join(work, 'root-'));
  // Each child allocates in the default network and prints what it got, or its error.
  const child = (id: string, request: string) => `
    const { allocate } = await import(${JSON.stringify(ALLOCATOR)});
    const { NetworkStore, defaultNetwork } = await import(${JSON.stringify(STORE)});
    const { parsePortForward } = await import(${JSON.stringify(PORTS)});
    const store = new NetworkStore(${JSON.stringify(root)});
    const request = ${request};
    try {
      const lease = await store.locked(() => allocate(store, defaultNetwork, { podId: ${JSON.stringify(id)}, ports: [], ...request }));
      console.log('ok ' + lease.ip);
    } catch (err) {
      console.log('error ' + err.message);
    }`;
  const run = async (request: string) => {
    const { stdout } = await execFileP(process.execPath, ['--input-type=module', '-e', child(podId(), request)]);
    return stdout.trim();
  };
  const plain = await Promise.all(Array.from({ length: 20 }, () => run('{}')));
  t.true(plain.every((line) => line.startsWith('ok ')), plain.join('\n'));
  const ips = plain.map((line) => formatIpv4(Number(line.slice(3))));
  t.is(new Set(ips).size, 20);
  t.deepEqual([...ips].sort(), Array.from({ length: 20 }, (_, i) => `10.88.0.${i + 2}`).sort());

  const sameIp = await Promise.all(Array.from({ length: 10 }, () => run(`{ ip: ${parseIpv4('10.88.7.7')} }`)));
  t.is(sameIp.filter((line) => line.startsWith('ok ')).length, 1, sameIp.join('\n'));
  t.true(sameIp.filter((line) => !line.startsWith('ok ')).every((line) => /^error --ip 10\.88\.7\.7 is taken in network "vmctr0" \(10\.88\.0\.0\/16\) by pod [0-9a-f]{12}$/.test(line)));
  const samePort = await Promise.all(Array.from({ length: 10 }, () => run(`{ ports: [parsePortForward('8080:80')] }`)));
  t.is(samePort.filter((line) => line.startsWith('ok ')).length, 1, samePort.join('\n'));

  const store = new NetworkStore(root);
  t.is((await store.leases('vmctr0')).length, 22);
  // Nothing but the lock and the leases file: each change's temporary file was renamed into place.
  t.deepEqual(await readdir(join(root, 'networks', 'vmctr0')), ['leases.json']);
});

test('release gives up a pod\'s lease; reclaim those of dead pods, once past the grace period', async (t) => {
  const store = new NetworkStore(await mkdtemp(join(work, 'root-')));
  const [a, b, c] = [podId(), podId(), podId()];
  for (const id of [a, b, c]) await store.locked(() => allocate(store, defaultNetwork, { podId: id, ports: [] }));
  const released = await store.locked(() => release(store, b));
  t.is(released?.network, 'vmctr0');
  t.is(formatIpv4(released!.lease.ip), '10.88.0.3');
  t.is(await store.locked(() => release(store, b)), undefined);
  t.deepEqual(await store.locked(() => reclaim(store, () => false)), [], 'leases younger than the grace period stay');
  const reclaimed = await store.locked(() => reclaim(store, (id) => id === a, 0));
  t.deepEqual(reclaimed.map((r) => r.lease.podId), [c]);
  t.deepEqual((await store.leases('vmctr0')).map((l) => l.podId), [a]);
  // The freed addresses are handed out again, lowest first.
  const next = await store.locked(() => allocate(store, defaultNetwork, { podId: podId(), ports: [] }));
  t.is(formatIpv4(next.ip), '10.88.0.3');
  await t.throwsAsync(() => store.locked(() => allocate(store, defaultNetwork, { podId: a, ports: [] })), { message: /^pod [0-9a-f]{32} already has the address 10\.88\.0\.2 of network "vmctr0"$/ });
  await t.throwsAsync(() => store.writeLeases('vmctr0', []), { message: 'NetworkStore.writeLeases: the store\'s lock is not held' });
  await t.throwsAsync(() => store.locked(() => store.locked(async () => 0)), { message: 'NetworkStore.locked: already held (not reentrant)' });
});
