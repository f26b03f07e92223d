// How vmctr commands fail, without oclif: the CLI's fast path (main.ts)
// reports errors exactly as the oclif commands do (command.ts).

/** A failure the user can act on: printed as one line, with a documented exit code. */
export class UserError extends Error {
  readonly exitCode: number;

  constructor(message: string, exitCode = 1) {
    super(message);
    this.exitCode = exitCode;
  }
}

/** Exit code for bad usage (unknown flag, bad value), as with most CLIs. */
export const EXIT_USAGE = 2;

/** Any error leaves as `vmctr: <one line>` on stderr and a non-zero exit. */
export function exitWithError(err: Error & { exitCode?: number; oclif?: { exit?: number } }): never {
  const firstLine = (err.message ?? String(err)).split('\n')[0]!.replace(/^Error: /, '');
  process.stderr.write(`vmctr: ${firstLine}\n`);
  const code = err instanceof UserError ? err.exitCode : err.oclif?.exit !== undefined ? EXIT_USAGE : 1;
  process.exit(code);
}
