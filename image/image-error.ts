/**
 * A failure the user can act on (bad reference, unreachable registry, corrupt
 * content...). The CLI prints its message alone, on one line, and exits non-zero.
 */
export class ImageError extends Error {
  override name = 'ImageError';
}

/** Flattens any error to one line: the CLI promises one-line messages. */
export function oneLine(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  return text.replace(/\s*\n\s*/g, ' ').trim();
}
