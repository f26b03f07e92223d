// Named pod networks and their leases, under the state root:
//   <root>/networks/.lock                one flock for all of it (no network name starts with a dot)
//   <root>/networks/<name>/network.json  a network's definition (none for vmctr0)
//   <root>/networks/<name>/leases.json   its leases: which pod has which address and host ports
// Every change is made holding the lock and written atomically, so several
// vmctr processes can create networks and allocate addresses at once, and a
// reader without the lock sees a whole file. One lock for every network:
// a change holds it for milliseconds, and a pod start that also checks
// host ports against every other network's needs them all anyway.
//
// The default network, vmctr0 (10.88.0.0/16, as podman's), is built in:
// it always exists and cannot be removed.
import { AsyncLocalStorage } from 'node:async_hooks';
import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { NAME_PATTERN } from '../pod/pod-dir.js';
import { PodLock } from '../pod/pod-lock.js';
import { writeFileAtomic } from './atomic-file.js';
import { overlapping, readHostNetworks, type HostNetwork } from './host-networks.js';
import { NetworkError } from './network-error.js';
import { formatPortForward, parsePortForward, type PortForward } from './port-forward.js';
import { formatCidr, formatIpv4, hostRange, parseCidr, parseIpv4, reservedOverlap, SubnetError, type Subnet } from './subnet.js';

export const DEFAULT_NETWORK = 'vmctr0';
const DEFAULT_SUBNET = '10.88.0.0/16';
const FORMAT_VERSION = 1;
/** How long a change waits for the lock before it gives up: longer than any change takes. */
const LOCK_TIMEOUT_MS = 30_000;
/** Names that are not networks: `--net none` is a pod without one; `host` would be the host's. */
const RESERVED_NAMES = new Set(['none', 'host']);
/** A network may be a /8 to a /30: a gateway and at least one pod. */
export const PREFIX_RANGE = { min: 8, max: 30 } as const;
/** Where a network created without --subnet gets its /24: the first free one from 10.89.0.0/24 (10.88 is vmctr0's) to 10.255.255.0/24. */
const AUTO_SUBNETS = { first: parseIpv4('10.89.0.0'), last: parseIpv4('10.255.255.0'), prefixLength: 24 } as const;

export interface Network {
  readonly name: string;
  readonly subnet: Subnet;
  /** The bridge's address, the pods' default route: the subnet's first address. */
  readonly gateway: number;
  readonly bridge: string;
  readonly isDefault: boolean;
  /** When it was created; none for the built-in vmctr0. */
  readonly created?: string;
}

export interface Lease {
  readonly podId: string;
  readonly ip: number;
  /** The host ports forwarded to it: claimed here so that two pods never get the same one. */
  readonly ports: readonly PortForward[];
  readonly created: string;
}

/**
 * The bridge of a network: `vmctr0` for the default one, else vmbr- and a
 * hash of the name (an interface name has at most 15 characters, a
 * network's name up to 63).
 */
export function bridgeName(network: string): string {
  return network === DEFAULT_NETWORK ? DEFAULT_NETWORK : `vmbr-${createHash('sha256').update(network).digest('hex').slice(0, 8)}`;
}

function networkOf(name: string, subnet: Subnet, created?: string): Network {
  return { name, subnet, gateway: subnet.network + 1, bridge: bridgeName(name), isDefault: name === DEFAULT_NETWORK, ...(created === undefined ? {} : { created }) };
}

export const defaultNetwork: Network = networkOf(DEFAULT_NETWORK, parseCidr(DEFAULT_SUBNET));

/** Why `subnet` cannot be a pod network, given what is taken: undefined when it can. */
export function subnetProblem(subnet: Subnet, taken: readonly HostNetwork[]): string | undefined {
  const cidr = formatCidr(subnet);
  if (subnet.prefixLength < PREFIX_RANGE.min || subnet.prefixLength > PREFIX_RANGE.max) return `subnet ${cidr}: use a prefix length from ${PREFIX_RANGE.min} to ${PREFIX_RANGE.max}`;
  const reserved = reservedOverlap(subnet);
  if (reserved) return `subnet ${cidr} overlaps ${reserved}`;
  const other = overlapping(subnet, taken);
  if (other) return `subnet ${cidr} overlaps ${other.what}: choose another with --subnet`;
  return undefined;
}

/** The first /24 of AUTO_SUBNETS that overlaps nothing taken. */
export function chooseSubnet(taken: readonly HostNetwork[]): Subnet | undefined {
  const step = 2 ** (32 - AUTO_SUBNETS.prefixLength);
  for (let network = AUTO_SUBNETS.first; network <= AUTO_SUBNETS.last; network += step) {
    const subnet = { network, prefixLength: AUTO_SUBNETS.prefixLength };
    if (!overlapping(subnet, taken)) return subnet;
  }
  return undefined;
}

type JsonRecord = Readonly<Record<string, unknown>>;

const isRecord = (v: unknown): v is JsonRecord => typeof v === 'object' && v !== null && !Array.isArray(v);

/** A state file's JSON, or undefined when it does not exist; a torn or foreign one is an error naming it. */
async function readState(path: string): Promise<JsonRecord | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new Error(`cannot read ${path}: not JSON`);
  }
  if (!isRecord(value) || value.version !== FORMAT_VERSION) throw new Error(`cannot read ${path}: not a version ${FORMAT_VERSION} vmctr network file`);
  return value;
}

function parseLease(value: unknown, path: string): Lease {
  const bad = () => new Error(`cannot read ${path}: a lease is not {podId, ip, ports, created}`);
  if (!isRecord(value) || typeof value.podId !== 'string' || typeof value.ip !== 'string' || typeof value.created !== 'string' || !Array.isArray(value.ports)) throw bad();
  const ports = value.ports.map((p) => {
    if (typeof p !== 'string') throw bad();
    return parsePortForward(p);
  });
  return { podId: value.podId, ip: parseIpv4(value.ip), ports, created: value.created };
}

export class NetworkStore {
  readonly #held = new AsyncLocalStorage<true>();

  constructor(readonly root: string) {}

  get dir(): string {
    return join(this.root, 'networks');
  }

  /**
   * Runs `work` holding the store's lock: every change to networks and
   * leases is made under it. Not reentrant: a second flock of this process
   * would wait for the first.
   */
  async locked<T>(work: () => Promise<T>): Promise<T> {
    if (this.#held.getStore()) throw new Error('NetworkStore.locked: already held (not reentrant)');
    await mkdir(this.dir, { recursive: true, mode: 0o755 });
    const path = join(this.dir, '.lock');
    const lock = await PodLock.acquire(path, LOCK_TIMEOUT_MS);
    if (!lock) throw new Error(`${path} has been locked by another vmctr for ${LOCK_TIMEOUT_MS / 1000} s`);
    try {
      return await this.#held.run(true, work);
    } finally {
      lock.release();
    }
  }

  #requireLock(what: string): void {
    if (!this.#held.getStore()) throw new Error(`NetworkStore.${what}: the store's lock is not held`);
  }

  /** The network named `name`, if there is one. */
  async find(name: string): Promise<Network | undefined> {
    if (name === DEFAULT_NETWORK) return defaultNetwork;
    if (!NAME_PATTERN.test(name)) return undefined;
    const path = join(this.dir, name, 'network.json');
    const value = await readState(path);
    if (!value) return undefined;
    if (value.name !== name || typeof value.subnet !== 'string' || typeof value.created !== 'string') throw new Error(`cannot read ${path}: not {name, subnet, created}`);
    const subnet = parseCidr(value.subnet);
    if (subnet.prefixLength < PREFIX_RANGE.min || subnet.prefixLength > PREFIX_RANGE.max) throw new Error(`cannot read ${path}: subnet ${value.subnet} is not a /${PREFIX_RANGE.min} to a /${PREFIX_RANGE.max}`);
    return networkOf(name, subnet, value.created);
  }

  async get(name: string): Promise<Network> {
    const network = await this.find(name);
    if (!network) throw new NetworkError(`no network named "${name}": vmctr network ls lists them`);
    return network;
  }

  /** Every network: vmctr0 first, then by name. */
  async list(): Promise<Network[]> {
    const names = (await readdir(this.dir).catch(() => [] as string[])).filter((n) => n !== DEFAULT_NETWORK && NAME_PATTERN.test(n)).sort();
    const found = await Promise.all(names.map((n) => this.find(n)));
    return [defaultNetwork, ...found.filter((n): n is Network => n !== undefined)];
  }

  async leases(network: string): Promise<Lease[]> {
    const path = join(this.dir, network, 'leases.json');
    const value = await readState(path);
    if (!value) return [];
    if (!Array.isArray(value.leases)) throw new Error(`cannot read ${path}: no leases`);
    return value.leases.map((l) => parseLease(l, path));
  }

  /** Replaces the network's leases; the caller holds the lock. */
  async writeLeases(network: string, leases: readonly Lease[]): Promise<void> {
    this.#requireLock('writeLeases');
    await mkdir(join(this.dir, network), { recursive: true, mode: 0o755 });
    const stored = leases.map((l) => ({ podId: l.podId, ip: formatIpv4(l.ip), ports: l.ports.map(formatPortForward), created: l.created }));
    await writeFileAtomic(join(this.dir, network, 'leases.json'), `${JSON.stringify({ version: FORMAT_VERSION, leases: stored }, null, 2)}\n`);
  }

  /**
   * Creates a network on `subnet`, or on the first free /24 from 10.89.0.0/24
   * when none is given; refused when it overlaps another vmctr network or a
   * subnet the host uses (host-networks.ts).
   */
  async create(name: string, subnetText?: string): Promise<Network> {
    if (!NAME_PATTERN.test(name)) throw new NetworkError(`invalid network name "${name}": use letters, digits, '_', '.' and '-', starting with a letter or digit, at most 63`);
    if (RESERVED_NAMES.has(name)) throw new NetworkError(`"${name}" is not a network name vmctr can use (--net ${name} means no network of vmctr's)`);
    let requested: Subnet | undefined;
    try {
      requested = subnetText === undefined ? undefined : parseCidr(subnetText);
    } catch (err) {
      if (err instanceof SubnetError) throw new SubnetError(`--subnet: ${err.message}`);
      throw err;
    }
    return this.locked(async () => {
      if (await this.find(name)) throw new NetworkError(`a network named "${name}" already exists${name === DEFAULT_NETWORK ? ' (the default network)' : ''}`);
      const networks = await this.list();
      const bridge = bridgeName(name);
      const sameBridge = networks.find((n) => n.bridge === bridge);
      if (sameBridge) throw new NetworkError(`network "${name}" would have the bridge ${bridge} of network "${sameBridge.name}": choose another name`);
      const taken = [
        ...networks.map((n) => ({ subnet: n.subnet, what: `vmctr network "${n.name}" (${formatCidr(n.subnet)})` })),
        ...(await readHostNetworks(new Set(networks.map((n) => n.bridge)))),
      ];
      const subnet = requested ?? chooseSubnet(taken);
      if (!subnet) throw new NetworkError('no free /24 is left from 10.89.0.0/24 to 10.255.255.0/24: give a subnet with --subnet');
      const problem = subnetProblem(subnet, taken);
      if (problem) throw new NetworkError(problem);
      const network = networkOf(name, subnet, new Date().toISOString());
      await mkdir(join(this.dir, name), { recursive: true, mode: 0o755 });
      const stored = { version: FORMAT_VERSION, name, subnet: formatCidr(subnet), created: network.created };
      await writeFileAtomic(join(this.dir, name, 'network.json'), `${JSON.stringify(stored, null, 2)}\n`);
      return network;
    });
  }

  /** Removes a network no pod uses; the default network stays. */
  async remove(name: string): Promise<void> {
    if (name === DEFAULT_NETWORK) throw new NetworkError(`${DEFAULT_NETWORK} is the default network: it cannot be removed`);
    await this.locked(async () => {
      await this.get(name);
      const leases = await this.leases(name);
      if (leases.length) {
        const pods = leases.map((l) => l.podId.slice(0, 12));
        throw new NetworkError(`network "${name}" is in use by ${pods.length} pod${pods.length > 1 ? 's' : ''} (${pods.join(', ')}): remove ${pods.length > 1 ? 'them' : 'it'} first`);
      }
      await rm(join(this.dir, name), { recursive: true, force: true });
    });
  }
}

/** The addresses pods of `network` can have: its host range without the gateway. */
export function podRange(network: Network): { first: number; last: number } {
  const range = hostRange(network.subnet)!;
  return { first: network.gateway + 1, last: range.last };
}
