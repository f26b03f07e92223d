import { formatBytes } from './human-units.js';
import { shortDigest, type Digest } from './digest.js';
import type { SnapshotProgress } from './snapshot.js';

/** What one blob transfer reports. */
export interface TransferProgress {
  waiting(pid: number): void;
  started(): void;
  advance(bytes: number): void;
  finished(): void;
  present(): void;
  failed(): void;
}

/** Where a pull reports to: bars on a terminal, plain lines elsewhere, nothing when quiet. */
export interface PullProgress extends SnapshotProgress {
  blob(digest: Digest, size: number): TransferProgress;
  note(message: string): void;
  close(): void;
}

type State = 'queued' | 'waiting' | 'downloading' | 'done' | 'present' | 'failed';

interface Row {
  readonly label: string;
  readonly total: number;
  state: State;
  bytes: number;
  detail: string;
}

const STATE_TEXT: Record<State, string> = {
  queued: 'queued',
  waiting: 'waiting',
  downloading: 'downloading',
  done: 'pull complete',
  present: 'already exists',
  failed: 'failed',
};

function bar(fraction: number, width: number): string {
  const filled = Math.round(Math.min(1, Math.max(0, fraction)) * width);
  return `[${'='.repeat(Math.max(0, filled - 1))}${filled > 0 ? '>' : ''}${' '.repeat(width - filled)}]`;
}

/** One line per blob, redrawn in place at most ten times a second. */
class TerminalProgress implements PullProgress {
  readonly #rows: Row[] = [];
  #drawn = 0;
  #timer: NodeJS.Timeout | undefined;

  constructor(readonly out: NodeJS.WriteStream) {}

  blob(digest: Digest, size: number): TransferProgress {
    const row: Row = { label: shortDigest(digest), total: size, state: 'queued', bytes: 0, detail: '' };
    this.#rows.push(row);
    this.#schedule();
    const set = (state: State, detail = '') => {
      row.state = state;
      row.detail = detail;
      this.#schedule();
    };
    return {
      waiting: (pid) => set('waiting', `for vmctr pid ${pid}`),
      started: () => set('downloading'),
      advance: (bytes) => {
        row.bytes += bytes;
        this.#schedule();
      },
      finished: () => set('done'),
      present: () => set('present'),
      failed: () => set('failed'),
    };
  }

  #line(row: Row): string {
    const width = Math.max(10, Math.min(30, (this.out.columns ?? 80) - 50));
    const amount = `${formatBytes(row.bytes)}/${formatBytes(row.total)}`;
    const body = row.state === 'downloading' ? `${bar(row.total === 0 ? 1 : row.bytes / row.total, width)} ${amount}` : row.detail;
    return `${row.label}: ${STATE_TEXT[row.state].padEnd(14)} ${body}`.slice(0, (this.out.columns ?? 80) - 1);
  }

  #schedule(): void {
    this.#timer ??= setTimeout(() => {
      this.#timer = undefined;
      this.#draw();
    }, 100);
    this.#timer.unref();
  }

  #draw(): void {
    let text = this.#drawn > 0 ? `\x1b[${this.#drawn}A` : '';
    for (const row of this.#rows) text += `\x1b[2K${this.#line(row)}\n`;
    this.#drawn = this.#rows.length;
    this.out.write(text);
  }

  #above(message: string): void {
    const up = this.#drawn > 0 ? `\x1b[${this.#drawn}A\x1b[0J` : '';
    this.#drawn = 0;
    this.out.write(`${up}${message}\n`);
    this.#draw();
  }

  note(message: string): void {
    this.#above(message);
  }

  warn(message: string): void {
    this.#above(`warning: ${message}`);
  }

  unpacking(layer: number, of: number, digest: Digest): void {
    this.#above(`unpacking layer ${layer}/${of} ${shortDigest(digest)}`);
  }

  close(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#draw();
  }
}

/** For logs and pipes: a line when a blob starts, finishes or waits, none per byte. */
class LineProgress implements PullProgress {
  constructor(readonly out: NodeJS.WritableStream) {}

  blob(digest: Digest, size: number): TransferProgress {
    const label = shortDigest(digest);
    const say = (text: string) => this.out.write(`${label}: ${text}\n`);
    return {
      waiting: (pid) => say(`waiting for vmctr pid ${pid}, which is fetching it`),
      started: () => say(`downloading ${formatBytes(size)}`),
      advance: () => undefined,
      finished: () => say('pull complete'),
      present: () => say('already exists'),
      failed: () => say('failed'),
    };
  }

  note(message: string): void {
    this.out.write(`${message}\n`);
  }

  warn(message: string): void {
    this.out.write(`warning: ${message}\n`);
  }

  unpacking(layer: number, of: number, digest: Digest): void {
    this.out.write(`unpacking layer ${layer}/${of} ${shortDigest(digest)}\n`);
  }

  close(): void {}
}

/** Progress on `out`: bars when it is a terminal, plain lines otherwise. */
export function progressTo(out: NodeJS.WriteStream): PullProgress {
  return out.isTTY ? new TerminalProgress(out) : new LineProgress(out);
}

/** Reports nothing but warnings, which go to stderr. */
export const quietProgress: PullProgress = {
  blob: () => ({ waiting: () => undefined, started: () => undefined, advance: () => undefined, finished: () => undefined, present: () => undefined, failed: () => undefined }),
  note: () => undefined,
  warn: (message) => process.stderr.write(`warning: ${message}\n`),
  close: () => undefined,
};
