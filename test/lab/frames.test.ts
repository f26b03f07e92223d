import test from 'ava';
import { encodeFrame, FrameDecoder, type FrameHeader } from './frames.js';

test('frames survive any chunking, payloads byte-exact', (t) => {
  const sent: Array<[FrameHeader, Buffer]> = [
    [{ t: 'stdout', id: 1 }, Buffer.from('abc')],
    [{ t: 'exit', id: 1, code: 0, signal: null }, Buffer.alloc(0)],
    [{ t: 'stdin', id: 2 }, Buffer.from(Array.from({ length: 70_000 }, (_, i) => i % 256))],
  ];
  const wire = Buffer.concat(sent.map(([header, payload]) => encodeFrame(header, payload)));
  for (const size of [1, 7, 4096, wire.length]) {
    const decoder = new FrameDecoder();
    const received = [];
    for (let at = 0; at < wire.length; at += size) received.push(...decoder.push(wire.subarray(at, at + size)));
    t.deepEqual(received.map((frame) => frame.header), sent.map(([header]) => header), `chunks of ${size}`);
    received.forEach((frame, i) => t.true(frame.payload.equals(sent[i]![1]), `payload ${i}, chunks of ${size}`));
  }
});

test('a stream out of step is an error, not a giant allocation', (t) => {
  const garbage = Buffer.from('HTTP/1.1 200 OK\r\n');
  t.throws(() => new FrameDecoder().push(garbage), { message: /out of step/ });
});
