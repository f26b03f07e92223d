import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { ImageError } from './image-error.js';
import { DEFAULT_REGISTRY } from './reference.js';

export interface Credentials {
  readonly username: string;
  readonly password: string;
}

/** Where docker keeps `docker login` credentials: `$DOCKER_CONFIG/config.json` or `~/.docker/config.json`. */
export function dockerConfigPath(env: NodeJS.ProcessEnv = process.env): string {
  return join(env.DOCKER_CONFIG ?? join(env.HOME ?? homedir(), '.docker'), 'config.json');
}

// docker login writes Docker Hub's credentials under its v1 index URL.
const HUB_KEYS = ['https://index.docker.io/v1/', 'index.docker.io', 'docker.io', 'registry-1.docker.io'];

// config.json keys may be bare hosts or URLs (`https://host/v1/`).
function keyHost(key: string): string {
  return key.replace(/^[a-z]+:\/\//i, '').replace(/\/.*$/, '');
}

/**
 * The credentials config.json holds for `registry` (as named in the
 * reference), or undefined. Only inline `auths` entries are read: credential
 * helpers (`credsStore`, `credHelpers`) are external programs and not run.
 */
export async function loadCredentials(registry: string, env: NodeJS.ProcessEnv = process.env): Promise<Credentials | undefined> {
  const path = dockerConfigPath(env);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new ImageError(`cannot read ${path}: ${(error as Error).message}`);
  }
  let config: { auths?: Record<string, { auth?: string; username?: string; password?: string }> };
  try {
    config = JSON.parse(text);
  } catch {
    throw new ImageError(`${path} is not valid JSON`);
  }
  const auths = config.auths ?? {};
  const wanted = registry === DEFAULT_REGISTRY ? HUB_KEYS : [registry];
  const key = Object.keys(auths).find((candidate) => wanted.includes(candidate) || wanted.includes(keyHost(candidate)));
  if (key === undefined) return undefined;
  const entry = auths[key] ?? {};
  if (entry.auth) {
    const decoded = Buffer.from(entry.auth, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon < 0) throw new ImageError(`${path}: the auth entry for ${key} is not base64 "user:password"`);
    return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
  }
  if (entry.username !== undefined && entry.password !== undefined) return { username: entry.username, password: entry.password };
  return undefined;
}
