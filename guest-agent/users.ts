/**
 * Resolves a container's user spec ("name", "uid", "name:group", "uid:gid")
 * against the container's own /etc/passwd and /etc/group, with runc's rules:
 * names must exist, bare numbers are accepted without an entry, and without
 * an explicit group the user's memberships become supplementary groups.
 */

export interface ResolvedUser {
  uid: number;
  gid: number;
  /** Supplementary groups, the primary group first. */
  groups: number[];
  home: string;
}

export class UserError extends Error {
  override name = 'UserError';
}

interface PasswdEntry {
  name: string;
  uid: number;
  gid: number;
  home: string;
}

interface GroupEntry {
  name: string;
  gid: number;
  members: string[];
}

const ID = /^\d+$/;
// Ids are 32-bit; 2^32-1 is "no id" to the kernel.
const MAX_ID = 0xfffffffe;

function parseId(text: string): number | undefined {
  if (!ID.test(text)) return undefined;
  const id = Number(text);
  return id <= MAX_ID ? id : undefined;
}

function rows(file: string): string[][] {
  return file
    .split('\n')
    .filter((line) => line.trim() !== '' && !line.startsWith('#'))
    .map((line) => line.split(':'));
}

function parsePasswd(file: string): PasswdEntry[] {
  return rows(file).flatMap(([name, , uid, gid, , home]) => {
    const u = parseId(uid ?? ''), g = parseId(gid ?? '');
    return name && u !== undefined && g !== undefined ? [{ name, uid: u, gid: g, home: home || '/' }] : [];
  });
}

function parseGroup(file: string): GroupEntry[] {
  return rows(file).flatMap(([name, , gid, members]) => {
    const g = parseId(gid ?? '');
    return name && g !== undefined ? [{ name, gid: g, members: members ? members.split(',').filter(Boolean) : [] }] : [];
  });
}

function findGroup(spec: string, groups: GroupEntry[]): number {
  const byName = groups.find((g) => g.name === spec);
  if (byName) return byName.gid;
  const id = parseId(spec);
  if (id === undefined) throw new UserError(`unable to find group ${spec}: no matching entries in group file`);
  return id;
}

/** `passwd` and `group` are the files' contents ('' when the container has none). */
export function resolveUser(spec: string | undefined, additionalGroups: string[], passwd: string, group: string): ResolvedUser {
  const [userPart = '', groupPart, ...rest] = (spec ?? '').split(':');
  if (rest.length) throw new UserError(`bad user spec: ${spec}`);
  const users = parsePasswd(passwd);
  const groups = parseGroup(group);

  const userSpec = userPart === '' ? '0' : userPart;
  const uidArg = parseId(userSpec);
  const entry = users.find((u) => u.name === userSpec) ?? (uidArg === undefined ? undefined : users.find((u) => u.uid === uidArg));
  if (!entry && uidArg === undefined) throw new UserError(`unable to find user ${userSpec}: no matching entries in passwd file`);

  const uid = entry?.uid ?? uidArg!;
  const gid = groupPart !== undefined && groupPart !== '' ? findGroup(groupPart, groups) : (entry?.gid ?? 0);
  const supplementary = [gid];
  if ((groupPart === undefined || groupPart === '') && entry) {
    supplementary.push(...groups.filter((g) => g.members.includes(entry.name)).map((g) => g.gid));
  }
  supplementary.push(...additionalGroups.map((g) => findGroup(g, groups)));
  return { uid, gid, groups: [...new Set(supplementary)], home: entry?.home ?? '/' };
}
