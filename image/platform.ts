import { ImageError } from './image-error.js';

export interface Platform {
  readonly os: string;
  readonly architecture: string;
  readonly variant?: string;
}

export const DEFAULT_PLATFORM: Platform = { os: 'linux', architecture: 'amd64' };

// The names other tools (uname, Debian) use for the same architectures.
const ARCH_ALIASES: Record<string, string> = { x86_64: 'amd64', 'x86-64': 'amd64', aarch64: 'arm64', armhf: 'arm', armel: 'arm', i686: '386', i386: '386' };

/** Parses `os/arch[/variant]`, as `--platform` takes it. */
export function parsePlatform(text: string): Platform {
  const parts = text.toLowerCase().split('/');
  if (parts.length < 2 || parts.length > 3 || parts.some((part) => !/^[a-z0-9_.-]+$/.test(part))) {
    throw new ImageError(`invalid platform "${text}": expected os/architecture[/variant], e.g. linux/arm64`);
  }
  const [os, arch, variant] = parts as [string, string, string | undefined];
  const architecture = ARCH_ALIASES[arch] ?? arch;
  return { os, architecture, ...(variant === undefined ? {} : { variant }) };
}

export function formatPlatform(platform: Platform): string {
  return [platform.os, platform.architecture, platform.variant].filter(Boolean).join('/');
}

// The variant an image means when it names none: arm64 is v8, 32-bit arm is v7.
function effectiveVariant(platform: Platform): string | undefined {
  if (platform.variant) return platform.variant;
  if (platform.architecture === 'arm64') return 'v8';
  if (platform.architecture === 'arm') return 'v7';
  return undefined;
}

/** Whether an image built for `have` runs on `want`. */
export function platformMatches(want: Platform, have: Platform): boolean {
  if (want.os !== have.os || want.architecture !== have.architecture) return false;
  const wanted = effectiveVariant(want);
  return wanted === undefined || wanted === effectiveVariant(have);
}
