/** POSIX path joining for code that also runs where node:path does not (the agent on QuickJS). */
export function joinPath(...parts: string[]): string {
  const joined = parts.filter(Boolean).join('/').replace(/\/+/g, '/');
  return joined.length > 1 ? joined.replace(/\/$/, '') : joined;
}
