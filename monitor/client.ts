/**
 * The CLI's side of the control socket: one request per connection
 * (PROTOCOL.md). `request` is for the ops that answer once; `attach` streams
 * a pod's or an exec'd process's stdio to this process's own, as a Unix
 * filter would: output at the pace the reader takes it, input until its end,
 * the terminal raw while a tty is attached, and a closed stdout (EPIPE)
 * handed to the caller to decide.
 */
import { connect } from 'node:net';
import { Connection, type Frame } from './connection.js';
import { MONITOR_PROTOCOL_VERSION, MonitorMessage, type Request } from './protocol.js';

export class MonitorError extends Error {
  constructor(message: string, readonly exitCode: number) {
    super(message);
  }
}

/** The monitor is not there: the pod has ended, or its monitor died. */
export class NoMonitorError extends Error {}

/** How a streaming request ended: the pod's or process's status, and why if not by its own exit. */
export interface AttachExit {
  code: number;
  error?: string;
}

const CONNECT_TIMEOUT_MS = 10_000;

interface Handlers {
  /** A control frame after the hello (the reply, the exit...). */
  control(type: number, body: Record<string, unknown>): void;
  data?(frame: Extract<Frame, { kind: 'data' }>): void;
  closed(error?: Error): void;
}

/** Connects, checks the hello, sends `request`. */
function open(socketPath: string, request: Request, handlers: Handlers): Promise<Connection> {
  return new Promise((resolve, reject) => {
    const socket = connect(socketPath);
    let conn: Connection | undefined;
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new NoMonitorError(`the pod's monitor did not answer within ${CONNECT_TIMEOUT_MS / 1000} s`));
    }, CONNECT_TIMEOUT_MS);
    socket.once('error', (err: NodeJS.ErrnoException) => {
      if (conn) return;
      clearTimeout(timer);
      reject(err.code === 'ENOENT' || err.code === 'ECONNREFUSED' ? new NoMonitorError('the pod has no running monitor') : err);
    });
    let greeted = false;
    conn = new Connection(socket, {
      frame: (frame) => {
        if (!greeted) {
          greeted = true;
          clearTimeout(timer);
          const protocol = frame.kind === 'control' && frame.type === MonitorMessage.hello ? frame.body.protocol : undefined;
          if (protocol !== MONITOR_PROTOCOL_VERSION) {
            socket.destroy();
            reject(new Error(`the pod's monitor speaks protocol ${String(protocol)}, this vmctr speaks ${MONITOR_PROTOCOL_VERSION}`));
            return;
          }
          conn!.send(MonitorMessage.request, request);
          resolve(conn!);
          return;
        }
        if (frame.kind === 'data') handlers.data?.(frame);
        else handlers.control(frame.type, frame.body);
      },
      closed: (error) => {
        clearTimeout(timer);
        if (!greeted) reject(new NoMonitorError(`the pod's monitor closed the connection${error ? `: ${error.message}` : ''}`));
        else handlers.closed(error);
      },
    });
  });
}

/** A one-answer request (status, signal, stop, kill): the reply's body. */
export function request(socketPath: string, req: Request): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    let answered = false;
    open(socketPath, req, {
      control: (type, body) => {
        answered = true;
        if (type === MonitorMessage.reply) resolve(body);
        else if (type === MonitorMessage.error) reject(new MonitorError(String(body.message), Number(body.code) || 1));
        else reject(new Error(`unexpected message type ${type} from the pod's monitor`));
      },
      closed: () => {
        if (!answered) reject(new NoMonitorError('the pod\'s monitor ended before it answered'));
      },
    }).catch(reject);
  });
}

export interface AttachIo {
  stdin: boolean;
  /** Put this terminal in raw mode and send its size: the attached process has a tty. */
  tty: boolean;
  /** Called for SIGINT, SIGTERM, SIGHUP and SIGQUIT while attached. */
  signal(signal: NodeJS.Signals, forward: (signal: number) => void): void;
  /** This process's stdout was closed by its reader (EPIPE). */
  outputClosed(): void;
}

export interface Attachment {
  /** The reply to the attach or exec request. */
  reply: Record<string, unknown>;
  /** How it ended. */
  exit: Promise<AttachExit>;
  /** From now on, this client leaving does not end a pod it owns. */
  detach(): void;
}

const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT'] as const;

/** Attaches this process's stdio to the pod's apps (an attach request) or to a new process (exec). */
export function attach(socketPath: string, req: Extract<Request, { op: 'attach' | 'exec' }>, io: AttachIo): Promise<Attachment> {
  return new Promise((resolveAttachment, rejectAttachment) => {
    let replied = false;
    let ended = false;
    let resolveExit!: (exit: AttachExit) => void;
    const exit = new Promise<AttachExit>((resolve) => (resolveExit = resolve));
    const raw = io.tty && io.stdin && process.stdin.isTTY;
    const cleanups: Array<() => void> = [];
    const done = (result: AttachExit) => {
      if (ended) return;
      ended = true;
      for (const cleanup of cleanups.splice(0)) cleanup();
      resolveExit(result);
    };
    let conn: Connection;
    const outputs = { [MonitorMessage.stdout]: process.stdout, [MonitorMessage.stderr]: process.stderr } as const;
    const start = () => {
      if (io.stdin) {
        if (raw) {
          process.stdin.setRawMode(true);
          cleanups.push(() => process.stdin.setRawMode(false));
        }
        const onData = (chunk: Buffer) => {
          if (!conn.sendData(MonitorMessage.stdin, 1, chunk)) {
            process.stdin.pause();
            conn.socket.once('drain', () => process.stdin.resume());
          }
        };
        const onEnd = () => conn.send(MonitorMessage.stdinClose, {});
        process.stdin.on('data', onData);
        process.stdin.once('end', onEnd);
        cleanups.push(() => {
          process.stdin.off('data', onData);
          process.stdin.off('end', onEnd);
          process.stdin.pause();
        });
      }
      if (io.tty && process.stdout.isTTY) {
        const onResize = () => conn.send(MonitorMessage.resize, { rows: process.stdout.rows || 24, cols: process.stdout.columns || 80 });
        process.stdout.on('resize', onResize);
        cleanups.push(() => process.stdout.off('resize', onResize));
        onResize();
      }
      const forward = (signal: number) => conn.send(MonitorMessage.signal, { signal });
      for (const name of SIGNALS) {
        const handler = () => io.signal(name, forward);
        process.on(name, handler);
        cleanups.push(() => process.off(name, handler));
      }
      for (const out of Object.values(outputs)) {
        const onError = (err: NodeJS.ErrnoException) => {
          if (err.code === 'EPIPE') io.outputClosed();
        };
        out.on('error', onError);
        cleanups.push(() => out.off('error', onError));
      }
    };
    open(socketPath, req, {
      control: (type, body) => {
        if (!replied) {
          replied = true;
          if (type === MonitorMessage.error) {
            done({ code: Number(body.code) || 1, error: String(body.message) });
            conn.socket.destroy();
            rejectAttachment(new MonitorError(String(body.message), Number(body.code) || 1));
            return;
          }
          start();
          resolveAttachment({ reply: body, exit, detach: () => conn.send(MonitorMessage.detach, {}) });
          return;
        }
        if (type === MonitorMessage.exit) done({ code: Number(body.code), ...(typeof body.error === 'string' ? { error: body.error } : {}) });
      },
      data: (frame) => {
        const out = outputs[frame.type as keyof typeof outputs];
        if (!out) return;
        if (!out.write(frame.payload)) {
          conn.socket.pause();
          out.once('drain', () => conn.socket.resume());
        }
      },
      closed: () => {
        if (!replied) rejectAttachment(new NoMonitorError('the pod\'s monitor ended before it answered'));
        done({ code: 251, error: 'the pod\'s monitor went away' });
      },
    }).then((c) => (conn = c), rejectAttachment);
  });
}
