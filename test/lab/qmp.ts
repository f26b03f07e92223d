/**
 * Just enough of QEMU's machine protocol (QMP, docs/interop/qmp-spec) to ask
 * a hung L1's emulator where its CPUs are: the greeting, capabilities
 * negotiation, then HMP commands through `human-monitor-command`.
 */
import { connect } from 'node:net';

/** Runs each HMP command in turn on the QMP socket at `path`; resolves with their outputs. */
export function hmpCommands(path: string, commands: string[], timeoutMs = 10_000): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const socket = connect(path);
    const outputs: string[] = [];
    let buffered = '';
    let greeted = false;
    const timer = setTimeout(() => finish(new Error(`QMP at ${path} did not answer within ${timeoutMs / 1000} s`)), timeoutMs);
    const finish = (err?: Error): void => {
      clearTimeout(timer);
      socket.destroy();
      if (err) reject(err);
      else resolve(outputs);
    };
    const send = (execute: string, args?: Record<string, unknown>): void => {
      socket.write(`${JSON.stringify(args ? { execute, arguments: args } : { execute })}\n`);
    };
    const next = (): void => {
      const command = commands[outputs.length];
      if (command === undefined) finish();
      else send('human-monitor-command', { 'command-line': command });
    };
    let negotiated = false;
    socket.on('data', (chunk: Buffer) => {
      buffered += chunk.toString('utf8');
      if (buffered.length > 16 * 1024 * 1024) return finish(new Error('QMP reply too large'));
      let newline: number;
      while ((newline = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, newline).trim();
        buffered = buffered.slice(newline + 1);
        if (!line) continue;
        let message: { QMP?: unknown; return?: unknown; error?: { desc?: string }; event?: string };
        try {
          message = JSON.parse(line) as typeof message;
        } catch {
          return finish(new Error(`QMP sent something that is not JSON: ${line.slice(0, 80)}`));
        }
        if (message.event !== undefined) continue;
        if (!greeted) {
          if (message.QMP === undefined) return finish(new Error('QMP sent no greeting'));
          greeted = true;
          send('qmp_capabilities');
        } else if (message.error) {
          return finish(new Error(`QMP: ${message.error.desc ?? 'error'}`));
        } else if (!negotiated) {
          negotiated = true;
          next();
        } else {
          outputs.push(typeof message.return === 'string' ? message.return : JSON.stringify(message.return));
          next();
        }
      }
    });
    socket.on('error', (err) => finish(new Error(`QMP at ${path}: ${err.message}`)));
    socket.on('close', () => finish(new Error(`QMP at ${path} closed before answering`)));
  });
}
