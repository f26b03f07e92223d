// vmctr's nftables table on the host (nft-rules.ts writes its text):
// created with the first network's rules, a network's rules added when its
// bridge is made and removed with it, a pod's port forwards added and
// removed by its id, the table deleted with its last rule. Each change is
// one `nft -f -` transaction: it happens whole or not at all. Callers hold
// the network store's lock, so the handles read here are still the
// table's when they are used.
import { deletions, networkRules, networkTag, parseTableRules, podRules, podTag, TABLE, tableSkeleton, type TableRule } from './nft-rules.js';
import type { Network } from './network-store.js';
import type { PortForward } from './port-forward.js';
import { enableIpForwarding } from './sysctl.js';
import { run, ToolError } from './tool.js';

/** The table's rules, or undefined when there is no table. */
export async function readRules(): Promise<TableRule[] | undefined> {
  try {
    return parseTableRules(await run('nft', ['-j', 'list', 'table', ...TABLE.split(' ')]));
  } catch (err) {
    if (err instanceof ToolError && /No such file or directory/.test(err.stderr)) return undefined;
    throw err;
  }
}

async function apply(commands: readonly string[]): Promise<void> {
  if (commands.length) await run('nft', ['-f', '-'], `${commands.join('\n')}\n`);
}

/** The network's rules, once (and the table, if there is none yet); and routing on, which its pods need. */
export async function addNetworkRules(network: Network): Promise<void> {
  const rules = await readRules();
  const tag = networkTag(network.name);
  if (!rules?.some((r) => r.comment === tag)) await apply([tableSkeleton(), ...networkRules(network)]);
  await enableIpForwarding();
}

export async function addPodRules(podId: string, ip: number, ports: readonly PortForward[]): Promise<void> {
  await apply(podRules(podId, ip, ports));
}

/** Deletes the rules whose comment `doomed` picks (the table with its last rule); the comments of the rules deleted. */
export async function removeRules(doomed: (comment: string) => boolean): Promise<string[]> {
  const rules = await readRules();
  if (!rules) return [];
  const picked = (r: TableRule) => r.comment !== undefined && doomed(r.comment);
  await apply(deletions(rules, picked));
  return [...new Set(rules.filter(picked).map((r) => r.comment!))];
}

export const removeNetworkRules = (name: string) => removeRules((c) => c === networkTag(name));
export const removePodRules = (podId: string) => removeRules((c) => c === podTag(podId));
