/**
 * The CLI-monitor protocol, version 1 (PROTOCOL.md beside this file): the
 * message codes, the requests and their checks. It uses the agent
 * protocol's framing (guest-agent/frames.ts) and the same codes for stdio
 * data frames, so one decoder serves both; the control messages are its own.
 * Both ends are on the host, but the monitor still checks every request: any
 * local user who can reach the socket is a client.
 */
import { MessageType as AgentMessageType } from '../guest-agent/protocol.js';

export const MONITOR_PROTOCOL_VERSION = 1;

export const MonitorMessage = {
  /** M→C, first: `{protocol, pod, id}`. */
  hello: 0x01,
  /** C→M, once per connection: a Request. */
  request: 0x02,
  /** M→C: the request's answer (`{}` or what the op returns); an attach or exec then streams. */
  reply: 0x03,
  stdin: AgentMessageType.stdin,
  stdout: AgentMessageType.stdout,
  stderr: AgentMessageType.stderr,
  /** C→M `{}`: the attached client's input ended. */
  stdinClose: 0x07,
  /** C→M `{rows, cols}`. */
  resize: 0x09,
  /** C→M `{signal}`: for the attached process (an attach: the pod's apps). */
  signal: 0x0a,
  /** M→C `{code, error?}`: the attached pod or exec'd process ended; the last message. */
  exit: 0x0b,
  /** M→C `{message, code}`: the request failed; the last message. */
  error: 0x0c,
  /** C→M `{}`: an owner detaches on purpose; its leaving no longer ends the pod. */
  detach: 0x0d,
} as const;

export interface TtySize {
  rows: number;
  cols: number;
}

export type Request =
  /** The pod's record, live. */
  | { op: 'status' }
  /**
   * The pod's apps' stdio until the pod ends. `stdin`: this client's input
   * goes to the first app. `owner`: the foreground `vmctr run` that started
   * the pod; its connection closing without a detach ends the pod.
   */
  | { op: 'attach'; stdin: boolean; owner: boolean }
  /** A new process in a running app's root filesystem; streams like attach, until it ends. */
  | { op: 'exec'; app?: string; args: string[]; env: string[]; user?: string; cwd?: string; tty?: TtySize; stdin: boolean }
  /** A signal to every app's main process. */
  | { op: 'signal'; signal: number }
  /** SIGTERM to the apps, the VM ended after `timeoutSeconds`; replies once the pod has ended. */
  | { op: 'stop'; timeoutSeconds: number }
  /** Ends the VM now; replies once the pod has ended. */
  | { op: 'kill' };

export class RequestError extends Error {}

const MAX_ARGS = 2048;
const MAX_STRING = 64 * 1024;
const MAX_STOP_SECONDS = 24 * 3600;

const isInteger = (v: unknown, min: number, max: number): v is number => Number.isInteger(v) && (v as number) >= min && (v as number) <= max;

function strings(v: unknown, field: string, pattern?: RegExp): string[] {
  if (!Array.isArray(v) || v.length > MAX_ARGS) throw new RequestError(`${field}: expected at most ${MAX_ARGS} strings`);
  for (const s of v) {
    if (typeof s !== 'string' || s.length > MAX_STRING || s.includes('\0')) throw new RequestError(`${field}: expected strings without NUL`);
    if (pattern && !pattern.test(s)) throw new RequestError(`${field}: "${s.slice(0, 80)}" is not valid`);
  }
  return v as string[];
}

function optionalString(v: unknown, field: string): string | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || v.length === 0 || v.length > MAX_STRING || v.includes('\0')) throw new RequestError(`${field}: expected a non-empty string`);
  return v;
}

export function parseTtySize(v: unknown): TtySize {
  const size = v as Partial<TtySize> | null;
  if (typeof size !== 'object' || size === null || !isInteger(size.rows, 1, 0xffff) || !isInteger(size.cols, 1, 0xffff)) {
    throw new RequestError('expected {rows, cols} from 1 to 65535');
  }
  return { rows: size.rows, cols: size.cols };
}

export function parseSignal(v: unknown): number {
  if (!isInteger(v, 1, 64)) throw new RequestError('signal: expected a number from 1 to 64');
  return v;
}

/** A request body as the monitor accepts it, or a RequestError naming what is wrong. */
export function parseRequest(body: Record<string, unknown>): Request {
  switch (body.op) {
    case 'status':
    case 'kill':
      return { op: body.op };
    case 'attach':
      return { op: 'attach', stdin: body.stdin === true, owner: body.owner === true };
    case 'signal':
      return { op: 'signal', signal: parseSignal(body.signal) };
    case 'stop':
      if (!isInteger(body.timeoutSeconds, 0, MAX_STOP_SECONDS)) throw new RequestError(`timeoutSeconds: expected an integer from 0 to ${MAX_STOP_SECONDS}`);
      return { op: 'stop', timeoutSeconds: body.timeoutSeconds };
    case 'exec': {
      const args = strings(body.args, 'args');
      if (args.length === 0) throw new RequestError('args: expected a command');
      const cwd = optionalString(body.cwd, 'cwd');
      if (cwd !== undefined && !cwd.startsWith('/')) throw new RequestError('cwd: expected an absolute path');
      const app = optionalString(body.app, 'app');
      const user = optionalString(body.user, 'user');
      return {
        op: 'exec',
        args,
        env: strings(body.env ?? [], 'env', /^[^=]+=/),
        stdin: body.stdin === true,
        ...(app === undefined ? {} : { app }),
        ...(user === undefined ? {} : { user }),
        ...(cwd === undefined ? {} : { cwd }),
        ...(body.tty === undefined ? {} : { tty: parseTtySize(body.tty) }),
      };
    }
    default:
      throw new RequestError(`unknown op ${JSON.stringify(body.op)?.slice(0, 40)}`);
  }
}
