// The scenarios of the host-side networking tests, each run by
// netns-child.ts in a network and mount namespace of its own: what they see
// is returned as JSON, and pod-network.test.ts checks it. The namespace's
// /etc/resolv.conf is a file of the scenario's (a bind mount in its own
// mount namespace), so the nameserver pods get is known.
import { randomBytes } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { once } from 'node:events';
import { writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { allocate, release } from '../../net/ip-allocator.js';
import { NetworkStore } from '../../net/network-store.js';
import { PodNetworks } from '../../net/pod-network.js';
import { parsePortForward } from '../../net/port-forward.js';
import { formatCidr } from '../../net/subnet.js';
import { tapName } from '../../net/host-links.js';
import { ask, hostState, Peer, sh, sysctl } from './netns-tools.js';

export const NAMESERVER = '10.99.0.53';

interface Input {
  root: string;
}

const podId = () => randomBytes(16).toString('hex');

async function fakeResolvConf(root: string): Promise<void> {
  const path = join(root, 'resolv.conf');
  await writeFile(path, `# test\nnameserver 127.0.0.53\nnameserver ${NAMESERVER}\n`);
  await sh('mount', ['--bind', path, '/etc/resolv.conf']);
}

/** The message of what `work` throws; '' when it does not. */
async function failure(work: () => Promise<unknown>): Promise<string> {
  try {
    await work();
    return '';
  } catch (err) {
    return (err as Error).message;
  }
}

async function leaseCount(store: NetworkStore): Promise<number> {
  let n = 0;
  for (const network of await store.list()) n += (await store.leases(network.name)).length;
  return n;
}

/** Networks made and refused: automatic subnets skip what vmctr and the host use; overlaps, bad names and subnets are one line each. */
async function store({ root }: Input) {
  await fakeResolvConf(root);
  const store = new NetworkStore(root);
  const created: Record<string, string> = {};
  const subnet = async (name: string, cidr?: string) => (created[name] = formatCidr((await store.create(name, cidr)).subnet));
  await subnet('a');
  await subnet('b');
  // A host bridge on the next /24: automatic choice skips it, and an overlap with it is refused.
  await sh('ip', ['link', 'add', 'hb0', 'type', 'bridge']);
  await sh('ip', ['addr', 'add', '10.89.2.1/24', 'dev', 'hb0']);
  await sh('ip', ['link', 'set', 'hb0', 'up']);
  await sh('ip', ['route', 'add', '172.30.0.0/16', 'dev', 'hb0']);
  await subnet('c');
  await subnet('explicit', '192.168.100.0/22');
  const refused = {
    hostAddress: await failure(() => store.create('d', '10.89.2.128/25')),
    hostRoute: await failure(() => store.create('d', '172.30.1.0/24')),
    nameserver: await failure(() => store.create('d', '10.99.0.0/16')),
    vmctrNetwork: await failure(() => store.create('d', '10.88.5.0/24')),
    otherNetwork: await failure(() => store.create('d', '192.168.101.0/24')),
    exists: await failure(() => store.create('a')),
    default: await failure(() => store.create('vmctr0')),
    reserved: await failure(() => store.create('none')),
    badName: await failure(() => store.create('bad name')),
    hostBits: await failure(() => store.create('d', '10.90.0.1/24')),
    tooSmall: await failure(() => store.create('d', '10.90.0.0/31')),
    loopback: await failure(() => store.create('d', '127.3.0.0/16')),
    removeDefault: await failure(() => store.remove('vmctr0')),
    removeMissing: await failure(() => store.remove('zzz')),
  };
  const id = podId();
  await store.locked(async () => allocate(store, await store.get('a'), { podId: id, ports: [] }));
  const removeInUse = await failure(() => store.remove('a'));
  await store.locked(() => release(store, id));
  await store.remove('a');
  await store.remove('b');
  const listed = (await store.list()).map((n) => `${n.name} ${formatCidr(n.subnet)} ${n.bridge}`);
  return { created, refused, removeInUse, listed, podIdPrefix: id.slice(0, 12) };
}

/** A pod attached and detached, then attached and left for gc: the namespace is as it was, each time. */
async function attachDetach({ root }: Input) {
  await fakeResolvConf(root);
  const networks = new PodNetworks(root);
  await networks.store.create('second');
  const before = await hostState();
  const a = podId();
  const b = podId();
  const config = await networks.attach(a, { ports: [parsePortForward('8080:80'), parsePortForward('127.0.0.1:5353:53/udp')] });
  const configB = await networks.attach(b, { network: 'second', ip: '10.89.0.9', dns: ['192.0.2.53'] });
  const during = {
    state: await hostState(),
    ipForward: await sysctl('net.ipv4.ip_forward'),
    routeLocalnet: await sysctl(`net.ipv4.conf.${config.bridge}.route_localnet`),
    bridgeIpv6: await sysctl(`net.ipv6.conf.${config.bridge}.disable_ipv6`),
    tapIpv6: await sysctl(`net.ipv6.conf.${config.tap}.disable_ipv6`),
    tapDetails: await sh('ip', ['-d', '-j', 'link', 'show', config.tap]),
    leases: await leaseCount(networks.store),
  };
  await networks.detach(a);
  const afterFirstDetach = await hostState();
  await networks.detach(b);
  const afterDetach = await hostState();
  const detachAgain = await failure(() => networks.detach(a));

  // Left behind (as by a VMM killed with SIGKILL): a live pod's things stay, a dead one's go.
  const c = podId();
  await networks.attach(a, { ports: [parsePortForward('8080:80')] });
  await networks.attach(b, { network: 'second', ports: [parsePortForward('9090:90')] });
  await networks.attach(c, { network: 'second' });
  const young = await networks.gcLeftovers(() => false);
  const gcAliveB = await networks.gcLeftovers((id) => id === b, 0);
  const withB = await hostState();
  const gcRest = await networks.gcLeftovers(() => false, 0);
  const afterGc = await hostState();
  const leasesAfter = await leaseCount(networks.store);
  return { a, b, c, config, configB, before, during, afterFirstDetach, afterDetach, detachAgain, young, gcAliveB, withB, gcRest, afterGc, leasesAfter };
}

/** Attaches that fail leave nothing: a port in use or claimed, a taken or foreign --ip, an exhausted network, a tap name in use, a subnet the host took since. */
async function failures({ root }: Input) {
  await fakeResolvConf(root);
  const networks = new PodNetworks(root);
  await networks.store.create('tiny', '10.77.0.0/30');
  await networks.store.create('late', '10.66.0.0/24');
  await networks.store.create('fresh');
  const before = await hostState();
  const listener = createServer().listen(8080, '0.0.0.0');
  await once(listener, 'listening');
  const udpListener = createSocket('udp4').bind(5353, '127.0.0.1');
  await once(udpListener, 'listening');
  const first = podId();
  const second = podId();
  const result = {
    portInUse: await failure(() => networks.attach(podId(), { ports: [parsePortForward('8080:80')] })),
    portInUseOnAddress: await failure(() => networks.attach(podId(), { ports: [parsePortForward('127.0.0.1:8080:80')] })),
    udpPortInUse: await failure(() => networks.attach(podId(), { ports: [parsePortForward('8079:80'), parsePortForward('5353:53/udp')] })),
    notHostAddress: await failure(() => networks.attach(podId(), { ports: [parsePortForward('192.0.2.7:8081:80')] })),
    stateAfterPortInUse: await hostState(),
    leasesAfterPortInUse: await leaseCount(networks.store),
    first: await networks.attach(first, { ports: [parsePortForward('8081:80')] }),
    portClaimed: await failure(() => networks.attach(podId(), { ports: [parsePortForward('127.0.0.1:8081:81')] })),
    portTwice: await failure(() => networks.attach(podId(), { ports: [parsePortForward('8082:80'), parsePortForward('8082:81')] })),
    ipTaken: await failure(() => networks.attach(podId(), { ip: '10.88.0.2' })),
    ipOutside: await failure(() => networks.attach(podId(), { ip: '10.1.1.1' })),
    ipGateway: await failure(() => networks.attach(podId(), { ip: '10.88.0.1' })),
    ipBroadcast: await failure(() => networks.attach(podId(), { ip: '10.88.255.255' })),
    ipBad: await failure(() => networks.attach(podId(), { ip: '10.88.0.300' })),
    noNetwork: await failure(() => networks.attach(podId(), { network: 'nope' })),
    tiny: await networks.attach(second, { network: 'tiny' }),
    exhausted: await failure(() => networks.attach(podId(), { network: 'tiny' })),
    leasesBeforeClash: await leaseCount(networks.store),
    tapClash: '',
    stateBeforeClash: {} as Record<string, string>,
    stateAfterClash: {} as Record<string, string>,
    hostTookSubnet: '',
    stateBeforeLate: {} as Record<string, string>,
    stateAfterLate: {} as Record<string, string>,
    leasesAtEnd: 0,
  };
  listener.close();
  udpListener.close();
  // Another interface has the name the pod's tap needs, on a network whose bridge and rules the attach makes first.
  const clash = podId();
  await sh('ip', ['link', 'add', tapName(clash), 'type', 'veth', 'peer', 'name', 'clashpeer']);
  result.stateBeforeClash = await hostState();
  result.tapClash = await failure(() => networks.attach(clash, { network: 'fresh', ports: [parsePortForward('8083:80')] }));
  result.stateAfterClash = await hostState();
  await sh('ip', ['link', 'del', tapName(clash)]);
  // The host routes the network's subnet since it was created.
  await sh('ip', ['link', 'add', 'hb1', 'type', 'bridge']);
  await sh('ip', ['link', 'set', 'hb1', 'up']);
  await sh('ip', ['route', 'add', '10.66.0.0/16', 'dev', 'hb1']);
  result.stateBeforeLate = await hostState();
  result.hostTookSubnet = await failure(() => networks.attach(podId(), { network: 'late' }));
  result.stateAfterLate = await hostState();
  await sh('ip', ['link', 'del', 'hb1']);
  await networks.detach(first);
  await networks.detach(second);
  result.leasesAtEnd = await leaseCount(networks.store);
  return { before, after: await hostState(), ...result };
}

/**
 * Traffic through the bridges and the table: pods are peers on veths in
 * the bridges (the tap the attach made stays unused), "outside" is a peer
 * routed to the scenario's namespace, which plays the host.
 */
async function traffic({ root }: Input) {
  await fakeResolvConf(root);
  const networks = new PodNetworks(root);
  await networks.store.create('other');
  const before = await hostState();
  const outside = await Peer.start(9000);
  // Outside routes the pods' subnets to the host, as a host on the LAN might: they are not reached that way all the same.
  await outside.configure('198.51.100.2/30', { hostCidr: '198.51.100.1/30', routes: ['10.88.0.0/16', '10.89.0.0/24'] });
  // The scenario's own server, on every address: pods must not reach it.
  const hostServer = createServer((s) => s.end('host\n')).listen(7000, '0.0.0.0');
  await once(hostServer, 'listening');

  const pods = { a: podId(), a2: podId(), b: podId() };
  const configs = {
    a: await networks.attach(pods.a, { ports: [parsePortForward('8080:80'), parsePortForward('5353:53/udp')] }),
    a2: await networks.attach(pods.a2),
    b: await networks.attach(pods.b, { network: 'other' }),
  };
  const peers: Record<keyof typeof pods, Peer> = { a: await Peer.start(80, 53), a2: await Peer.start(80), b: await Peer.start(80) };
  for (const key of ['a', 'a2', 'b'] as const) {
    const c = configs[key];
    await peers[key].configure(`${c.ip}/${c.prefixLength}`, { gateway: c.gateway, bridge: c.bridge });
  }
  const { a, b } = configs;
  const seen = {
    hostToPod: await ask(undefined, a.ip, 80),
    hostLocalhostForward: await ask(undefined, '127.0.0.1', 8080),
    hostGatewayForward: await ask(undefined, a.gateway, 8080),
    hostAddressForward: await ask(undefined, '198.51.100.1', 8080),
    outsideForward: await ask(outside, '198.51.100.1', 8080),
    outsideForwardUdp: await ask(outside, '198.51.100.1', 5353, 'udp'),
    outsideToPodDirect: await ask(outside, a.ip, 80),
    podToOutside: await ask(peers.a, '198.51.100.2', 9000),
    podToPodSameNetwork: await ask(peers.a2, a.ip, 80),
    podToOwnForward: await ask(peers.a, a.gateway, 8080),
    podToNeighbourForward: await ask(peers.a2, '198.51.100.1', 8080),
    otherNetworkToPod: await ask(peers.b, a.ip, 80),
    podToOtherNetwork: await ask(peers.a, b.ip, 80),
    otherNetworkToForward: await ask(peers.b, '198.51.100.1', 8080),
    podToHostAddress: await ask(peers.a, '198.51.100.1', 7000),
    podToGateway: await ask(peers.a, a.gateway, 7000),
    podToOtherGateway: await ask(peers.a, b.gateway, 7000),
    hostToOwnServer: await ask(undefined, '198.51.100.1', 7000),
  };
  // The control: without vmctr's table the host routes between the networks and serves pods, so the drops above are the table's.
  await sh('nft', ['delete', 'table', 'inet', 'vmctr']);
  const withoutTable = {
    otherNetworkToPod: await ask(peers.b, a.ip, 80),
    podToHostAddress: await ask(peers.a, '198.51.100.1', 7000),
  };
  hostServer.close();
  for (const peer of [...Object.values(peers), outside]) await peer.stop();
  for (const id of Object.values(pods)) await networks.detach(id);
  return { configs, seen, withoutTable, before, after: await hostState() };
}

export const scenarios = { store, attachDetach, failures, traffic } satisfies Record<string, (input: Input) => Promise<unknown>>;
