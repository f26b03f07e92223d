// The few kernel settings vmctr changes, through /proc/sys, which shows the
// settings of the caller's network namespace.
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

const path = (key: readonly string[]) => join('/proc/sys', ...key);

/** Sets a setting unless it has that value already (a write can have side effects: ip_forward resets per-interface settings). */
async function set(key: readonly string[], value: string): Promise<void> {
  if ((await readFile(path(key), 'utf8')).trim() === value) return;
  await writeFile(path(key), value);
}

/**
 * Routing between interfaces, which pods' traffic needs. Turned on, never
 * off: once on, other software on the host may count on it (NETWORKING.md).
 */
export function enableIpForwarding(): Promise<void> {
  return set(['net', 'ipv4', 'ip_forward'], '1');
}

/** One of vmctr's own interfaces: localhost port forwards need route_localnet, and pods have no IPv6. */
export async function configureInterface(name: string, options: { routeLocalnet: boolean }): Promise<void> {
  // A kernel without IPv6 has no such setting, and no IPv6 to turn off.
  if (existsSync(path(['net', 'ipv6', 'conf', name]))) await set(['net', 'ipv6', 'conf', name, 'disable_ipv6'], '1');
  if (options.routeLocalnet) await set(['net', 'ipv4', 'conf', name, 'route_localnet'], '1');
}
