/** The monitor checks every request: a client is any local user who can reach the socket. */
import test from 'ava';
import { parseRequest, RequestError } from '../../monitor/protocol.js';

test('well-formed requests parse to exactly what the monitor acts on', (t) => {
  t.deepEqual(parseRequest({ op: 'status' }), { op: 'status' });
  t.deepEqual(parseRequest({ op: 'attach', stdin: true, owner: 'yes' }), { op: 'attach', stdin: true, owner: false });
  t.deepEqual(parseRequest({ op: 'stop', timeoutSeconds: 0 }), { op: 'stop', timeoutSeconds: 0 });
  t.deepEqual(parseRequest({ op: 'exec', args: ['sh'], env: ['A=1'], cwd: '/srv', tty: { rows: 5, cols: 7 }, extra: 1 }), {
    op: 'exec', args: ['sh'], env: ['A=1'], stdin: false, cwd: '/srv', tty: { rows: 5, cols: 7 },
  });
});

test('bad requests are one-line RequestErrors naming the field', (t) => {
  const bad: Array<[Record<string, unknown>, RegExp]> = [
    [{ op: 'format-disk' }, /unknown op "format-disk"/],
    [{}, /unknown op/],
    [{ op: 'signal', signal: 0 }, /signal: expected a number from 1 to 64/],
    [{ op: 'signal', signal: 65 }, /signal/],
    [{ op: 'stop', timeoutSeconds: -1 }, /timeoutSeconds/],
    [{ op: 'stop', timeoutSeconds: 1.5 }, /timeoutSeconds/],
    [{ op: 'exec', args: [] }, /args: expected a command/],
    [{ op: 'exec', args: 'sh' }, /args: expected at most 2048 strings/],
    [{ op: 'exec', args: Array(2049).fill('x') }, /args: expected at most 2048/],
    [{ op: 'exec', args: ['a\0b'] }, /args: expected strings without NUL/],
    [{ op: 'exec', args: ['sh'], env: ['NOEQUALS'] }, /env: "NOEQUALS" is not valid/],
    [{ op: 'exec', args: ['sh'], cwd: 'relative' }, /cwd: expected an absolute path/],
    [{ op: 'exec', args: ['sh'], tty: { rows: 0, cols: 1 } }, /rows, cols/],
    [{ op: 'exec', args: ['sh'], user: '' }, /user: expected a non-empty string/],
    [{ op: 'exec', args: ['x'.repeat(70_000)] }, /args/],
  ];
  for (const [body, message] of bad) t.throws(() => parseRequest(body), { instanceOf: RequestError, message }, JSON.stringify(body).slice(0, 80));
});
