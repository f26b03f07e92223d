// A networked pod as its guest sees it: eth0 with one IPv4 address, a
// default route and resolvers. The guest kernel configures eth0 itself,
// from `ip=` on its command line (CONFIG_IP_PNP), before /init runs: no
// DHCP, no agent code, no time. The apps get /etc/resolv.conf and
// /etc/hosts from the agent. Pure: what to write, not where.
import { formatIpv4, mask, parseIpv4, SubnetError } from '../net/subnet.js';

export interface GuestNetwork {
  /** The pod's tap on the host, made by the host side (net/). */
  tap: string;
  mac: string;
  /** The pod's IPv4 address, its prefix length, and the gateway (the network's bridge). */
  address: string;
  prefixLength: number;
  gateway: string;
  /** Resolvers, in order (the host's, or --dns). */
  dns: string[];
}

/** An address the guest is given, checked with the host side's parser (net/subnet.ts), named in the error. */
function checkAddress(what: string, value: string): void {
  try {
    parseIpv4(value);
  } catch (err) {
    if (err instanceof SubnetError) throw new Error(`invalid ${what} "${value}": an IPv4 address such as 10.88.0.2`);
    throw err;
  }
}

/** The dotted netmask of a prefix length (24 -> 255.255.255.0). */
export function netmask(prefixLength: number): string {
  if (!Number.isInteger(prefixLength) || prefixLength < 1 || prefixLength > 30) throw new Error(`invalid prefix length ${prefixLength}: 1 to 30`);
  return formatIpv4(mask(prefixLength));
}

/**
 * The kernel's `ip=` parameter (Documentation/admin-guide/nfs/nfsroot.rst):
 * ip=<client>:<server>:<gateway>:<netmask>:<hostname>:<device>:<autoconf>:<dns0>:<dns1>,
 * autoconf off; the kernel uses at most two resolvers, the apps' resolv.conf has them all.
 */
export function kernelIpParameter(net: GuestNetwork, hostname: string): string {
  checkAddress('pod address', net.address);
  checkAddress('gateway', net.gateway);
  for (const server of net.dns) checkAddress('DNS server', server);
  if (!/^[A-Za-z0-9][A-Za-z0-9.-]{0,63}$/.test(hostname)) throw new Error(`invalid hostname "${hostname}"`);
  const [dns0 = '', dns1 = ''] = net.dns;
  return `ip=${net.address}::${net.gateway}:${netmask(net.prefixLength)}:${hostname}:eth0:off:${dns0}:${dns1}`;
}

/** /etc/resolv.conf for the apps: the resolvers, no search domains. */
export function resolvConf(dns: readonly string[]): string {
  for (const server of dns) checkAddress('DNS server', server);
  return dns.map((server) => `nameserver ${server}\n`).join('');
}

/** /etc/hosts for the apps: loopback, and the pod's own name on its address. */
export function hostsFile(address: string, hostname: string): string {
  checkAddress('pod address', address);
  return `127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n${address}\t${hostname}\n`;
}
