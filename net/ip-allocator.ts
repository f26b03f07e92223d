// Pods' addresses: one lease per pod, in its network's leases file
// (network-store.ts), holding its address and the host ports forwarded to
// it. Every function here that changes leases runs with the store's lock
// held by its caller (NetworkStore.locked), so allocations by several
// vmctr processes at once are serialized and never hand out one address
// twice. A new pod gets the lowest free address after the gateway, or the
// one it asks for.
import { NetworkError } from './network-error.js';
import { podRange, type Lease, type Network, type NetworkStore } from './network-store.js';
import { conflicts, formatHostSide, type PortForward } from './port-forward.js';
import { contains, formatCidr, formatIpv4 } from './subnet.js';

/**
 * A lease younger than this is never reclaimed: its pod may be one that
 * the caller of reclaim() did not know of yet when it decided who lives.
 */
export const LEASE_GRACE_MS = 60_000;

export interface LeaseRequest {
  readonly podId: string;
  /** The address asked for (--ip). */
  readonly ip?: number;
  readonly ports: readonly PortForward[];
}

/** A lease and the network it is in. */
export interface NetworkLease {
  readonly network: string;
  readonly lease: Lease;
}

/** The address a new lease of `network` gets, given its leases: `requested` if it is free, else the lowest free one. */
export function chooseAddress(network: Network, leases: readonly Lease[], requested?: number): number {
  const range = podRange(network);
  const name = `network "${network.name}" (${formatCidr(network.subnet)})`;
  const holder = new Map(leases.map((l) => [l.ip, l.podId]));
  if (requested !== undefined) {
    const ip = formatIpv4(requested);
    if (!contains(network.subnet, requested)) throw new NetworkError(`--ip ${ip} is not in ${name}`);
    if (requested === network.gateway) throw new NetworkError(`--ip ${ip} is the gateway of ${name}`);
    if (requested < range.first || requested > range.last) throw new NetworkError(`--ip ${ip} is not a pod address of ${name}: ${formatIpv4(range.first)} to ${formatIpv4(range.last)}`);
    const pod = holder.get(requested);
    if (pod !== undefined) throw new NetworkError(`--ip ${ip} is taken in ${name} by pod ${pod.slice(0, 12)}`);
    return requested;
  }
  for (let ip = range.first; ip <= range.last; ip++) if (!holder.has(ip)) return ip;
  throw new NetworkError(`${name} has no free address: all ${range.last - range.first + 1} are taken`);
}

/** Every lease of every network. */
export async function allLeases(store: NetworkStore): Promise<NetworkLease[]> {
  const networks = await store.list();
  const leases = await Promise.all(networks.map(async (n) => (await store.leases(n.name)).map((lease) => ({ network: n.name, lease }))));
  return leases.flat();
}

/** Which lease already claims one of `ports`; one line, or undefined. */
export function portClaimed(ports: readonly PortForward[], leases: readonly NetworkLease[]): string | undefined {
  for (const [i, port] of ports.entries()) {
    const twin = ports.slice(0, i).find((p) => conflicts(p, port));
    if (twin) return `host port ${formatHostSide(port)} is given twice`;
    for (const { network, lease } of leases) {
      if (lease.ports.some((p) => conflicts(p, port))) return `host port ${formatHostSide(port)} is already forwarded to pod ${lease.podId.slice(0, 12)} (network "${network}")`;
    }
  }
  return undefined;
}

/** Gives the pod an address of `network` and claims its host ports; the caller holds the lock. */
export async function allocate(store: NetworkStore, network: Network, request: LeaseRequest): Promise<Lease> {
  const current = await store.get(network.name); // removed meanwhile?
  const everywhere = await allLeases(store);
  const existing = everywhere.find((l) => l.lease.podId === request.podId);
  if (existing) throw new Error(`pod ${request.podId} already has the address ${formatIpv4(existing.lease.ip)} of network "${existing.network}"`);
  const claimed = portClaimed(request.ports, everywhere);
  if (claimed) throw new NetworkError(claimed);
  const leases = everywhere.filter((l) => l.network === current.name).map((l) => l.lease);
  const lease: Lease = { podId: request.podId, ip: chooseAddress(current, leases, request.ip), ports: request.ports, created: new Date().toISOString() };
  await store.writeLeases(current.name, [...leases, lease]);
  return lease;
}

/** Gives up the pod's lease, wherever it is: the lease, or undefined when it had none. The caller holds the lock. */
export async function release(store: NetworkStore, podId: string): Promise<NetworkLease | undefined> {
  for (const { name } of await store.list()) {
    const leases = await store.leases(name);
    const lease = leases.find((l) => l.podId === podId);
    if (!lease) continue;
    await store.writeLeases(name, leases.filter((l) => l !== lease));
    return { network: name, lease };
  }
  return undefined;
}

/**
 * Gives up the leases of pods that are dead (`isAlive` false) and older
 * than `graceMs`; the leases given up. The caller holds the lock.
 */
export async function reclaim(store: NetworkStore, isAlive: (podId: string) => boolean, graceMs = LEASE_GRACE_MS, now = Date.now()): Promise<NetworkLease[]> {
  const reclaimed: NetworkLease[] = [];
  for (const { name } of await store.list()) {
    const leases = await store.leases(name);
    const dead = leases.filter((l) => now - Date.parse(l.created) >= graceMs && !isAlive(l.podId));
    if (!dead.length) continue;
    await store.writeLeases(name, leases.filter((l) => !dead.includes(l)));
    reclaimed.push(...dead.map((lease) => ({ network: name, lease })));
  }
  return reclaimed;
}
