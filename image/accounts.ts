import { readFile } from 'node:fs/promises';
import { RootResolver } from './root-path.js';

export interface PasswdEntry {
  readonly name: string;
  readonly uid: number;
  readonly gid: number;
  readonly home: string;
}

export interface GroupEntry {
  readonly name: string;
  readonly gid: number;
  readonly members: readonly string[];
}

/** An image's /etc/passwd and /etc/group, which USER names are resolved in. */
export interface Accounts {
  readonly passwd: readonly PasswdEntry[];
  readonly group: readonly GroupEntry[];
}

export const NO_ACCOUNTS: Accounts = { passwd: [], group: [] };

// Both files are `:`-separated lines; malformed lines are skipped, as libc does.
function records(text: string): string[][] {
  return text.split('\n').filter((line) => line.trim() !== '' && !line.startsWith('#')).map((line) => line.split(':'));
}

function id(text: string | undefined): number | undefined {
  return text !== undefined && /^\d+$/.test(text) ? Number(text) : undefined;
}

export function parsePasswd(text: string): PasswdEntry[] {
  return records(text).flatMap(([name, , uid, gid, , home]) => {
    const u = id(uid);
    const g = id(gid);
    return name && u !== undefined && g !== undefined ? [{ name, uid: u, gid: g, home: home || '/' }] : [];
  });
}

export function parseGroup(text: string): GroupEntry[] {
  return records(text).flatMap(([name, , gid, members]) => {
    const g = id(gid);
    return name && g !== undefined ? [{ name, gid: g, members: (members ?? '').split(',').map((m) => m.trim()).filter(Boolean) }] : [];
  });
}

const MAX_ACCOUNT_FILE = 4 * 1024 * 1024;

// Read through the root resolver: an image's /etc/passwd may be a symlink,
// and it must not lead to the host's.
async function readInRoot(resolver: RootResolver, relative: string): Promise<string> {
  try {
    const text = await readFile(resolver.resolve(relative));
    return text.length > MAX_ACCOUNT_FILE ? '' : text.toString('utf8');
  } catch {
    return '';
  }
}

/** Reads the accounts of an unpacked root filesystem; missing files mean no accounts. */
export async function readAccounts(rootfs: string): Promise<Accounts> {
  const resolver = new RootResolver(rootfs);
  return {
    passwd: parsePasswd(await readInRoot(resolver, 'etc/passwd')),
    group: parseGroup(await readInRoot(resolver, 'etc/group')),
  };
}
