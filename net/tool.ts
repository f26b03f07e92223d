// Running iproute2's `ip` and nftables' `nft`: no shell, the arguments as
// given, and a failure as one line naming the command and what it said.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';

/** The Debian package each tool comes from, for the error when it is missing. */
const PACKAGES = { ip: 'iproute2', nft: 'nftables' } as const;
export type Tool = keyof typeof PACKAGES;

/** A tool that failed: its one-line message, and its stderr in full for callers that look for a reason. */
export class ToolError extends Error {
  constructor(
    message: string,
    readonly stderr: string,
  ) {
    super(message);
  }
}

/** The tool's path: sbin may be missing from a caller's PATH, and npm puts its own `nft` (@vercel/nft) first in scripts'. */
export function toolPath(tool: Tool): string {
  return ['/usr/sbin', '/sbin', '/usr/bin', '/bin'].map((dir) => `${dir}/${tool}`).find((path) => existsSync(path)) ?? tool;
}

/** Runs `tool args`, with `input` on its stdin; its stdout, or a ToolError. */
export function run(tool: Tool, args: readonly string[], input?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(toolPath(tool), args, { maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      if (!err) return resolve(stdout);
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return reject(new ToolError(`${tool} is not installed: install Debian's ${PACKAGES[tool]} package (setup/apt-packages.txt)`, ''));
      const said = stderr.split('\n').find((line) => line.trim() !== '')?.trim() ?? `exit status ${String(code)}`;
      reject(new ToolError(`${tool} ${args.join(' ')}: ${said}`, stderr));
    });
    // A tool that fails before reading all its input closes the pipe: its exit status tells.
    child.stdin?.on('error', () => {});
    child.stdin?.end(input);
  });
}
