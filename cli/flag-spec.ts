// A command's command line, defined once as plain data. oclif-flags.ts turns
// the flags into oclif flags for the command's help; parseCommandLine below
// reads the arguments wherever the command starts (the CLI's fast path in
// main.ts, which needs no oclif, and the oclif command class), so both give
// the same values and the same errors: one line naming the flag, the value
// given and what is allowed, with the command's usage exit status.
import { UserError } from './user-error.js';

interface FlagCommon {
  readonly description: string;
  /** A one-letter alias: `-e VALUE`, `-eVALUE`, `-e=VALUE`; booleans combine (`-it`). */
  readonly char?: string;
  /** Where help lists the flag (oclif's helpGroup). */
  readonly helpGroup?: string;
}

export type FlagSpec =
  | (FlagCommon & { readonly type: 'boolean' })
  | (FlagCommon & {
      readonly type: 'string';
      readonly default?: string;
      readonly options?: readonly string[];
      /** Repeatable: every value, in order ([] when absent). */
      readonly multiple?: boolean;
      /** What a value must look like, and how to say so. */
      readonly format?: { readonly pattern: RegExp; readonly expected: string };
    })
  | (FlagCommon & { readonly type: 'integer'; readonly default?: number; readonly min?: number; readonly max?: number });

export type FlagSpecs = Readonly<Record<string, FlagSpec>>;

/** The state directory, which the commands on pods and networks take. */
export const rootFlag = {
  root: { type: 'string', description: 'vmctr state directory [env: VMCTR_ROOT] (default /var/lib/vmctr)', helpGroup: 'GLOBAL' },
} as const satisfies FlagSpecs;

/**
 * rkt's --insecure-options, with the one check vmctr has to skip: `image`
 * boots the guest kernel, agent image and demo initramfs without checking
 * them against their signed stage1 manifests (stage1/verify.ts), for
 * development.
 */
export const insecureOptionsFlag = {
  'insecure-options': { type: 'string', options: ['image'], description: 'image: boot the project\'s guest kernel, agent image or demo initramfs without checking them against their signed stage1 manifests (for development)' },
} as const satisfies FlagSpecs;

type FlagValue<F extends FlagSpec> = F extends { type: 'boolean' } ? boolean : F extends { type: 'integer' } ? number : F extends { multiple: true } ? string[] : string;
/** Absent flags are false (booleans), [] (repeatable), their default, or else undefined. */
type Absent<F extends FlagSpec> = F extends { type: 'boolean' } | { multiple: true } | { default: unknown } ? never : undefined;

export type FlagValues<S extends FlagSpecs> = { -readonly [K in keyof S]: FlagValue<S[K]> | Absent<S[K]> };

export interface CommandSyntax {
  /** The command as typed after `vmctr`, for messages. */
  readonly command: string;
  readonly flags: FlagSpecs;
  /** The exit status of a usage error (README, each command's help). */
  readonly usageExitCode: number;
  /**
   * The one argument that ends the flags (run's ROOTFS): the arguments after
   * it are the command's own, flags or not, as with `docker run`. Without
   * one, the command takes flags only.
   */
  readonly operand?: {
    readonly name: string;
    readonly description: string;
    /** It may be absent (run --pod, whose apps come from a file): then it is undefined and there is no rest. */
    readonly optional?: boolean;
  };
  /**
   * Flags the command takes, but not in this part of its command line, and
   * why (run's pod flags after a `---`): giving one is that one-line error,
   * `--memory applies to the pod: ...`, rather than an unknown flag's.
   */
  readonly elsewhere?: { readonly flags: FlagSpecs; readonly why: string };
}

/** What a command line says: the flags' values and, for a command with an operand, the operand and the arguments after it. */
export type CommandLine<X extends CommandSyntax> = { flags: FlagValues<X['flags']> } & (X['operand'] extends { optional: true }
  ? { operand: string | undefined; rest: string[] }
  : X['operand'] extends object
    ? { operand: string; rest: string[] }
    : unknown);

/** What a flag's value may be, in words; undefined when any value goes. */
export function allowedValues(spec: FlagSpec): string | undefined {
  if (spec.type === 'integer') {
    if (spec.min !== undefined && spec.max !== undefined) return `an integer from ${spec.min} to ${spec.max}`;
    if (spec.min !== undefined) return `an integer of at least ${spec.min}`;
    if (spec.max !== undefined) return `an integer of at most ${spec.max}`;
    return 'an integer';
  }
  if (spec.type === 'string' && spec.options) return spec.options.length > 1 ? `${spec.options.slice(0, -1).join(', ')} or ${spec.options.at(-1)}` : spec.options[0];
  if (spec.type === 'string' && spec.format) return spec.format.expected;
  return undefined;
}

/** The flag each one-letter alias stands for. */
function charNames(specs: FlagSpecs): Map<string, string> {
  return new Map(Object.entries(specs).flatMap(([name, s]) => (s.char ? [[s.char, name] as const] : [])));
}

/** `specs[name]` when it is one of the flags, not an inherited property (`--constructor`). */
function own(specs: FlagSpecs, name: string): FlagSpec | undefined {
  return Object.hasOwn(specs, name) ? specs[name] : undefined;
}

/** Every flag, as help would name it: `--rm, -e/--env, ...`. */
function flagList(specs: FlagSpecs): string {
  return Object.entries(specs).map(([name, s]) => (s.char ? `-${s.char}/--${name}` : `--${name}`)).join(', ');
}

/** A value as messages show it: quoted only when it is empty or holds spaces or quotes. */
export function shown(value: string): string {
  return /^[\w./:=@%+,-]+$/.test(value) ? value : JSON.stringify(value);
}

/** `value` as `spec` takes it, or a one-line reason naming `written` (the flag as typed). */
function convert(spec: Exclude<FlagSpec, { type: 'boolean' }>, written: string, value: string): string | number | Error {
  const wrong = () => new Error(`${written} needs ${allowedValues(spec)}, got ${shown(value)}`);
  if (spec.type === 'integer') {
    const n = /^-?\d+$/.test(value) ? Number(value) : NaN;
    if (!Number.isSafeInteger(n) || (spec.min !== undefined && n < spec.min) || (spec.max !== undefined && n > spec.max)) return wrong();
    return n;
  }
  if (spec.options && !spec.options.includes(value)) return wrong();
  if (spec.format && !spec.format.pattern.test(value)) return wrong();
  return value;
}

/**
 * Reads `argv` (the arguments after the command's name). Flags come first:
 * `--name value`, `--name=value`, a boolean as `--name`, one-letter aliases
 * as getopt reads them; a value flag takes the next argument whatever it
 * is; `--` ends the flags. Then the operand, if the syntax has one, and the
 * rest (a `--` right after the operand is dropped: `run default -- ls -l`).
 * 'help' when `--help` or `-h` is among the flags, even after a mistake
 * (oclif shows the help); otherwise the first mistake is thrown as a
 * one-line UserError with the syntax's usage exit status.
 */
export function parseCommandLine<X extends CommandSyntax>(syntax: X, argv: readonly string[]): CommandLine<X> | 'help' {
  const specs = syntax.flags;
  const values: Record<string, string | number | boolean | string[] | undefined> = {};
  /** How each single-valued flag was written when first given, for the repeat error. */
  const given = new Map<string, string>();
  let mistake: string | undefined;
  let help = false;
  const fail = (message: string) => {
    mistake ??= message;
  };
  const set = (name: string, spec: FlagSpec, written: string, raw: string | undefined) => {
    if (spec.type === 'boolean') {
      values[name] = true;
      return;
    }
    if (raw === undefined) return fail(`${written} needs ${allowedValues(spec) ?? 'a value'}, got nothing`);
    const value = convert(spec, written, raw);
    if (value instanceof Error) return fail(value.message);
    if (spec.type === 'string' && spec.multiple) {
      ((values[name] ??= []) as string[]).push(value as string);
      return;
    }
    const first = given.get(name);
    if (first !== undefined) return fail(`${written} given more than once (${first} ${shown(String(values[name]))}, then ${shown(raw)}): give it once`);
    given.set(name, written);
    values[name] = value;
  };
  let i = 0;
  const byChar = charNames(specs);
  const away = syntax.elsewhere ?? { flags: {}, why: '' };
  const awayByChar = charNames(away.flags);
  /** A flag that belongs elsewhere is refused with the reason; its value, if it takes one, is skipped as the flag would take it. */
  const misplaced = (spec: FlagSpec, written: string, valueAttached: boolean) => {
    fail(`${written} ${away.why}`);
    if (spec.type !== 'boolean' && !valueAttached) i++;
  };

  for (; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') {
      i++;
      break;
    }
    if (arg === '--help' || arg === '-h') {
      help = true;
    } else if (arg.startsWith('--')) {
      const eq = arg.indexOf('=');
      const name = eq === -1 ? arg.slice(2) : arg.slice(2, eq);
      const written = `--${name}`;
      const spec = own(specs, name);
      const awaySpec = own(away.flags, name);
      if (!spec && awaySpec) misplaced(awaySpec, written, eq !== -1);
      else if (!spec) fail(`unknown flag ${written}: vmctr ${syntax.command} takes ${flagList(specs)}`);
      else if (spec.type === 'boolean' && eq !== -1) fail(`${written} takes no value, got ${shown(arg)}`);
      else set(name, spec, written, eq === -1 ? (spec.type === 'boolean' ? undefined : argv[++i]) : arg.slice(eq + 1));
    } else if (arg.startsWith('-') && arg.length > 1) {
      // A cluster of one-letter flags: booleans, then at most one that takes the rest (or the next argument) as its value.
      for (let j = 1; j < arg.length; j++) {
        const char = arg[j]!;
        const name = byChar.get(char);
        const spec = name === undefined ? undefined : specs[name];
        const awayName = awayByChar.get(char);
        const awaySpec = awayName === undefined ? undefined : own(away.flags, awayName);
        if (!spec && awaySpec) {
          misplaced(awaySpec, `-${char}`, j + 1 < arg.length);
          break;
        }
        if (name === undefined || !spec) {
          fail(`unknown flag -${char}${arg.length > 2 ? ` (in ${arg})` : ''}: vmctr ${syntax.command} takes ${flagList(specs)}`);
          break;
        }
        if (spec.type === 'boolean') {
          set(name, spec, `-${char}`, undefined);
          continue;
        }
        const attached = arg.slice(j + 1).replace(/^=/, '');
        set(name, spec, `-${char}`, j + 1 < arg.length ? attached : argv[++i]);
        break;
      }
    } else {
      break; // the operand, or an argument the command does not take
    }
  }
  if (help) return 'help';
  if (mistake !== undefined) throw new UserError(mistake, syntax.usageExitCode);

  const operands = argv.slice(i);
  for (const [name, spec] of Object.entries(specs)) {
    if (Object.hasOwn(values, name)) continue;
    values[name] = spec.type === 'boolean' ? false : spec.type === 'string' && spec.multiple ? [] : spec.default;
  }
  const flags = values as FlagValues<X['flags']>;
  if (!syntax.operand) {
    if (operands.length > 0) throw new UserError(`unexpected argument ${shown(operands[0]!)}: vmctr ${syntax.command} takes flags only (${flagList(specs)})`, syntax.usageExitCode);
    return { flags } as CommandLine<X>;
  }
  const [operand, ...rest] = operands;
  if (operand === undefined && syntax.operand.optional) return { flags, operand, rest } as CommandLine<X>;
  if (operand === undefined) throw new UserError(`${syntax.operand.name} is missing: ${syntax.operand.description}`, syntax.usageExitCode);
  if (rest[0] === '--') rest.shift();
  return { flags, operand, rest } as CommandLine<X>;
}
