// Whether a host port is free for a forward: a bind attempt, in the
// caller's network namespace, on the address the forward listens on
// (0.0.0.0 for every address). A DNAT rule takes the port's traffic
// without binding it, so nothing else would tell a program that listens
// there that it no longer gets its connections; forwards that vmctr holds
// itself are in the leases (ip-allocator.ts).
import { createSocket } from 'node:dgram';
import { once } from 'node:events';
import { createServer } from 'node:net';
import { NetworkError } from './network-error.js';
import { formatHostSide, type PortForward } from './port-forward.js';
import { formatIpv4 } from './subnet.js';

/** Binds and closes at once; the bind's error code, or undefined when it bound. */
async function tryBind(forward: PortForward): Promise<string | undefined> {
  const address = forward.hostIp === undefined ? '0.0.0.0' : formatIpv4(forward.hostIp);
  const port = forward.hostPort;
  const socket = forward.protocol === 'tcp' ? createServer().listen({ host: address, port, exclusive: true }) : createSocket('udp4').bind({ address, port, exclusive: true });
  try {
    await once(socket, 'listening');
  } catch (err) {
    return (err as NodeJS.ErrnoException).code ?? 'EINVAL';
  }
  await new Promise<void>((resolve) => socket.close(() => resolve()));
  return undefined;
}

/** Each forward's host port is free on this host, or a one-line error. */
export async function checkHostPortsFree(forwards: readonly PortForward[]): Promise<void> {
  for (const f of forwards) {
    const code = await tryBind(f);
    if (code === undefined) continue;
    if (code === 'EADDRINUSE') throw new NetworkError(`host port ${formatHostSide(f)} is already in use on this host`);
    if (code === 'EADDRNOTAVAIL') throw new NetworkError(`host port ${formatHostSide(f)}: ${formatIpv4(f.hostIp!)} is not an address of this host`);
    if (code === 'EACCES') throw new NetworkError(`host port ${formatHostSide(f)}: binding it needs root`);
    throw new NetworkError(`host port ${formatHostSide(f)}: cannot bind it (${code})`);
  }
}
