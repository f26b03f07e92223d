import { Args, Flags } from '@oclif/core';
import { formatLogRecord, parseSince, readAppLogs, type LogRecord } from '../../monitor/app-log.js';
import { UserError, VmctrCommand } from '../command.js';
import { findPod, rootFlag } from '../pod-control.js';

/** How often `logs -f` checks whether the pod's monitor is still there. */
const FOLLOW_POLL_MS = 500;

export default class Logs extends VmctrCommand {
  static override summary = 'Print a pod\'s app logs (stdout and stderr, kept by its monitor), running or ended.';
  static override args = { pod: Args.string({ description: 'pod name or id', required: true }) };
  static override flags = {
    follow: Flags.boolean({ char: 'f', description: 'keep printing new output until the pod ends' }),
    since: Flags.string({ description: 'only output since then: a timestamp (2026-12-03T10:00:00Z) or a duration ago (10s, 5m, 1h30m)' }),
    tail: Flags.integer({ char: 'n', description: 'only the last N lines', min: 0 }),
    app: Flags.string({ description: 'only this app\'s output' }),
    timestamps: Flags.boolean({ description: 'prefix each line with its time' }),
    ...rootFlag,
  };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(Logs);
    const pod = await findPod(flags.root, args.pod);
    const names = pod.record?.apps.map((a) => a.name) ?? [];
    const unknown = flags.app !== undefined && !names.includes(flags.app) ? flags.app : undefined;
    if (unknown) throw new UserError(`pod "${pod.dir.name}" has no app "${unknown}" (apps: ${names.join(', ')})`);
    let since: Date | undefined;
    try {
      since = flags.since === undefined ? undefined : parseSince(flags.since, new Date());
    } catch (err) {
      throw new UserError((err as Error).message);
    }
    const apps = flags.app === undefined ? names : [flags.app];
    const stop = new AbortController();
    let poll: NodeJS.Timeout | undefined;
    if (flags.follow) {
      // Following ends with the pod: once its monitor is gone nothing more is written.
      poll = setInterval(() => {
        if (!pod.dir.isLocked()) stop.abort();
      }, FOLLOW_POLL_MS);
    }
    const format = { timestamps: flags.timestamps, appPrefix: apps.length > 1 };
    const previous: Partial<Record<'stdout' | 'stderr', LogRecord>> = {};
    try {
      for await (const record of readAppLogs(pod.dir.logsDir, { apps, follow: flags.follow, signal: stop.signal, ...(since ? { since } : {}), ...(flags.tail === undefined ? {} : { tail: flags.tail }) })) {
        const out = record.stream === 'stderr' ? process.stderr : process.stdout;
        const text = formatLogRecord(record, format, previous[record.stream]);
        previous[record.stream] = record;
        if (!out.write(text)) await new Promise((resolve) => out.once('drain', resolve));
      }
    } finally {
      clearInterval(poll);
    }
  }
}
