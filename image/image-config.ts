import { ImageError } from './image-error.js';
import { parseDigest, type Digest } from './digest.js';

/** The part of an image config that says how to run it (docker's field names). */
export interface ContainerConfig {
  readonly User?: string;
  readonly Env?: readonly string[];
  readonly Entrypoint?: readonly string[] | null;
  readonly Cmd?: readonly string[] | null;
  readonly WorkingDir?: string;
  readonly ExposedPorts?: Readonly<Record<string, unknown>>;
  readonly Volumes?: Readonly<Record<string, unknown>>;
  readonly Labels?: Readonly<Record<string, string>>;
  readonly StopSignal?: string;
}

/** An OCI image configuration (also what Docker schema 2 calls the image JSON). */
export interface ImageConfig {
  readonly architecture?: string;
  readonly os?: string;
  readonly variant?: string;
  readonly created?: string;
  readonly config?: ContainerConfig;
  readonly rootfs: { readonly type: string; readonly diff_ids: readonly Digest[] };
}

const STRING_LISTS = ['Env', 'Entrypoint', 'Cmd'] as const;
const STRINGS = ['User', 'WorkingDir', 'StopSignal'] as const;

/** Parses and checks the fields this engine relies on, so a bad config fails here and not mid-run. */
export function parseImageConfig(bytes: Uint8Array, what: string): ImageConfig {
  let json: unknown;
  try {
    json = JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch {
    throw new ImageError(`${what} is not valid JSON`);
  }
  if (typeof json !== 'object' || json === null) throw new ImageError(`${what} is not a JSON object`);
  const config = json as Record<string, unknown>;
  const rootfs = config.rootfs as Record<string, unknown> | undefined;
  if (typeof rootfs !== 'object' || rootfs === null || !Array.isArray(rootfs.diff_ids)) {
    throw new ImageError(`${what} has no rootfs.diff_ids`);
  }
  const diffIds = rootfs.diff_ids.map((id) => parseDigest(String(id), `${what} diff_id`));
  const run = config.config;
  if (run !== undefined && run !== null) {
    if (typeof run !== 'object') throw new ImageError(`${what}: "config" is not an object`);
    const fields = run as Record<string, unknown>;
    for (const key of STRING_LISTS) {
      const value = fields[key];
      if (value !== undefined && value !== null && !(Array.isArray(value) && value.every((item) => typeof item === 'string'))) {
        throw new ImageError(`${what}: config.${key} is not a list of strings`);
      }
    }
    for (const key of STRINGS) {
      if (fields[key] !== undefined && typeof fields[key] !== 'string') throw new ImageError(`${what}: config.${key} is not a string`);
    }
  }
  return { ...(config as object), config: (run ?? undefined) as ContainerConfig | undefined, rootfs: { type: String(rootfs.type ?? 'layers'), diff_ids: diffIds } } as ImageConfig;
}
