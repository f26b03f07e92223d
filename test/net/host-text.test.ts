import test from 'ava';
import { hostNetworksFrom, overlapping } from '../../net/host-networks.js';
import { parseAddresses, parseLinks, parseRoutes } from '../../net/ip-json.js';
import { chooseSubnet, defaultNetwork, subnetProblem } from '../../net/network-store.js';
import { deletions, networkRules, parseTableRules, podRules } from '../../net/nft-rules.js';
import { parsePortForward } from '../../net/port-forward.js';
import { FALLBACK_NAMESERVERS, parseNameservers, podNameservers } from '../../net/resolv-conf.js';
import { formatCidr, formatIpv4, parseCidr, parseIpv4 } from '../../net/subnet.js';

// What the host's tools print, read by the pure parsers, and the text vmctr
// writes for nft. The samples are ip and nft output as Debian 12's iproute2
// 6.1 and nftables 1.0.6 print it.

const LINKS = '[{"ifindex":1,"ifname":"lo","flags":["LOOPBACK"],"mtu":65536},{"ifindex":3,"ifname":"vt0123456789ab","master":"vmctr0","linkinfo":{"info_kind":"tun","info_data":{"type":"tap"}}},{"ifindex":2,"ifname":"vmctr0","linkinfo":{"info_kind":"bridge"}},{"ifindex":4}]';
const ADDRS = '[{"ifindex":1,"ifname":"lo","addr_info":[{"family":"inet","local":"127.0.0.1","prefixlen":8}]},{"ifindex":4,"ifname":"eth0","addr_info":[{"family":"inet","local":"192.0.2.2","prefixlen":24},{"family":"inet6","local":"fe80::1","prefixlen":64}]},{"ifname":"vmctr0","addr_info":[{"family":"inet","local":"10.88.0.1","prefixlen":16}]}]';
const ROUTES = '[{"dst":"default","gateway":"192.0.2.1","dev":"eth0","flags":[]},{"dst":"192.0.2.0/24","dev":"eth0","protocol":"kernel","scope":"link"},{"dst":"8.8.8.8","dev":"eth0"},{"type":"blackhole","dst":"10.50.0.0/16","flags":[]},{"dst":"10.88.0.0/16","dev":"vmctr0"}]';

test('ip -j: links with their kind and bridge, IPv4 addresses, routes', (t) => {
  t.deepEqual(parseLinks(LINKS), [
    { name: 'lo', kind: undefined, master: undefined },
    { name: 'vt0123456789ab', kind: 'tun', master: 'vmctr0' },
    { name: 'vmctr0', kind: 'bridge', master: undefined },
  ]);
  t.deepEqual(parseAddresses(ADDRS).map((a) => `${a.device} ${formatIpv4(a.address)}/${a.prefixLength}`), ['lo 127.0.0.1/8', 'eth0 192.0.2.2/24', 'vmctr0 10.88.0.1/16']);
  t.deepEqual(parseRoutes(ROUTES).map((r) => `${r.type} ${r.destination ? formatCidr(r.destination) : 'default'} ${r.device ?? '-'}`), [
    'unicast default eth0', 'unicast 192.0.2.0/24 eth0', 'unicast 8.8.8.8/32 eth0', 'blackhole 10.50.0.0/16 -', 'unicast 10.88.0.0/16 vmctr0',
  ]);
  t.deepEqual(parseLinks(''), []);
  t.is(t.throws(() => parseRoutes('Error: ...'))?.message, 'cannot read the output of ip -j -4 route show: not JSON');
});

test('the host\'s networks: addresses, routes but the default, nameservers; vmctr\'s bridges and loopback left out', (t) => {
  const found = hostNetworksFrom(parseAddresses(ADDRS), parseRoutes(ROUTES), [parseIpv4('10.255.255.53')], new Set(['vmctr0']));
  t.deepEqual(found.map((n) => `${formatCidr(n.subnet)}: ${n.what}`), [
    '192.0.2.0/24: the address 192.0.2.2/24 of eth0',
    '192.0.2.0/24: the route to 192.0.2.0/24 on eth0',
    '8.8.8.8/32: the route to 8.8.8.8/32 on eth0',
    '10.50.0.0/16: the blackhole route to 10.50.0.0/16',
    '10.255.255.53/32: the nameserver 10.255.255.53',
  ]);
  t.is(overlapping(parseCidr('10.255.0.0/16'), found)?.what, 'the nameserver 10.255.255.53');
  t.is(overlapping(parseCidr('10.88.0.0/16'), found), undefined);
  // The automatic choice steps over all of them, and vmctr0.
  const taken = [...found, { subnet: parseCidr('10.89.0.0/23'), what: 'x' }];
  t.is(formatCidr(chooseSubnet(taken)!), '10.89.2.0/24');
  t.is(chooseSubnet([{ subnet: parseCidr('10.0.0.0/8'), what: 'x' }]), undefined);
  t.is(subnetProblem(parseCidr('10.50.3.0/24'), found), 'subnet 10.50.3.0/24 overlaps the blackhole route to 10.50.0.0/16: choose another with --subnet');
  t.is(subnetProblem(parseCidr('16.0.0.0/4'), found), 'subnet 16.0.0.0/4: use a prefix length from 8 to 30');
  t.is(subnetProblem(parseCidr('10.60.0.0/16'), found), undefined);
});

test('resolv.conf: IPv4 nameservers in order; loopback ones (a local stub) skipped for the next file, then public ones', (t) => {
  t.deepEqual(parseNameservers('# c\nsearch x\nnameserver 10.0.0.2\nnameserver fe80::1\n nameserver\t10.0.0.3 # x\nnameserver 300.1.1.1\n').map(formatIpv4), ['10.0.0.2', '10.0.0.3']);
  t.deepEqual(podNameservers(['nameserver 127.0.0.53\n', 'nameserver 192.0.2.53\n']).map(formatIpv4), ['192.0.2.53']);
  t.deepEqual(podNameservers(['nameserver 127.0.0.53\nnameserver 192.0.2.9\n', 'nameserver 192.0.2.53\n']).map(formatIpv4), ['192.0.2.9']);
  t.deepEqual(podNameservers(['nameserver 127.0.0.1\n', '']).map(formatIpv4), [...FALLBACK_NAMESERVERS]);
});

test('nft: a network\'s rules each name its bridge; a pod\'s forwards go to prerouting and output; deletions by handle, or the table with its last rule', (t) => {
  const rules = networkRules(defaultNetwork);
  t.true(rules.every((r) => r.startsWith('add rule inet vmctr ') && r.includes('"vmctr0"') && r.endsWith(' comment "vmctr net vmctr0"')));
  t.true(rules.includes('add rule inet vmctr postrouting ip saddr 10.88.0.0/16 oifname != "vmctr0" masquerade comment "vmctr net vmctr0"'));
  t.deepEqual(podRules('ab12', parseIpv4('10.88.0.2'), [parsePortForward('8080:80'), parsePortForward('127.0.0.1:53:5353/udp')]), [
    'add rule inet vmctr prerouting meta nfproto ipv4 fib daddr type local tcp dport 8080 dnat ip to 10.88.0.2:80 comment "vmctr pod ab12"',
    'add rule inet vmctr output meta nfproto ipv4 fib daddr type local tcp dport 8080 dnat ip to 10.88.0.2:80 comment "vmctr pod ab12"',
    'add rule inet vmctr prerouting meta nfproto ipv4 ip daddr 127.0.0.1 udp dport 53 dnat ip to 10.88.0.2:5353 comment "vmctr pod ab12"',
    'add rule inet vmctr output meta nfproto ipv4 ip daddr 127.0.0.1 udp dport 53 dnat ip to 10.88.0.2:5353 comment "vmctr pod ab12"',
  ]);
  const listed = parseTableRules(JSON.stringify({ nftables: [
    { metainfo: { version: '1.0.6' } },
    { table: { family: 'inet', name: 'vmctr', handle: 1 } },
    { chain: { family: 'inet', table: 'vmctr', name: 'forward', handle: 4 } },
    { rule: { family: 'inet', table: 'vmctr', chain: 'forward', handle: 7, comment: 'vmctr net vmctr0', expr: [] } },
    { rule: { family: 'inet', table: 'vmctr', chain: 'prerouting', handle: 9, comment: 'vmctr pod ab12', expr: [] } },
    { rule: { family: 'inet', table: 'vmctr', chain: 'output', handle: 10, expr: [] } },
  ] }));
  t.deepEqual(listed, [{ chain: 'forward', handle: 7, comment: 'vmctr net vmctr0' }, { chain: 'prerouting', handle: 9, comment: 'vmctr pod ab12' }, { chain: 'output', handle: 10, comment: undefined }]);
  t.deepEqual(deletions(listed, (r) => r.comment === 'vmctr pod ab12'), ['delete rule inet vmctr prerouting handle 9']);
  t.deepEqual(deletions(listed, () => true), ['delete table inet vmctr']);
  t.deepEqual(deletions(listed, () => false), []);
});
