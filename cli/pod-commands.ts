// The pod commands without oclif: ps, status, attach, logs, exec, stop,
// kill, rm, gc, update. Each command line is defined once here (flag-spec.ts)
// and read by one parser, on the CLI's fast path (main.ts) and in the oclif
// command, which serves help: oclif costs seconds of start-up in the lab, on
// commands that scripts run in loops.
import { constants } from 'node:os';
import { storeRoot } from '../image/store-root.js';
import { formatLogRecord, parseSince, readAppLogs, type LogRecord } from '../monitor/app-log.js';
import { attach, request } from '../monitor/client.js';
import { readLaunch } from '../monitor/launch.js';
import { PodCgroup, VMM_OVERHEAD_MIB } from '../pod/pod-cgroup.js';
import { PodDir } from '../pod/pod-dir.js';
import { ENV_ENTRY, ABSOLUTE_PATH } from '../pod/pod-spec.js';
import { parseCommandLine, rootFlag, type CommandLine, type CommandSyntax, type FlagSpecs } from './flag-spec.js';
import { collectGarbage, findPod, removePod, requireRunning, viewOf, type PodView } from './pod-control.js';
import { EXIT_SIGPIPE, reportExit } from './run-command.js';
import { RunExitCode } from './run-exit-code.js';
import { table } from './table.js';
import { EXIT_USAGE, UserError } from './user-error.js';

/** How often `logs -f` checks whether the pod's monitor is still there. */
const FOLLOW_POLL_MS = 500;

const pod = { name: 'POD', description: 'pod name or id (or a unique prefix of the id)' } as const;

/** A command on one pod (POD after the flags). */
function syntax<F extends FlagSpecs>(command: string, flags: F) {
  return { command, flags: { ...flags, ...rootFlag }, usageExitCode: EXIT_USAGE, operand: pod } as const;
}

/** A command on all pods (flags only). */
function listSyntax<F extends FlagSpecs>(command: string, flags: F) {
  return { command, flags: { ...flags, ...rootFlag }, usageExitCode: EXIT_USAGE } as const;
}

/** A command's arguments: flags first, then the pod; nothing after it but where the command takes more. */
function only(line: { operand: string; rest: string[] }, command: string): string {
  if (line.rest.length) throw new UserError(`unexpected argument "${line.rest[0]}": vmctr ${command} takes one pod, after its flags`, EXIT_USAGE);
  return line.operand;
}

const out = (text: string) => process.stdout.write(`${text}\n`);

const psSyntax = listSyntax('ps', {
  all: { type: 'boolean', char: 'a', description: 'show pods that have ended too' },
  format: { type: 'string', options: ['table', 'json'], default: 'table', description: 'output format' },
});

async function ps({ flags }: CommandLine<typeof psSyntax>): Promise<void> {
  const views: PodView[] = [];
  for (const dir of await PodDir.list(storeRoot(flags.root))) {
    const view = viewOf(dir, await dir.readRecord());
    if (flags.all || /^(starting|running|stopping)/.test(view.status)) views.push(view);
  }
  if (flags.format === 'json') return void out(JSON.stringify(views.map(podJson), null, 2));
  const rows = [['NAME', 'ID', 'APPS', 'IMAGE', 'IP', 'CREATED', 'STATUS']];
  for (const { dir, record, status } of views) {
    const apps = record?.apps ?? [];
    rows.push([
      dir.name,
      record?.id.slice(0, 12) ?? '-',
      apps.map((a) => (a.exitCode === undefined ? a.name : `${a.name}(${a.exitCode})`)).join(',') || '-',
      apps.map((a) => a.image).join(',') || '-',
      record?.network?.ip ?? '-',
      record?.created.replace(/\.\d+Z$/, 'Z') ?? '-',
      status,
    ]);
  }
  out(table(rows));
}

/** One pod for `ps --format json` and `vmctr status`: the record with the status it has now, and its cgroup's limits. */
function podJson(view: PodView): Record<string, unknown> {
  const group = view.record?.cgroup && view.monitorAlive ? PodCgroup.of(view.record.id) : undefined;
  const limits = group?.exists() ? group.limits() : undefined;
  return { name: view.dir.name, ...view.record, status: view.status, monitorAlive: view.monitorAlive, ip: view.record?.network?.ip ?? null, ...(limits ? { limits } : {}) };
}

const statusSyntax = syntax('status', {});

async function status(line: CommandLine<typeof statusSyntax>): Promise<void> {
  out(JSON.stringify(podJson(await findPod(line.flags.root, only(line, 'status'))), null, 2));
}

const attachSyntax = syntax('attach', {});

async function attachPod(line: CommandLine<typeof attachSyntax>): Promise<void> {
  const socket = requireRunning(await findPod(line.flags.root, only(line, 'attach'))).dir.controlSocket;
  const state = await request(socket, { op: 'status' });
  const stdin = state.stdin === true;
  const tty = state.tty === true;
  const attachment = await attach(socket, { op: 'attach', stdin, owner: false }, {
    stdin,
    tty,
    signal: (name, forward) => forward(constants.signals[name]),
    // A detaching filter: a closed stdout ends the command, not the pod.
    outputClosed: () => process.exit(EXIT_SIGPIPE),
  });
  process.exit(reportExit(await attachment.exit));
}

const logsSyntax = syntax('logs', {
  follow: { type: 'boolean', char: 'f', description: 'keep printing new output until the pod ends' },
  since: { type: 'string', description: 'only output since then: a timestamp (2026-12-03T10:00:00Z) or a duration ago (10s, 5m, 1h30m)' },
  tail: { type: 'integer', char: 'n', min: 0, description: 'only the last N lines' },
  app: { type: 'string', description: 'only this app\'s output' },
  timestamps: { type: 'boolean', description: 'prefix each line with its time' },
});

async function logs(line: CommandLine<typeof logsSyntax>): Promise<void> {
  const { flags } = line;
  const found = await findPod(flags.root, only(line, 'logs'));
  const names = found.record?.apps.map((a) => a.name) ?? [];
  if (flags.app !== undefined && !names.includes(flags.app)) throw new UserError(`pod "${found.dir.name}" has no app "${flags.app}" (apps: ${names.join(', ')})`);
  let since: Date | undefined;
  try {
    since = flags.since === undefined ? undefined : parseSince(flags.since, new Date());
  } catch (err) {
    throw new UserError((err as Error).message, EXIT_USAGE);
  }
  const apps = flags.app === undefined ? names : [flags.app];
  const stop = new AbortController();
  // Following ends with the pod: once its monitor is gone nothing more is written.
  const poll = flags.follow ? setInterval(() => found.dir.isLocked() || stop.abort(), FOLLOW_POLL_MS) : undefined;
  const format = { timestamps: flags.timestamps, appPrefix: apps.length > 1 };
  const previous: Partial<Record<'stdout' | 'stderr', LogRecord>> = {};
  try {
    const options = { apps, follow: flags.follow, signal: stop.signal, ...(since ? { since } : {}), ...(flags.tail === undefined ? {} : { tail: flags.tail }) };
    for await (const record of readAppLogs(found.dir.logsDir, options)) {
      const stream = record.stream === 'stderr' ? process.stderr : process.stdout;
      const text = formatLogRecord(record, format, previous[record.stream]);
      previous[record.stream] = record;
      if (!stream.write(text)) await new Promise((resolve) => stream.once('drain', resolve));
    }
  } finally {
    clearInterval(poll);
  }
}

const execSyntax = {
  ...syntax('exec', {
    interactive: { type: 'boolean', char: 'i', description: 'pass stdin to the process' },
    tty: { type: 'boolean', char: 't', description: 'give the process a terminal' },
    env: { type: 'string', char: 'e', multiple: true, format: { pattern: ENV_ENTRY, expected: 'KEY=VALUE' }, description: 'set an environment variable (KEY=VALUE); repeatable' },
    user: { type: 'string', char: 'u', description: 'USER[:GROUP] (default: the app\'s)' },
    workdir: { type: 'string', char: 'w', format: { pattern: ABSOLUTE_PATH, expected: 'an absolute path' }, description: 'working directory (default: the app\'s)' },
    app: { type: 'string', description: 'the app to enter (default: the first)' },
  }),
  usageExitCode: RunExitCode.error,
} as const;

async function exec({ flags, operand, rest }: CommandLine<typeof execSyntax>): Promise<void> {
  if (rest.length === 0) throw new UserError('vmctr exec needs a command: vmctr exec [FLAGS] POD [--] CMD...', RunExitCode.error);
  const socket = requireRunning(await findPod(flags.root, operand)).dir.controlSocket;
  const tty = flags.tty ? { rows: process.stdout.rows || 24, cols: process.stdout.columns || 80 } : undefined;
  const request = {
    op: 'exec' as const,
    args: rest,
    env: flags.env,
    stdin: flags.interactive,
    ...(flags.app ? { app: flags.app } : {}),
    ...(flags.user ? { user: flags.user } : {}),
    ...(flags.workdir ? { cwd: flags.workdir } : {}),
    ...(tty ? { tty } : {}),
  };
  const attachment = await attach(socket, request, {
    stdin: flags.interactive,
    tty: flags.tty,
    signal: (name, forward) => forward(constants.signals[name]),
    outputClosed: () => process.exit(EXIT_SIGPIPE),
  }).catch((err: Error & { exitCode?: number }) => {
    throw new UserError(err.message, err.exitCode ?? RunExitCode.error);
  });
  process.exit(reportExit(await attachment.exit));
}

const stopSyntax = syntax('stop', {
  time: { type: 'integer', char: 't', default: 10, min: 0, max: 86400, description: 'seconds the apps get to exit after SIGTERM' },
});

async function stop(line: CommandLine<typeof stopSyntax>): Promise<void> {
  const found = await findPod(line.flags.root, only(line, 'stop'));
  // A pod that has already ended is stopped: as docker stop, not an error.
  if (found.monitorAlive) await request(requireRunning(found).dir.controlSocket, { op: 'stop', timeoutSeconds: line.flags.time });
  out(found.dir.name);
}

const killSyntax = syntax('kill', {
  signal: { type: 'string', char: 's', default: 'KILL', description: 'signal name (TERM, SIGHUP...) or number' },
});

async function kill(line: CommandLine<typeof killSyntax>): Promise<void> {
  const signal = signalNumber(line.flags.signal);
  const socket = requireRunning(await findPod(line.flags.root, only(line, 'kill'))).dir.controlSocket;
  await request(socket, signal === constants.signals.SIGKILL ? { op: 'kill' } : { op: 'signal', signal });
}

function signalNumber(text: string): number {
  if (/^\d+$/.test(text) && Number(text) >= 1 && Number(text) <= 64) return Number(text);
  const upper = text.toUpperCase();
  const number = constants.signals[(upper.startsWith('SIG') ? upper : `SIG${upper}`) as keyof typeof constants.signals];
  if (number === undefined) throw new UserError(`unknown signal "${text}": use a name such as TERM or a number from 1 to 64`, EXIT_USAGE);
  return number;
}

const rmSyntax = syntax('rm', {
  force: { type: 'boolean', char: 'f', description: 'end a running pod first' },
});

async function rm({ flags, operand, rest }: CommandLine<typeof rmSyntax>): Promise<void> {
  const names = [operand, ...rest];
  // Each pod on its own: one that cannot be removed does not keep the others.
  const results = await Promise.allSettled(names.map(async (name) => removePod(await findPod(flags.root, name), flags.force)));
  const failures: string[] = [];
  results.forEach((result, i) => {
    if (result.status === 'fulfilled') out(names[i]!);
    else failures.push((result.reason as Error).message);
  });
  if (failures.length) throw new UserError(failures.join('; '));
}

const gcSyntax = listSyntax('gc', {});

async function gc({ flags }: CommandLine<typeof gcSyntax>): Promise<void> {
  for (const removed of await collectGarbage(storeRoot(flags.root))) out(removed);
}

const updateSyntax = syntax('update', {
  memory: { type: 'integer', min: 1, description: 'host memory limit of the whole pod, VMM included, in MiB' },
  cpus: { type: 'string', format: { pattern: /^\d+(\.\d+)?$/, expected: 'a number of CPUs such as 0.5' }, description: 'CPU quota, in CPUs' },
});

async function update(line: CommandLine<typeof updateSyntax>): Promise<void> {
  const { flags } = line;
  const found = requireRunning(await findPod(flags.root, only(line, 'update')));
  const record = found.record!;
  if (!record.cgroup) throw new UserError(`pod "${found.dir.name}" has no cgroup (this host has no cgroup v2 with cpu, memory and pids)`);
  const launch = await readLaunch(found.dir.launchPath);
  const floor = launch.memoryMiB + VMM_OVERHEAD_MIB;
  if (flags.memory !== undefined && flags.memory < floor) {
    throw new UserError(`--memory ${flags.memory} is below the pod's guest RAM (${launch.memoryMiB} MiB) plus ${VMM_OVERHEAD_MIB} MiB for its VMM: at least ${floor}`);
  }
  const cpus = flags.cpus === undefined ? undefined : Number(flags.cpus);
  if (cpus !== undefined && !(cpus >= 0.01 && cpus <= launch.cpus)) throw new UserError(`--cpus ${flags.cpus}: expected a number from 0.01 to the pod's ${launch.cpus} vCPU(s)`);
  if (flags.memory === undefined && cpus === undefined) throw new UserError('vmctr update needs --memory or --cpus', EXIT_USAGE);
  const group = PodCgroup.of(record.id);
  group.update({ ...(flags.memory === undefined ? {} : { memoryMiB: flags.memory }), ...(cpus === undefined ? {} : { cpus }) });
  out(JSON.stringify(group.limits()));
}

interface PodCommand {
  syntax: CommandSyntax;
  run(line: never): Promise<void>;
}

/** Every pod command: its command line and what it does. */
export const podCommands = {
  ps: { syntax: psSyntax, run: ps },
  status: { syntax: statusSyntax, run: status },
  attach: { syntax: attachSyntax, run: attachPod },
  logs: { syntax: logsSyntax, run: logs },
  exec: { syntax: execSyntax, run: exec },
  stop: { syntax: stopSyntax, run: stop },
  kill: { syntax: killSyntax, run: kill },
  rm: { syntax: rmSyntax, run: rm },
  gc: { syntax: gcSyntax, run: gc },
  update: { syntax: updateSyntax, run: update },
} as const satisfies Record<string, PodCommand>;

export type PodCommandName = keyof typeof podCommands;

/** What `vmctr <name> argv` is to run, or 'help' for oclif to show. */
export function parsePodCommand(name: PodCommandName, argv: readonly string[]): (() => Promise<void>) | 'help' {
  const command: PodCommand = podCommands[name];
  const line = parseCommandLine(command.syntax, argv);
  return line === 'help' ? line : () => command.run(line as never);
}
