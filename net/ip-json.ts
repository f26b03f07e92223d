// What `ip -j` prints (iproute2's JSON), read into the few fields vmctr
// uses. Pure: the text in, values out; a field missing or of another type is
// left out rather than trusted.
import { parseIpv4, subnetOf, SubnetError, parseCidr, type Subnet } from './subnet.js';

export interface Link {
  readonly name: string;
  /** linkinfo.info_kind of `ip -d`: bridge, tun, veth...; undefined for a plain device. */
  readonly kind: string | undefined;
  /** The bridge it is a port of. */
  readonly master: string | undefined;
}

export interface Address {
  readonly device: string;
  readonly address: number;
  readonly prefixLength: number;
}

export interface Route {
  /** Undefined for the default route. */
  readonly destination: Subnet | undefined;
  readonly device: string | undefined;
  /** unicast unless said: blackhole, unreachable, local... */
  readonly type: string;
}

type JsonRecord = Readonly<Record<string, unknown>>;

function records(text: string, what: string): JsonRecord[] {
  let value: unknown;
  try {
    value = JSON.parse(text.trim() === '' ? '[]' : text);
  } catch {
    throw new Error(`cannot read the output of ${what}: not JSON`);
  }
  if (!Array.isArray(value)) throw new Error(`cannot read the output of ${what}: not a JSON array`);
  return value.filter((v): v is JsonRecord => typeof v === 'object' && v !== null && !Array.isArray(v));
}

const string = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

/** `ip -d -j link show`. */
export function parseLinks(text: string): Link[] {
  return records(text, 'ip -d -j link show').flatMap((r) => {
    const name = string(r.ifname);
    if (name === undefined) return [];
    const info = r.linkinfo;
    const kind = typeof info === 'object' && info !== null ? string((info as JsonRecord).info_kind) : undefined;
    return [{ name, kind, master: string(r.master) }];
  });
}

/** The IPv4 addresses of `ip -j -4 addr show`. */
export function parseAddresses(text: string): Address[] {
  return records(text, 'ip -j -4 addr show').flatMap((r) => {
    const device = string(r.ifname);
    const infos = Array.isArray(r.addr_info) ? (r.addr_info as unknown[]) : [];
    if (device === undefined) return [];
    return infos.flatMap((info) => {
      if (typeof info !== 'object' || info === null) return [];
      const { family, local, prefixlen } = info as JsonRecord;
      if (family !== 'inet' || typeof local !== 'string' || typeof prefixlen !== 'number') return [];
      try {
        return [{ device, address: parseIpv4(local), prefixLength: prefixlen }];
      } catch (err) {
        if (err instanceof SubnetError) return [];
        throw err;
      }
    });
  });
}

/** `ip -j -4 route show`: a destination is a subnet, a bare address (a /32) or "default". */
export function parseRoutes(text: string): Route[] {
  return records(text, 'ip -j -4 route show').flatMap((r): Route[] => {
    const dst = string(r.dst);
    if (dst === undefined) return [];
    const route = { device: string(r.dev), type: string(r.type) ?? 'unicast' };
    if (dst === 'default') return [{ destination: undefined, ...route }];
    try {
      return [{ destination: dst.includes('/') ? parseCidr(dst) : subnetOf(parseIpv4(dst), 32), ...route }];
    } catch (err) {
      if (err instanceof SubnetError) return [];
      throw err;
    }
  });
}
