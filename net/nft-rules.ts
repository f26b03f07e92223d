// vmctr's nftables table, as text for `nft -f -` and read back from
// `nft -j list table`. Pure. The table is vmctr's own (`inet vmctr`): its
// base chains hook in beside the host's tables and never touch them. Each
// rule carries a comment naming what it belongs to, `vmctr net NAME` or
// `vmctr pod ID`, which is how it is found again and removed (by handle).
// The rules only drop and translate: an accept here ends this table's
// chain, not the packet's path through the host's other tables, which may
// still drop it (NETWORKING.md).
import type { Network } from './network-store.js';
import type { PortForward } from './port-forward.js';
import { formatCidr, formatIpv4 } from './subnet.js';

export const TABLE = 'inet vmctr';

/** The chains, all accepting by default: created with the table, the table removed with its last rule. */
export function tableSkeleton(): string {
  return [
    `table ${TABLE} {`,
    '  chain prerouting { type nat hook prerouting priority dstnat; policy accept; }',
    // nftables names no dstnat priority for the output hook: -100 is that value.
    '  chain output { type nat hook output priority -100; policy accept; }',
    '  chain postrouting { type nat hook postrouting priority srcnat; policy accept; }',
    '  chain forward { type filter hook forward priority filter; policy accept; }',
    '  chain input { type filter hook input priority filter; policy accept; }',
    '}',
  ].join('\n');
}

export const networkTag = (name: string) => `vmctr net ${name}`;
export const podTag = (podId: string) => `vmctr pod ${podId}`;

const quoted = (s: string) => JSON.stringify(s);

/**
 * A network's rules. Each matches only its own bridge, so networks' rules
 * never depend on their order in a chain: traffic from one vmctr network
 * to another meets the second's `oifname drop`, whose only exceptions,
 * answers and forwarded ports, come before it.
 */
export function networkRules(network: Network): string[] {
  const b = quoted(network.bridge);
  const subnet = formatCidr(network.subnet);
  const rules = [
    // pods of one network talk (the host only sees this with br_netfilter)
    ['forward', `iifname ${b} oifname ${b} accept`],
    ['forward', `oifname ${b} ct state established,related accept`],
    // forwarded ports, from anywhere
    ['forward', `oifname ${b} ct status dnat accept`],
    // nothing else in: other vmctr networks, other hosts routing to the subnet
    ['forward', `oifname ${b} drop`],
    // pods have no IPv6
    ['forward', `iifname ${b} meta nfproto ipv6 drop`],
    // pods reach the host only with answers, and a ping to their gateway
    ['input', `iifname ${b} ct state established,related accept`],
    ['input', `iifname ${b} ip daddr ${formatIpv4(network.gateway)} icmp type echo-request accept`],
    ['input', `iifname ${b} drop`],
    // out through any other interface, as the host
    ['postrouting', `ip saddr ${subnet} oifname != ${b} masquerade`],
    // the host's own connections to a forwarded port on localhost (route_localnet is on for the bridge)
    ['postrouting', `oifname ${b} ip saddr 127.0.0.0/8 masquerade`],
    // a pod reaching a forwarded port of its own network: the answer must come back through the host
    ['postrouting', `oifname ${b} ip saddr ${subnet} ct status dnat masquerade`],
  ];
  return rules.map(([chain, rule]) => `add rule ${TABLE} ${chain} ${rule} comment ${quoted(networkTag(network.name))}`);
}

/** A pod's port forwards: for traffic arriving at the host (prerouting) and the host's own (output). */
export function podRules(podId: string, ip: number, ports: readonly PortForward[]): string[] {
  return ports.flatMap((p) => {
    const to = p.hostIp === undefined ? 'fib daddr type local' : `ip daddr ${formatIpv4(p.hostIp)}`;
    const rule = `meta nfproto ipv4 ${to} ${p.protocol} dport ${p.hostPort} dnat ip to ${formatIpv4(ip)}:${p.podPort} comment ${quoted(podTag(podId))}`;
    return [`add rule ${TABLE} prerouting ${rule}`, `add rule ${TABLE} output ${rule}`];
  });
}

export interface TableRule {
  readonly chain: string;
  readonly handle: number;
  readonly comment: string | undefined;
}

/** The rules of `nft -j list table inet vmctr`. */
export function parseTableRules(text: string): TableRule[] {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new Error(`cannot read the output of nft -j list table ${TABLE}: not JSON`);
  }
  const items = typeof value === 'object' && value !== null && Array.isArray((value as { nftables?: unknown }).nftables) ? (value as { nftables: unknown[] }).nftables : [];
  return items.flatMap((item) => {
    const rule = typeof item === 'object' && item !== null ? (item as { rule?: unknown }).rule : undefined;
    if (typeof rule !== 'object' || rule === null) return [];
    const { chain, handle, comment } = rule as Record<string, unknown>;
    if (typeof chain !== 'string' || typeof handle !== 'number') return [];
    return [{ chain, handle, comment: typeof comment === 'string' ? comment : undefined }];
  });
}

/** The commands that delete the rules `doomed` picks: the whole table when no rule would be left. */
export function deletions(rules: readonly TableRule[], doomed: (rule: TableRule) => boolean): string[] {
  const gone = rules.filter(doomed);
  if (gone.length === rules.length) return [`delete table ${TABLE}`];
  return gone.map((r) => `delete rule ${TABLE} ${r.chain} handle ${r.handle}`);
}
