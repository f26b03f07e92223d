// A network's bridge and a pod's tap on the host, made and removed with
// iproute2. The bridge (network-store.ts names it) holds the gateway
// address; each pod's tap, `vt` and the first 12 hex digits of its id, is
// one of its ports. The tap is persistent (owned by no process): the pod's
// VMM opens it by name (TUNSETIFF), and it outlives a VMM killed with
// SIGKILL until detach or gc removes it. Removal is idempotent.
import { parseAddresses, parseLinks, type Link } from './ip-json.js';
import { NetworkError } from './network-error.js';
import type { Network } from './network-store.js';
import { configureInterface } from './sysctl.js';
import { formatIpv4 } from './subnet.js';
import { run, ToolError } from './tool.js';

export const TAP_PATTERN = /^vt[0-9a-f]{12}$/;
/** Bridges vmctr makes (network-store.ts's bridgeName). */
export const BRIDGE_PATTERN = /^(vmctr0|vmbr-[0-9a-f]{8})$/;

export function tapName(podId: string): string {
  if (!/^[0-9a-f]{12,}$/.test(podId)) throw new Error(`a pod id is hex, at least 12 digits: got "${podId}"`);
  return `vt${podId.slice(0, 12)}`;
}

/**
 * The MAC address of whoever has `ip` on a vmctr network (a pod, or the
 * bridge for the gateway): locally administered, unicast, 02:76 then the
 * address's bytes, so that it is unique wherever the address is and stays
 * the same while it is held (the bridge's own would change with its ports).
 */
export function macFor(ip: number): string {
  return [0x02, 0x76, ip >>> 24, (ip >>> 16) & 255, (ip >>> 8) & 255, ip & 255].map((b) => b.toString(16).padStart(2, '0')).join(':');
}

export async function listLinks(): Promise<Link[]> {
  return parseLinks(await run('ip', ['-d', '-j', 'link', 'show']));
}

/** Makes the network's bridge, with the gateway address, up; completes one that a crashed vmctr left half made. */
export async function ensureBridge(network: Network): Promise<void> {
  const name = network.bridge;
  const existing = (await listLinks()).find((l) => l.name === name);
  if (existing && existing.kind !== 'bridge') throw new NetworkError(`the host has a ${existing.kind ?? 'network'} interface named ${name}, which network "${network.name}" needs for its bridge`);
  // The address given at creation: a bridge takes its lowest port's otherwise, and changes it as ports come and go.
  if (!existing) await run('ip', ['link', 'add', 'name', name, 'address', macFor(network.gateway), 'type', 'bridge']);
  await configureInterface(name, { routeLocalnet: true });
  const addresses = parseAddresses(await run('ip', ['-j', '-4', 'addr', 'show', 'dev', name]));
  if (!addresses.some((a) => a.address === network.gateway && a.prefixLength === network.subnet.prefixLength)) {
    await run('ip', ['addr', 'add', `${formatIpv4(network.gateway)}/${network.subnet.prefixLength}`, 'dev', name]);
  }
  await run('ip', ['link', 'set', 'dev', name, 'up']);
}

/** Makes the pod's tap, a port of `bridge`, up, or nothing; a link of that name must not exist yet. */
export async function addTap(tap: string, bridge: string): Promise<void> {
  await run('ip', ['tuntap', 'add', 'dev', tap, 'mode', 'tap']);
  try {
    await configureInterface(tap, { routeLocalnet: false });
    await run('ip', ['link', 'set', 'dev', tap, 'master', bridge]);
    // A pod reaching its own forwarded port: with br_netfilter the bridge sends the translated frame back out of the port it came in by.
    await run('ip', ['link', 'set', 'dev', tap, 'type', 'bridge_slave', 'hairpin', 'on']);
    await run('ip', ['link', 'set', 'dev', tap, 'up']);
  } catch (err) {
    await removeLink(tap);
    throw err;
  }
}

/** Deletes a link; false when there was none. */
export async function removeLink(name: string): Promise<boolean> {
  try {
    await run('ip', ['link', 'del', 'dev', name]);
    return true;
  } catch (err) {
    if (err instanceof ToolError && /Cannot find device/.test(err.stderr)) return false;
    throw err;
  }
}

/** vmctr's taps and bridges among `links`, by name and kind. */
export function vmctrLinks(links: readonly Link[]): { taps: string[]; bridges: string[] } {
  return {
    taps: links.filter((l) => l.kind === 'tun' && TAP_PATTERN.test(l.name)).map((l) => l.name),
    bridges: links.filter((l) => l.kind === 'bridge' && BRIDGE_PATTERN.test(l.name)).map((l) => l.name),
  };
}
