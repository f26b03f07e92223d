// A pod's network on the host, for the run path: attach gives a pod an
// address, its network's bridge and nft rules (made by the network's first
// pod), a tap on that bridge and its port forwards, in that order, and
// undoes all of it when any step fails; detach removes the pod's part, and
// its network's bridge and rules with the network's last pod; gcLeftovers
// removes what dead pods left (a VMM killed with SIGKILL leaves all of it).
// Each runs holding the network store's lock from start to end: a pod
// start then sees the host's links and table as they are (no other
// vmctr is between a check and what follows), at the cost of pod starts
// waiting for each other's few `ip` and `nft` commands.
import { allocate, allLeases, reclaim, release, LEASE_GRACE_MS } from './ip-allocator.js';
import { addTap, ensureBridge, listLinks, macFor, removeLink, tapName, vmctrLinks } from './host-links.js';
import { overlapping, readHostNetworks } from './host-networks.js';
import { checkHostPortsFree } from './host-ports.js';
import { addNetworkRules, addPodRules, removeNetworkRules, removePodRules, removeRules } from './nat.js';
import { NetworkError } from './network-error.js';
import { DEFAULT_NETWORK, NetworkStore, type Network } from './network-store.js';
import { networkTag, podTag } from './nft-rules.js';
import type { PortForward } from './port-forward.js';
import { podNameservers, readResolvConfs } from './resolv-conf.js';
import { formatCidr, formatIpv4, parseIpv4, SubnetError } from './subnet.js';

export interface AttachOptions {
  /** The network's name; vmctr0 when absent. */
  readonly network?: string;
  /** The address asked for (--ip), a.b.c.d. */
  readonly ip?: string;
  readonly ports?: readonly PortForward[];
  /** Nameservers for the pod (--dns); the host's when absent (resolv-conf.ts). */
  readonly dns?: readonly string[];
}

/** What the pod's VMM and guest need: the tap to open, and the guest's address, route and resolvers. */
export interface PodNetworkConfig {
  readonly network: string;
  readonly bridge: string;
  readonly tap: string;
  readonly ip: string;
  readonly prefixLength: number;
  readonly gateway: string;
  /** The guest's MAC address, for its virtio-net device. */
  readonly mac: string;
  readonly dns: readonly string[];
}

/** A value of `flag` that does not parse: its error, naming the flag. */
function withFlag<T>(flag: string, parse: () => T): T {
  try {
    return parse();
  } catch (err) {
    if (err instanceof SubnetError) throw new SubnetError(`${flag}: ${err.message}`);
    throw err;
  }
}

export class PodNetworks {
  readonly store: NetworkStore;

  constructor(root: string) {
    this.store = new NetworkStore(root);
  }

  /** Connects the pod to its network, or leaves nothing behind and throws (a NetworkError for what the user can fix). */
  async attach(podId: string, options: AttachOptions = {}): Promise<PodNetworkConfig> {
    const tap = tapName(podId);
    const requested = options.ip === undefined ? undefined : withFlag('--ip', () => parseIpv4(options.ip!));
    const ports = options.ports ?? [];
    const dns = options.dns?.map((d) => formatIpv4(withFlag('--dns', () => parseIpv4(d)))) ?? podNameservers(await readResolvConfs()).map(formatIpv4);
    return this.store.locked(async () => {
      const network = await this.store.get(options.network ?? DEFAULT_NETWORK);
      await checkHostPortsFree(ports);
      const lease = await allocate(this.store, network, { podId, ports, ...(requested === undefined ? {} : { ip: requested }) });
      let tapMade = false;
      try {
        await this.#bringUp(network);
        if ((await listLinks()).some((l) => l.name === tap)) throw new Error(`the host already has an interface named ${tap}, which pod ${podId} needs for its tap`);
        await addTap(tap, network.bridge);
        tapMade = true;
        await addPodRules(podId, lease.ip, ports);
      } catch (err) {
        try {
          await removePodRules(podId);
          if (tapMade) await removeLink(tap);
          await release(this.store, podId);
          await this.#tearDownIfUnused(network);
        } catch (undo) {
          throw new Error(`${(err as Error).message} (undoing the attach failed too: ${(undo as Error).message})`);
        }
        throw err;
      }
      return {
        network: network.name,
        bridge: network.bridge,
        tap,
        ip: formatIpv4(lease.ip),
        prefixLength: network.subnet.prefixLength,
        gateway: formatIpv4(network.gateway),
        mac: macFor(lease.ip),
        dns,
      };
    });
  }

  /** Removes the pod's tap, forwards and lease, and its network's bridge and rules with its last pod; nothing when it has none. */
  async detach(podId: string): Promise<void> {
    const tap = tapName(podId);
    await this.store.locked(async () => {
      await removePodRules(podId);
      if ((await listLinks()).some((l) => l.name === tap && l.kind === 'tun')) await removeLink(tap);
      const released = await release(this.store, podId);
      if (released) await this.#tearDownIfUnused(await this.store.get(released.network));
    });
  }

  /**
   * Removes what pods that are not alive left: their leases (older than
   * `graceMs`: a pod may start after the caller looked), taps and port
   * forwards, and the bridges and rules of networks no pod uses, of
   * networks removed too. What it removed, one line each.
   */
  async gcLeftovers(isAlive: (podId: string) => boolean, graceMs = LEASE_GRACE_MS): Promise<string[]> {
    return this.store.locked(async () => {
      const removed: string[] = [];
      for (const { network, lease } of await reclaim(this.store, isAlive, graceMs)) {
        removed.push(`lease ${formatIpv4(lease.ip)} of pod ${lease.podId} (network ${network})`);
      }
      const leases = await allLeases(this.store);
      const podIds = new Set(leases.map((l) => l.lease.podId));
      const taps = new Set([...podIds].map(tapName));
      const usedNetworks = new Set(leases.map((l) => l.network));
      const usedBridges = new Set((await this.store.list()).filter((n) => usedNetworks.has(n.name)).map((n) => n.bridge));

      const ruleTags = new Set([...podIds].map(podTag));
      for (const n of usedNetworks) ruleTags.add(networkTag(n));
      const isVmctrTag = (c: string) => c.startsWith(podTag('')) || c.startsWith(networkTag(''));
      for (const comment of await removeRules((c) => isVmctrTag(c) && !ruleTags.has(c))) removed.push(`nft rules "${comment}"`);

      const links = vmctrLinks(await listLinks());
      for (const tap of links.taps.filter((t) => !taps.has(t))) if (await removeLink(tap)) removed.push(`tap ${tap}`);
      for (const bridge of links.bridges.filter((b) => !usedBridges.has(b))) if (await removeLink(bridge)) removed.push(`bridge ${bridge}`);
      return removed;
    });
  }

  /** The network's bridge and rules, when its first pod comes: refused when its subnet now overlaps one the host uses. */
  async #bringUp(network: Network): Promise<void> {
    const links = await listLinks();
    if (!links.some((l) => l.name === network.bridge)) {
      const ours = new Set((await this.store.list()).map((n) => n.bridge));
      const clash = overlapping(network.subnet, await readHostNetworks(ours));
      if (clash) throw new NetworkError(`network "${network.name}" (${formatCidr(network.subnet)}) overlaps ${clash.what}, which the host has now: remove that, or use another network`);
    }
    await ensureBridge(network);
    await addNetworkRules(network);
  }

  /** The network's bridge and rules go with its last lease. */
  async #tearDownIfUnused(network: Network): Promise<void> {
    if ((await this.store.leases(network.name)).length) return;
    await removeNetworkRules(network.name);
    if ((await listLinks()).some((l) => l.name === network.bridge && l.kind === 'bridge')) await removeLink(network.bridge);
  }
}
