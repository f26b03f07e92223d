/** A container process's environment: the image's and the request's entries, with docker's defaults for what they leave unset. */
import type { StartMessage } from './protocol.js';
import type { ResolvedUser } from './users.js';

/** The PATH docker gives a container whose image sets none. */
const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

export function containerEnv(spec: StartMessage, user: ResolvedUser): Record<string, string> {
  // A Map, then own properties: a key such as "__proto__" from the host stays a plain variable.
  const env = new Map<string, string>();
  for (const entry of spec.env ?? []) {
    const eq = entry.indexOf('=');
    if (eq > 0) env.set(entry.slice(0, eq), entry.slice(eq + 1));
  }
  const byDefault = (key: string, value: string) => env.has(key) || env.set(key, value);
  byDefault('PATH', DEFAULT_PATH);
  byDefault('HOME', user.home);
  if (spec.hostname) byDefault('HOSTNAME', spec.hostname);
  if (spec.tty) byDefault('TERM', 'xterm');
  return Object.fromEntries(env);
}
