// What the scenarios (scenarios.ts) use inside their network namespace:
// the namespace's state as text, and small peers, each a Node process in a
// network namespace of its own (a pod's side of a veth, or a host outside),
// running a TCP and UDP server that answers with the address it sees the
// client at. Peers die with the scenario (PR_SET_PDEATHSIG), killed or not.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readFile } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';
import { toolPath } from '../../net/tool.js';

const execFileP = promisify(execFile);

/** Runs `file`; ip and nft by their paths, never another program of the name found first in PATH. */
export async function sh(file: string, args: readonly string[]): Promise<string> {
  return (await execFileP(file === 'ip' || file === 'nft' ? toolPath(file) : file, args)).stdout;
}

/** The namespace's links, addresses, routes and nftables ruleset, as their tools print them. */
export async function hostState(): Promise<Record<string, string>> {
  return {
    link: await sh('ip', ['-j', 'link']),
    addr: await sh('ip', ['-j', 'addr']),
    route: await sh('ip', ['-j', 'route']),
    route6: await sh('ip', ['-j', '-6', 'route']),
    nft: await sh('nft', ['list', 'ruleset']),
  };
}

export async function sysctl(key: string): Promise<string> {
  return (await readFile(`/proc/sys/${key.replaceAll('.', '/')}`, 'utf8')).trim();
}

/** Answers with the client's address as the server sees it: a TCP connection, or a UDP datagram. */
const SERVER = `
import { createServer } from 'node:net';
import { createSocket } from 'node:dgram';
const [tcp, udp] = process.argv.slice(1).map(Number);
await new Promise((ok) => createServer((s) => s.end(s.remoteAddress.replace(/^::ffff:/, '') + '\\n')).listen(tcp, '0.0.0.0', ok));
if (udp) {
  const u = createSocket('udp4');
  u.on('message', (m, r) => u.send(r.address + '\\n', r.port, r.address));
  await new Promise((ok) => u.bind(udp, '0.0.0.0', ok));
}
console.log('ready');
`;

/** Prints the server's answer, or ERR:<why> (a dropped packet is ERR:timeout). */
const CLIENT = `
import { connect } from 'node:net';
import { createSocket } from 'node:dgram';
const [host, port, protocol] = process.argv.slice(1);
const done = (text) => { console.log(text); process.exit(0); };
setTimeout(() => done('ERR:timeout'), 1500);
if (protocol === 'udp') {
  const u = createSocket('udp4');
  u.on('message', (m) => done(m.toString().trim()));
  u.send('hello', Number(port), host);
} else {
  let data = '';
  const s = connect({ host, port: Number(port) });
  s.on('data', (d) => (data += d));
  s.on('end', () => done(data.trim()));
  s.on('error', (e) => done('ERR:' + e.code));
}
`;

/** A client's answer from `host:port`, run in the peer's namespace or (no peer) the scenario's. */
export async function ask(from: Peer | undefined, host: string, port: number, protocol: 'tcp' | 'udp' = 'tcp'): Promise<string> {
  const node = [process.execPath, '--input-type=module', '-e', CLIENT, host, String(port), protocol];
  const [file, ...args] = from ? ['nsenter', `--net=/proc/${from.pid}/ns/net`, ...node] : node;
  return (await sh(file!, args)).trim();
}

let peers = 0;

export class Peer {
  readonly #child: ChildProcess;
  /** The peer's end of its veth, inside its namespace. */
  readonly device = 'eth0';
  /** The scenario's end of its veth. */
  readonly hostDevice: string;

  private constructor(child: ChildProcess) {
    this.#child = child;
    this.hostDevice = `vpeer${peers++}`;
  }

  get pid(): number {
    return this.#child.pid!;
  }

  /** A new namespace with the servers listening on `tcpPort` (and `udpPort`) and a veth to this one. */
  static async start(tcpPort: number, udpPort?: number): Promise<Peer> {
    const node = [process.execPath, '--input-type=module', '-e', SERVER, String(tcpPort), ...(udpPort ? [String(udpPort)] : [])];
    const child = spawn('setpriv', ['--pdeathsig', 'KILL', '--', 'unshare', '--net', '--', ...node], { stdio: ['ignore', 'pipe', 'inherit'] });
    const peer = new Peer(child);
    const lines = createInterface({ input: child.stdout! });
    const [line] = (await Promise.race([once(lines, 'line'), once(child, 'exit').then(() => ['exited'])])) as string[];
    if (line !== 'ready') throw new Error(`peer did not start: ${line}`);
    await sh('ip', ['link', 'add', peer.hostDevice, 'type', 'veth', 'peer', 'name', peer.device, 'netns', String(peer.pid)]);
    await peer.exec('ip', ['link', 'set', 'lo', 'up']);
    return peer;
  }

  exec(file: string, args: readonly string[]): Promise<string> {
    return sh('nsenter', [`--net=/proc/${this.pid}/ns/net`, file === 'ip' ? toolPath(file) : file, ...args]);
  }

  /** Gives the peer's end `cidr` (and a default route via `gateway`, or `routes` via `hostCidr`'s address), and puts this end in `bridge` or gives it `hostCidr`. */
  async configure(cidr: string, options: { gateway?: string; bridge?: string; hostCidr?: string; routes?: readonly string[] }): Promise<void> {
    await this.exec('ip', ['addr', 'add', cidr, 'dev', this.device]);
    await this.exec('ip', ['link', 'set', this.device, 'up']);
    if (options.bridge) {
      // As host-links.ts's addTap sets up a pod's tap.
      await sh('ip', ['link', 'set', this.hostDevice, 'master', options.bridge]);
      await sh('ip', ['link', 'set', 'dev', this.hostDevice, 'type', 'bridge_slave', 'hairpin', 'on']);
    }
    if (options.hostCidr) await sh('ip', ['addr', 'add', options.hostCidr, 'dev', this.hostDevice]);
    await sh('ip', ['link', 'set', this.hostDevice, 'up']);
    if (options.gateway) await this.exec('ip', ['route', 'add', 'default', 'via', options.gateway]);
    for (const route of options.routes ?? []) await this.exec('ip', ['route', 'add', route, 'via', options.hostCidr!.split('/')[0]!]);
  }

  /** Ends the peer; its veth goes with its namespace. */
  async stop(): Promise<void> {
    const exit = once(this.#child, 'exit');
    this.#child.kill('SIGKILL');
    await exit;
    // The namespace, and with it the veth pair, goes once its last process has.
    for (let i = 0; i < 100 && (await sh('ip', ['-j', 'link'])).includes(`"${this.hostDevice}"`); i++) await new Promise((r) => setTimeout(r, 20));
  }
}
