// The nameservers pods use: the host's, as /etc/resolv.conf names them.
// A loopback resolver (systemd-resolved's 127.0.0.53, a local dnsmasq) is
// the host's own and unreachable from a pod, as vmctr's nft table drops
// pods' traffic to the host: then systemd-resolved's list of upstream
// servers, and when that does not help either, public resolvers, as Docker
// does. Only IPv4: pods have no IPv6.
import { readFile } from 'node:fs/promises';
import { parseIpv4, SubnetError } from './subnet.js';

export const FALLBACK_NAMESERVERS: readonly string[] = ['8.8.8.8', '8.8.4.4'];

/** Where resolver lists are read, in order: the host's, then systemd-resolved's upstreams. */
const RESOLV_CONF_PATHS = ['/etc/resolv.conf', '/run/systemd/resolve/resolv.conf'];

/** The IPv4 nameservers a resolv.conf names, in order; a bad line is skipped, as libc does. */
export function parseNameservers(text: string): number[] {
  return text.split('\n').flatMap((line) => {
    const m = /^\s*nameserver\s+(\S+)/.exec(line);
    if (!m) return [];
    try {
      return [parseIpv4(m[1]!)];
    } catch (err) {
      if (err instanceof SubnetError) return [];
      throw err;
    }
  });
}

const isLoopback = (address: number) => address >>> 24 === 127;

/** The nameservers of the first file that names one a pod can reach, without loopback ones. */
export function podNameservers(files: readonly string[]): number[] {
  for (const text of files) {
    const usable = parseNameservers(text).filter((a) => !isLoopback(a));
    if (usable.length) return usable;
  }
  return FALLBACK_NAMESERVERS.map(parseIpv4);
}

/** The host's resolv.conf files, as podNameservers reads them (a missing one is empty). */
export function readResolvConfs(): Promise<string[]> {
  return Promise.all(RESOLV_CONF_PATHS.map((path) => readFile(path, 'utf8').catch(() => '')));
}
