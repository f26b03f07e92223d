// IPv4 addresses and CIDR subnets as numbers: parsing, formatting,
// containment, overlap and address arithmetic. Pure: no host state.
// An address is an unsigned 32-bit integer; a subnet its network address
// and prefix length, with the host bits zero.
import { NetworkError } from './network-error.js';

export interface Subnet {
  /** The network address, host bits zero. */
  readonly network: number;
  readonly prefixLength: number;
}

/** An address or subnet that does not parse, or is not allowed where it is given. */
export class SubnetError extends NetworkError {}

const QUAD = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

/** `a.b.c.d` as a number; leading zeros are refused (some tools read them as octal). */
export function parseIpv4(text: string): number {
  const m = QUAD.exec(text);
  const parts = m ? m.slice(1).map((p) => (/^(0|[1-9]\d*)$/.test(p) ? Number(p) : NaN)) : [];
  if (parts.length !== 4 || parts.some((p) => !(p >= 0 && p <= 255))) throw new SubnetError(`"${text}" is not an IPv4 address (a.b.c.d, each 0 to 255)`);
  return ((parts[0]! << 24) | (parts[1]! << 16) | (parts[2]! << 8) | parts[3]!) >>> 0;
}

export function formatIpv4(address: number): string {
  return [address >>> 24, (address >>> 16) & 255, (address >>> 8) & 255, address & 255].join('.');
}

/** The mask of a prefix length: /24 is 0xffffff00. */
export function mask(prefixLength: number): number {
  return prefixLength === 0 ? 0 : (~0 << (32 - prefixLength)) >>> 0;
}

/** The subnet of `prefixLength` that holds `address`. */
export function subnetOf(address: number, prefixLength: number): Subnet {
  return { network: (address & mask(prefixLength)) >>> 0, prefixLength };
}

/** `a.b.c.d/n`; a subnet with host bits set is refused, naming the subnet meant. */
export function parseCidr(text: string): Subnet {
  const slash = text.indexOf('/');
  const prefix = text.slice(slash + 1);
  if (slash === -1 || !/^(0|[1-9]\d?)$/.test(prefix) || Number(prefix) > 32) throw new SubnetError(`"${text}" is not an IPv4 subnet (a.b.c.d/n, n from 0 to 32)`);
  let address: number;
  try {
    address = parseIpv4(text.slice(0, slash));
  } catch {
    throw new SubnetError(`"${text}" is not an IPv4 subnet (a.b.c.d/n, n from 0 to 32)`);
  }
  const subnet = subnetOf(address, Number(prefix));
  if (subnet.network !== address) throw new SubnetError(`"${text}" has host bits set: the subnet is ${formatCidr(subnet)}`);
  return subnet;
}

export function formatCidr(subnet: Subnet): string {
  return `${formatIpv4(subnet.network)}/${subnet.prefixLength}`;
}

/** How many addresses the subnet spans, network and broadcast included. */
export function size(subnet: Subnet): number {
  return 2 ** (32 - subnet.prefixLength);
}

export function broadcast(subnet: Subnet): number {
  return (subnet.network + size(subnet) - 1) >>> 0;
}

export function contains(subnet: Subnet, address: number): boolean {
  return ((address & mask(subnet.prefixLength)) >>> 0) === subnet.network;
}

/** Whether two subnets share an address: one holds the other's network address, as CIDR blocks nest or are disjoint. */
export function overlaps(a: Subnet, b: Subnet): boolean {
  return a.prefixLength <= b.prefixLength ? contains(a, b.network) : contains(b, a.network);
}

/** The addresses a host may take: all but the network and broadcast addresses (a /31 or /32 has none here: vmctr needs a gateway and pods). */
export function hostRange(subnet: Subnet): { first: number; last: number } | undefined {
  if (subnet.prefixLength > 30) return undefined;
  return { first: subnet.network + 1, last: broadcast(subnet) - 1 };
}

/** The subnets no pod network may use, and why. */
const RESERVED: readonly { subnet: Subnet; what: string }[] = [
  { subnet: parseCidr('0.0.0.0/8'), what: '"this network" (0.0.0.0/8)' },
  { subnet: parseCidr('127.0.0.0/8'), what: 'loopback (127.0.0.0/8)' },
  { subnet: parseCidr('169.254.0.0/16'), what: 'link-local (169.254.0.0/16)' },
  { subnet: parseCidr('224.0.0.0/3'), what: 'multicast and reserved (224.0.0.0/3)' },
];

/** What a reserved range `subnet` overlaps is, if any. */
export function reservedOverlap(subnet: Subnet): string | undefined {
  return RESERVED.find((r) => overlaps(r.subnet, subnet))?.what;
}
