// A command's flags, defined once as plain data: oclif-flags.ts turns them
// into oclif flags for the command class (parsing, help, errors), and
// parseFlags below reads plainly valid arguments without loading oclif, so
// a hot command (`vmctr boot`) starts without it. Anything parseFlags does
// not accept as plainly valid goes to oclif, which parses the same
// definitions and reports the error: one definition, oclif's messages.

export type FlagSpec =
  | { type: 'string'; description: string; default?: string; options?: readonly string[] }
  | { type: 'integer'; description: string; default?: number; min?: number; max?: number };

export type FlagSpecs = Readonly<Record<string, FlagSpec>>;

/** The parsed values: integers as numbers, strings as strings, undefined when absent without a default. */
export type FlagValues<S extends FlagSpecs> = {
  [K in keyof S]: (S[K] extends { type: 'integer' } ? number : string) | (S[K] extends { default: unknown } ? never : undefined);
};

/**
 * Parses `argv` when it is plainly valid: only flags of `specs`, each at
 * most once, as `--name value` or `--name=value`; values not empty and not
 * starting with '-'; integers as decimal digits within their bounds;
 * values among the flag's options. Anything else (no arguments are taken,
 * help, a short or repeated flag, a bad value) returns undefined.
 */
export function parseFlags<S extends FlagSpecs>(specs: S, argv: readonly string[]): FlagValues<S> | undefined {
  const values: Record<string, string | number | undefined> = {};
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (!arg.startsWith('--')) return undefined;
    const eq = arg.indexOf('=');
    const name = eq === -1 ? arg.slice(2) : arg.slice(2, eq);
    const spec = Object.hasOwn(specs, name) ? specs[name] : undefined;
    if (!spec || Object.hasOwn(values, name)) return undefined;
    const raw = eq === -1 ? argv[++i] : arg.slice(eq + 1);
    if (raw === undefined || raw === '' || raw.startsWith('-')) return undefined;
    if (spec.type === 'integer') {
      const n = /^\d+$/.test(raw) ? Number(raw) : NaN;
      if (!Number.isSafeInteger(n) || (spec.min !== undefined && n < spec.min) || (spec.max !== undefined && n > spec.max)) return undefined;
      values[name] = n;
    } else {
      if (spec.options && !spec.options.includes(raw)) return undefined;
      values[name] = raw;
    }
  }
  for (const [name, spec] of Object.entries(specs)) if (!Object.hasOwn(values, name)) values[name] = spec.default;
  return values as FlagValues<S>;
}
