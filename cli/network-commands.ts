// `vmctr network create|ls|inspect|rm`, without oclif like the pod commands
// (pod-commands.ts): each command line defined once (flag-spec.ts), read by
// one parser on the CLI's fast path and in the oclif commands, which serve
// help. The networks themselves are net/network-store.ts's.
import { storeRoot } from '../image/store-root.js';
import { macFor } from '../net/host-links.js';
import { NetworkStore, type Network } from '../net/network-store.js';
import { formatPortForward } from '../net/port-forward.js';
import { formatCidr, formatIpv4 } from '../net/subnet.js';
import { parseCommandLine, rootFlag, type CommandLine, type CommandSyntax, type FlagSpecs } from './flag-spec.js';
import { table } from './table.js';
import { EXIT_USAGE, UserError } from './user-error.js';

const networkOperand = { name: 'NAME', description: 'the network\'s name' } as const;

function syntax<F extends FlagSpecs>(verb: string, flags: F) {
  return { command: `network ${verb}`, flags: { ...flags, ...rootFlag }, usageExitCode: EXIT_USAGE, operand: networkOperand } as const;
}

/** One network, after the flags: nothing after it. */
function only(line: { operand: string; rest: string[] }, verb: string): string {
  if (line.rest.length) throw new UserError(`unexpected argument "${line.rest[0]}": vmctr network ${verb} takes one network, after its flags`, EXIT_USAGE);
  return line.operand;
}

const out = (text: string) => process.stdout.write(`${text}\n`);

const createSyntax = syntax('create', {
  subnet: { type: 'string', description: 'the network\'s IPv4 subnet, a /8 to a /30 (default: the first free /24 from 10.89.0.0/24)' },
});

async function create(line: CommandLine<typeof createSyntax>): Promise<void> {
  const network = await new NetworkStore(storeRoot(line.flags.root)).create(only(line, 'create'), line.flags.subnet);
  out(network.name);
}

const lsSyntax = {
  command: 'network ls',
  flags: { format: { type: 'string', options: ['table', 'json'], default: 'table', description: 'output format' }, ...rootFlag },
  usageExitCode: EXIT_USAGE,
} as const;

/** A network as `inspect` and `ls --format json` show it, with its pods' leases. */
async function networkJson(store: NetworkStore, network: Network): Promise<Record<string, unknown>> {
  const leases = await store.leases(network.name);
  return {
    name: network.name,
    subnet: formatCidr(network.subnet),
    gateway: formatIpv4(network.gateway),
    bridge: network.bridge,
    default: network.isDefault,
    ...(network.created === undefined ? {} : { created: network.created }),
    pods: leases.map((l) => ({ id: l.podId, ip: formatIpv4(l.ip), mac: macFor(l.ip), ports: l.ports.map(formatPortForward), since: l.created })),
  };
}

async function ls({ flags }: CommandLine<typeof lsSyntax>): Promise<void> {
  const store = new NetworkStore(storeRoot(flags.root));
  const networks = await store.list();
  if (flags.format === 'json') return void out(JSON.stringify(await Promise.all(networks.map((n) => networkJson(store, n))), null, 2));
  const rows = [['NAME', 'SUBNET', 'GATEWAY', 'BRIDGE', 'PODS']];
  for (const n of networks) rows.push([n.name, formatCidr(n.subnet), formatIpv4(n.gateway), n.bridge, String((await store.leases(n.name)).length)]);
  out(table(rows));
}

const inspectSyntax = syntax('inspect', {});

async function inspect(line: CommandLine<typeof inspectSyntax>): Promise<void> {
  const store = new NetworkStore(storeRoot(line.flags.root));
  out(JSON.stringify(await networkJson(store, await store.get(only(line, 'inspect'))), null, 2));
}

const rmSyntax = syntax('rm', {});

async function rm({ flags, operand, rest }: CommandLine<typeof rmSyntax>): Promise<void> {
  const store = new NetworkStore(storeRoot(flags.root));
  const failures: string[] = [];
  // One at a time, each on its own: one that cannot be removed does not keep the others.
  for (const name of [operand, ...rest]) {
    try {
      await store.remove(name);
      out(name);
    } catch (err) {
      failures.push((err as Error).message);
    }
  }
  if (failures.length) throw new UserError(failures.join('; '));
}

interface NetworkCommand {
  syntax: CommandSyntax;
  run(line: never): Promise<void>;
}

export const networkCommands = {
  create: { syntax: createSyntax, run: create },
  ls: { syntax: lsSyntax, run: ls },
  inspect: { syntax: inspectSyntax, run: inspect },
  rm: { syntax: rmSyntax, run: rm },
} as const satisfies Record<string, NetworkCommand>;

export type NetworkVerb = keyof typeof networkCommands;

/** What `vmctr network VERB argv` is to run, or 'help' for oclif to show. */
export function parseNetworkVerb(verb: NetworkVerb, argv: readonly string[]): (() => Promise<void>) | 'help' {
  const command: NetworkCommand = networkCommands[verb];
  const line = parseCommandLine(command.syntax, argv);
  return line === 'help' ? line : () => command.run(line as never);
}

/** `vmctr network argv`: the verb first; none, or help asked for, is oclif's topic help. */
export function parseNetworkCommand(argv: readonly string[]): (() => Promise<void>) | 'help' {
  const [verb, ...rest] = argv;
  if (verb === undefined || verb === '--help' || verb === '-h') return 'help';
  if (!Object.hasOwn(networkCommands, verb)) throw new UserError(`unknown command "network ${verb}": vmctr network takes ${Object.keys(networkCommands).join(', ')}`, EXIT_USAGE);
  return parseNetworkVerb(verb as NetworkVerb, rest);
}
