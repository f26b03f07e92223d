import test from 'ava';
import { randomBytes } from 'node:crypto';
import { decodeUtf8, encodeUtf8 } from '../../guest-agent/utf8.js';

// The agent's UTF-8 (QuickJS has no Buffer or TextEncoder) must agree with Node's on everything, ill-formed input included.

test('encoding agrees with Buffer, lone surrogates and astral characters included', (t) => {
  for (const text of ['', 'plain', 'grüße', '€', '😀 and 𝄞', '\ud800', 'a\udc00b', '\ud83d', '\u0000\u007f\u0080\u07ff\u0800\uffff']) {
    t.deepEqual(Buffer.from(encodeUtf8(text)), Buffer.from(text, 'utf8'), JSON.stringify(text));
  }
});

test('decoding agrees with Buffer on valid, truncated, overlong and random bytes', (t) => {
  const cases = [
    [0xf0, 0x9f, 0x98, 0x80], [0xf0, 0x9f, 0x98], [0xe2, 0x82], [0xc0, 0x80], [0xe0, 0x80, 0x80], [0xed, 0xa0, 0x80],
    [0xf4, 0x90, 0x80, 0x80], [0xf8, 0x88, 0x80, 0x80, 0x80], [0xff], [0x80, 0x41], [0xe2, 0x41, 0x82, 0xac],
  ].map((bytes) => Buffer.from(bytes));
  for (let i = 0; i < 300; i++) cases.push(randomBytes(1 + (i % 40)));
  cases.push(Buffer.from('x'.repeat(100_000) + '😀'));
  for (const bytes of cases) t.is(decodeUtf8(bytes), bytes.toString('utf8'), bytes.toString('hex').slice(0, 40));
});
