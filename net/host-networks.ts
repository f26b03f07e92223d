// What the host already uses of the IPv4 space, in the current network
// namespace, so that a pod network never shadows it: the subnets of its
// addresses and of its routes (main table; the default route overlaps
// everything and is left out), and the nameservers pods are to reach
// through it. vmctr's own bridges are left out: their subnets are vmctr
// networks, checked as such.
import { parseAddresses, parseRoutes, type Address, type Route } from './ip-json.js';
import { podNameservers, readResolvConfs } from './resolv-conf.js';
import { formatCidr, formatIpv4, overlaps, subnetOf, type Subnet } from './subnet.js';
import { run } from './tool.js';

export interface HostNetwork {
  readonly subnet: Subnet;
  /** What it is, for the error: `the route to 192.0.2.0/24 on eth0`. */
  readonly what: string;
}

/** The host's networks, from its addresses, routes and pods' nameservers, except those on `ignoredDevices`. */
export function hostNetworksFrom(addresses: readonly Address[], routes: readonly Route[], nameservers: readonly number[], ignoredDevices: ReadonlySet<string>): HostNetwork[] {
  const found: HostNetwork[] = [];
  for (const a of addresses) {
    if (ignoredDevices.has(a.device) || a.address >>> 24 === 127) continue;
    found.push({ subnet: subnetOf(a.address, a.prefixLength), what: `the address ${formatIpv4(a.address)}/${a.prefixLength} of ${a.device}` });
  }
  for (const r of routes) {
    if (!r.destination || (r.device !== undefined && ignoredDevices.has(r.device))) continue;
    const where = r.device === undefined ? '' : ` on ${r.device}`;
    found.push({ subnet: r.destination, what: `the ${r.type === 'unicast' ? '' : `${r.type} `}route to ${formatCidr(r.destination)}${where}` });
  }
  for (const n of nameservers) found.push({ subnet: subnetOf(n, 32), what: `the nameserver ${formatIpv4(n)}` });
  return found;
}

/** The first of `networks` that overlaps `subnet`. */
export function overlapping(subnet: Subnet, networks: readonly HostNetwork[]): HostNetwork | undefined {
  return networks.find((n) => overlaps(n.subnet, subnet));
}

/** The host's networks now (ip -j addr, ip -j route, resolv.conf). */
export async function readHostNetworks(ignoredDevices: ReadonlySet<string>): Promise<HostNetwork[]> {
  const [addresses, routes, resolvConfs] = await Promise.all([run('ip', ['-j', '-4', 'addr', 'show']), run('ip', ['-j', '-4', 'route', 'show']), readResolvConfs()]);
  return hostNetworksFrom(parseAddresses(addresses), parseRoutes(routes), podNameservers(resolvConfs), ignoredDevices);
}
