import test from 'ava';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { PodNetworkConfig } from '../../net/pod-network.js';
import { inNetns } from './netns.js';
import { NAMESERVER } from './scenarios.js';

// The host side of pod networking, natively and as root, each scenario in
// a network namespace of its own (netns.ts): networks, bridges, taps, the
// nft table, port forwards and isolation, and that detach and gc leave the
// namespace's links, addresses, routes and ruleset exactly as they were.

type State = Record<string, string>;

let work: string;
test.before(async () => {
  work = await mkdtemp(join(tmpdir(), 'vmctr-net-'));
});
test.after.always(async () => {
  await rm(work, { recursive: true, force: true });
});

async function root(): Promise<string> {
  return mkdtemp(join(work, 'root-'));
}

test('networks: automatic subnets skip what vmctr and the host use; overlaps, bad names and subnets, and removing a network in use are one line each', async (t) => {
  const r = await inNetns<{ created: Record<string, string>; refused: Record<string, string>; removeInUse: string; listed: string[]; podIdPrefix: string }>('store', { root: await root() });
  t.deepEqual(r.created, { a: '10.89.0.0/24', b: '10.89.1.0/24', c: '10.89.3.0/24', explicit: '192.168.100.0/22' });
  t.deepEqual(r.refused, {
    hostAddress: 'subnet 10.89.2.128/25 overlaps the address 10.89.2.1/24 of hb0: choose another with --subnet',
    hostRoute: 'subnet 172.30.1.0/24 overlaps the route to 172.30.0.0/16 on hb0: choose another with --subnet',
    nameserver: `subnet 10.99.0.0/16 overlaps the nameserver ${NAMESERVER}: choose another with --subnet`,
    vmctrNetwork: 'subnet 10.88.5.0/24 overlaps vmctr network "vmctr0" (10.88.0.0/16): choose another with --subnet',
    otherNetwork: 'subnet 192.168.101.0/24 overlaps vmctr network "explicit" (192.168.100.0/22): choose another with --subnet',
    exists: 'a network named "a" already exists',
    default: 'a network named "vmctr0" already exists (the default network)',
    reserved: '"none" is not a network name vmctr can use (--net none means no network of vmctr\'s)',
    badName: 'invalid network name "bad name": use letters, digits, \'_\', \'.\' and \'-\', starting with a letter or digit, at most 63',
    hostBits: '--subnet: "10.90.0.1/24" has host bits set: the subnet is 10.90.0.0/24',
    tooSmall: 'subnet 10.90.0.0/31: use a prefix length from 8 to 30',
    loopback: 'subnet 127.3.0.0/16 overlaps loopback (127.0.0.0/8)',
    removeDefault: 'vmctr0 is the default network: it cannot be removed',
    removeMissing: 'no network named "zzz": vmctr network ls lists them',
  });
  t.is(r.removeInUse, `network "a" is in use by 1 pod (${r.podIdPrefix}): remove it first`);
  t.is(r.listed.length, 3);
  t.is(r.listed[0], 'vmctr0 10.88.0.0/16 vmctr0');
  t.regex(r.listed[1]!, /^c 10\.89\.3\.0\/24 vmbr-[0-9a-f]{8}$/);
  t.regex(r.listed[2]!, /^explicit 192\.168\.100\.0\/22 vmbr-[0-9a-f]{8}$/);
});

interface AttachDetach {
  a: string;
  b: string;
  c: string;
  config: PodNetworkConfig;
  configB: PodNetworkConfig;
  before: State;
  during: { state: State; ipForward: string; routeLocalnet: string; bridgeIpv6: string; tapIpv6: string; tapDetails: string; leases: number };
  afterFirstDetach: State;
  afterDetach: State;
  detachAgain: string;
  young: string[];
  gcAliveB: string[];
  withB: State;
  gcRest: string[];
  afterGc: State;
  leasesAfter: number;
}

test('attach makes a bridge, a tap and nft rules; detach, and gc after pods died, leave links, addresses, routes and ruleset exactly as before', async (t) => {
  const r = await inNetns<AttachDetach>('attachDetach', { root: await root() });
  const tap = `vt${r.a.slice(0, 12)}`;
  t.deepEqual(r.config, { network: 'vmctr0', bridge: 'vmctr0', tap, ip: '10.88.0.2', prefixLength: 16, gateway: '10.88.0.1', mac: '02:76:0a:58:00:02', dns: [NAMESERVER] });
  t.like(r.configB, { network: 'second', ip: '10.89.0.9', prefixLength: 24, gateway: '10.89.0.1', mac: '02:76:0a:59:00:09', dns: ['192.0.2.53'] });
  t.regex(r.configB.bridge, /^vmbr-[0-9a-f]{8}$/);

  // What the attach made: the bridges with their gateways (and a MAC of vmctr's), the persistent taps as their ports, the table.
  const links = JSON.parse(r.during.state.link) as { ifname: string; master?: string; address: string }[];
  t.like(links.find((l) => l.ifname === 'vmctr0'), { address: '02:76:0a:58:00:01' });
  t.like(links.find((l) => l.ifname === tap), { master: 'vmctr0' });
  t.like(links.find((l) => l.ifname === r.configB.tap), { master: r.configB.bridge });
  t.regex(r.during.state.addr, /"local":"10\.88\.0\.1","prefixlen":16/);
  t.regex(r.during.state.route, /"dst":"10\.89\.0\.0\/24","dev":"vmbr-/);
  t.regex(r.during.tapDetails, /"info_data":\{"type":"tap","pi":false,"vnet_hdr":false,"multi_queue":false,"persist":true\}/);
  t.regex(r.during.tapDetails, /"hairpin":true/);
  t.deepEqual([r.during.ipForward, r.during.routeLocalnet, r.during.bridgeIpv6, r.during.tapIpv6], ['1', '1', '1', '1']);
  t.is(r.during.leases, 2);
  const nft = r.during.state.nft;
  t.true(nft.startsWith('table inet vmctr {'), 'vmctr\'s table is the only one in the namespace');
  t.regex(nft, new RegExp(`fib daddr type local tcp dport 8080 dnat ip to 10\\.88\\.0\\.2:80 comment "vmctr pod ${r.a}"`));
  t.regex(nft, new RegExp(`ip daddr 127\\.0\\.0\\.1 udp dport 5353 dnat ip to 10\\.88\\.0\\.2:53 comment "vmctr pod ${r.a}"`));
  t.regex(nft, /ip saddr 10\.89\.0\.0\/24 oifname != "vmbr-[0-9a-f]{8}" masquerade comment "vmctr net second"/);
  t.regex(nft, /oifname "vmctr0" drop comment "vmctr net vmctr0"/);

  // The first pod's network goes with it; the second's stays until its pod goes too.
  t.notDeepEqual(r.afterFirstDetach, r.before);
  t.false(r.afterFirstDetach.link.includes('"vmctr0"'));
  t.false(r.afterFirstDetach.nft.includes('vmctr0'));
  t.deepEqual(r.afterDetach, r.before);
  t.is(r.detachAgain, '', 'detach is idempotent');

  // gc: young leases are kept; a live pod keeps its network; then the rest goes.
  t.deepEqual(r.young, []);
  t.deepEqual(r.gcAliveB.sort(), [
    `lease 10.88.0.2 of pod ${r.a} (network vmctr0)`,
    `lease 10.89.0.3 of pod ${r.c} (network second)`,
    `nft rules "vmctr pod ${r.a}"`,
    'nft rules "vmctr net vmctr0"',
    `tap vt${r.a.slice(0, 12)}`,
    `tap vt${r.c.slice(0, 12)}`,
    'bridge vmctr0',
  ].sort());
  t.true(r.withB.link.includes(`"vt${r.b.slice(0, 12)}"`));
  t.true(r.withB.nft.includes(`vmctr pod ${r.b}`));
  t.is(r.gcRest.length, 5);
  t.deepEqual(r.afterGc, r.before);
  t.is(r.leasesAfter, 0);
});

test('an attach that fails leaves nothing: a host port in use or claimed, a bad --ip, an exhausted network, a tap name in use, a subnet the host took since', async (t) => {
  const r = await inNetns<Record<string, string | number | State | PodNetworkConfig>>('failures', { root: await root() });
  const firstId = (r.first as PodNetworkConfig).tap.slice(2);
  t.like(r, {
    portInUse: 'host port 8080/tcp is already in use on this host',
    portInUseOnAddress: 'host port 127.0.0.1:8080/tcp is already in use on this host',
    udpPortInUse: 'host port 5353/udp is already in use on this host',
    notHostAddress: 'host port 192.0.2.7:8081/tcp: 192.0.2.7 is not an address of this host',
    leasesAfterPortInUse: 0,
    portClaimed: `host port 127.0.0.1:8081/tcp is already forwarded to pod ${firstId} (network "vmctr0")`,
    portTwice: 'host port 8082/tcp is given twice',
    ipTaken: `--ip 10.88.0.2 is taken in network "vmctr0" (10.88.0.0/16) by pod ${firstId}`,
    ipOutside: '--ip 10.1.1.1 is not in network "vmctr0" (10.88.0.0/16)',
    ipGateway: '--ip 10.88.0.1 is the gateway of network "vmctr0" (10.88.0.0/16)',
    ipBroadcast: '--ip 10.88.255.255 is not a pod address of network "vmctr0" (10.88.0.0/16): 10.88.0.2 to 10.88.255.254',
    ipBad: '--ip: "10.88.0.300" is not an IPv4 address (a.b.c.d, each 0 to 255)',
    noNetwork: 'no network named "nope": vmctr network ls lists them',
    exhausted: 'network "tiny" (10.77.0.0/30) has no free address: all 1 are taken',
    leasesBeforeClash: 2,
    hostTookSubnet: 'network "late" (10.66.0.0/24) overlaps the route to 10.66.0.0/16 on hb1, which the host has now: remove that, or use another network',
    leasesAtEnd: 0,
  });
  t.like(r.tiny, { ip: '10.77.0.2', gateway: '10.77.0.1', prefixLength: 30 });
  t.regex(r.tapClash as string, /^the host already has an interface named vt[0-9a-f]{12}, which pod [0-9a-f]{32} needs for its tap$/);
  t.deepEqual(r.stateAfterPortInUse, r.before);
  t.deepEqual(r.stateAfterClash, r.stateBeforeClash, 'the fresh network\'s bridge and rules, made before the tap failed, are gone');
  t.deepEqual(r.stateAfterLate, r.stateBeforeLate);
  t.deepEqual(r.after, r.before);
});

test('traffic: forwards from the host (localhost too) and from outside, outbound NAT, one network\'s pods talk, networks and the host are out of pods\' reach', async (t) => {
  const r = await inNetns<{ configs: Record<'a' | 'a2' | 'b', PodNetworkConfig>; seen: Record<string, string>; withoutTable: Record<string, string>; before: State; after: State }>('traffic', { root: await root() });
  t.deepEqual(r.seen, {
    // The address each server saw its client at; ERR:timeout is a dropped packet.
    hostToPod: '10.88.0.1',
    hostLocalhostForward: '10.88.0.1', // masqueraded from 127.0.0.1
    hostGatewayForward: '10.88.0.1',
    hostAddressForward: '198.51.100.1',
    outsideForward: '198.51.100.2', // the client's own address: not masqueraded
    outsideForwardUdp: '198.51.100.2',
    outsideToPodDirect: 'ERR:timeout',
    podToOutside: '198.51.100.1', // masqueraded to the host's address
    podToPodSameNetwork: r.configs.a2.ip,
    podToOwnForward: '10.88.0.1',
    podToNeighbourForward: '10.88.0.1',
    otherNetworkToPod: 'ERR:timeout',
    podToOtherNetwork: 'ERR:timeout',
    otherNetworkToForward: '10.88.0.1', // a forwarded port is the host's, open to every network
    podToHostAddress: 'ERR:timeout',
    podToGateway: 'ERR:timeout',
    podToOtherGateway: 'ERR:timeout',
    hostToOwnServer: 'host',
  });
  t.deepEqual(r.withoutTable, { otherNetworkToPod: r.configs.b.ip, podToHostAddress: 'host' }, 'the drops are the table\'s');
  t.deepEqual(r.after, r.before);
});
