// A port forwarded from the host to a pod, `-p [HOSTIP:]HOSTPORT:PODPORT[/tcp|udp]`
// as docker writes it. Pure: parsing, formatting, and which forwards claim
// the same host port.
import { NetworkError } from './network-error.js';
import { formatIpv4, parseIpv4, SubnetError } from './subnet.js';

export type Protocol = 'tcp' | 'udp';

export interface PortForward {
  /** The host address it listens on; undefined: every address of the host. */
  readonly hostIp?: number;
  readonly hostPort: number;
  readonly podPort: number;
  readonly protocol: Protocol;
}

export class PortForwardError extends NetworkError {}

const SYNTAX = '[HOSTIP:]HOSTPORT:PODPORT[/tcp|udp]';

function port(text: string, spec: string): number {
  const n = /^[1-9]\d{0,4}$/.test(text) ? Number(text) : NaN;
  if (!(n <= 65535)) throw new PortForwardError(`port forward "${spec}": "${text}" is not a port (1 to 65535)`);
  return n;
}

export function parsePortForward(spec: string): PortForward {
  const [ports = '', protocol = 'tcp', ...extra] = spec.split('/');
  if (extra.length || (protocol !== 'tcp' && protocol !== 'udp')) throw new PortForwardError(`port forward "${spec}": expected ${SYNTAX}`);
  const parts = ports.split(':');
  if (parts.length !== 2 && parts.length !== 3) throw new PortForwardError(`port forward "${spec}": expected ${SYNTAX}`);
  const [podPort, hostPort, hostIp] = parts.reverse() as [string, string, string | undefined];
  let ip: number | undefined;
  try {
    ip = hostIp === undefined ? undefined : parseIpv4(hostIp);
  } catch (err) {
    if (err instanceof SubnetError) throw new PortForwardError(`port forward "${spec}": ${err.message}`);
    throw err;
  }
  return { ...(ip === undefined ? {} : { hostIp: ip }), hostPort: port(hostPort, spec), podPort: port(podPort, spec), protocol };
}

export function formatPortForward(f: PortForward): string {
  return `${f.hostIp === undefined ? '' : `${formatIpv4(f.hostIp)}:`}${f.hostPort}:${f.podPort}/${f.protocol}`;
}

/** The host side of a forward as messages name it: `8080/tcp`, `127.0.0.1:8080/tcp`. */
export function formatHostSide(f: PortForward): string {
  return `${f.hostIp === undefined ? '' : `${formatIpv4(f.hostIp)}:`}${f.hostPort}/${f.protocol}`;
}

/** Whether two forwards want the same host port: same protocol and port, and one listens on every address or both on the same. */
export function conflicts(a: PortForward, b: PortForward): boolean {
  return a.protocol === b.protocol && a.hostPort === b.hostPort && (a.hostIp === undefined || b.hostIp === undefined || a.hostIp === b.hostIp);
}
