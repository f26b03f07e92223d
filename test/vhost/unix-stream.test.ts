import test from 'ava';
import { closeSync, readFileSync, readSync, readdirSync, writeSync } from 'node:fs';
import { native } from '../../vmm/kvm/native.js';
import { listenStream, type StreamPeer } from './stream-peer.js';

// The addon's Unix stream sockets, vhost-user's transport: fds passed with
// SCM_RIGHTS arrive as working, close-on-exec fds; fds beyond what the
// receiver takes are closed, not leaked; a peer that does not answer is
// EAGAIN after the timeout; EOF and a closed peer are plain results and
// errors; every argument is checked.

const O_CLOEXEC = 0o2000000;
const openFds = (): number => readdirSync('/proc/self/fd').length;
const fdFlags = (fd: number): number => parseInt(/^flags:\s+([0-7]+)$/m.exec(readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'))![1]!, 8);

async function connected(t: { teardown(fn: () => unknown): void }, timeoutMs = 2000): Promise<{ peer: StreamPeer; client: number; server: number }> {
  const peer = await listenStream();
  const client = native.unixStreamConnect(peer.path, timeoutMs);
  const server = await peer.accept();
  t.teardown(async () => {
    closeSync(client);
    await peer.close();
  });
  return { peer, client, server };
}

test('a memfd and an eventfd passed either way arrive as new close-on-exec fds to the same objects', async (t) => {
  const { client, server } = await connected(t);
  t.true((fdFlags(client) & O_CLOEXEC) !== 0, 'the socket itself is close-on-exec');

  const memory = native.createGuestMemory(4096, 'vmctr-test', true);
  t.teardown(() => closeSync(memory.fd));
  native.sendWithFds(client, Uint8Array.of(1, 2, 3), [memory.fd]);
  const fromClient = native.recvWithFds(server, 16, 4);
  t.deepEqual([...fromClient.bytes], [1, 2, 3]);
  t.is(fromClient.fds.length, 1);
  const [memfd] = fromClient.fds as [number];
  t.not(memfd, memory.fd);
  t.true((fdFlags(memfd) & O_CLOEXEC) !== 0);
  writeSync(memfd, Buffer.from('shared'), 0, 6, 100);
  t.is(Buffer.from(memory.buffer, 100, 6).toString(), 'shared');
  closeSync(memfd);

  const event = native.createEventFd();
  t.teardown(() => closeSync(event));
  native.sendWithFds(server, Uint8Array.of(9), [event]);
  const fromServer = native.recvWithFds(client, 16, 1);
  t.deepEqual([...fromServer.bytes], [9]);
  const [received] = fromServer.fds as [number];
  native.writeEventFd(received, 5);
  closeSync(received);
  const count = Buffer.alloc(8);
  readSync(event, count);
  t.is(count.readBigUInt64LE(0), 5n);
});

test('fds beyond maxFds are closed, never left open', async (t) => {
  const { client, server } = await connected(t);
  const events = [native.createEventFd(), native.createEventFd(), native.createEventFd()];
  t.teardown(() => events.forEach((fd) => closeSync(fd)));
  for (const maxFds of [1, 0]) {
    native.sendWithFds(client, Uint8Array.of(maxFds), events);
    const before = openFds();
    const { bytes, fds } = native.recvWithFds(server, 16, maxFds);
    t.deepEqual([...bytes], [maxFds]);
    t.is(fds.length, maxFds);
    t.is(openFds(), before + maxFds, `maxFds ${maxFds}: only the kept fds are open`);
    fds.forEach((fd) => closeSync(fd));
  }
});

test('a receive takes at most maxBytes of the stream; the rest stays for the next', async (t) => {
  const { client, server } = await connected(t);
  const data = Uint8Array.from({ length: 20 }, (_, i) => i);
  native.sendWithFds(client, data, []);
  t.deepEqual([...native.recvWithFds(server, 12, 0).bytes], [...data.subarray(0, 12)]);
  t.deepEqual([...native.recvWithFds(server, 100, 0).bytes], [...data.subarray(12)]);
});

test('a receive waiting longer than the timeout fails with EAGAIN', async (t) => {
  const { client } = await connected(t, 100);
  const started = performance.now();
  const error = t.throws(() => native.recvWithFds(client, 12, 0), { message: /^recvmsg failed: EAGAIN/ });
  t.is((error as NodeJS.ErrnoException).code, 'EAGAIN');
  const waited = performance.now() - started;
  t.true(waited >= 90 && waited < 2000, `waited ${waited} ms`);
});

test('EOF is a zero-length buffer; sending to a closed peer is EPIPE, not SIGPIPE', async (t) => {
  const { peer, client } = await connected(t);
  await peer.hangUp();
  const { bytes, fds } = native.recvWithFds(client, 12, 4);
  t.is(bytes.length, 0);
  t.deepEqual(fds, []);
  t.throws(() => native.sendWithFds(client, Uint8Array.of(1), []), { code: 'EPIPE' } as never);
});

test('connecting where nothing listens fails with the errno code', (t) => {
  t.throws(() => native.unixStreamConnect('/nonexistent/vmctr.sock', 100), { code: 'ENOENT', message: /^connect failed: ENOENT/ } as never);
});

test('arguments are checked', async (t) => {
  const { peer, client } = await connected(t);
  const data = Uint8Array.of(1);
  const bad = (f: () => unknown, instanceOf: typeof TypeError | typeof RangeError, what: string) => t.throws(f, { instanceOf }, what);
  bad(() => native.unixStreamConnect(7 as unknown as string, 100), TypeError, 'path not a string');
  bad(() => native.unixStreamConnect('', 100), RangeError, 'empty path');
  bad(() => native.unixStreamConnect(`/${'x'.repeat(120)}`, 100), RangeError, 'path too long');
  for (const ms of [0, -1, 1.5, 600001]) bad(() => native.unixStreamConnect(peer.path, ms), RangeError, `timeout ${ms}`);
  bad(() => native.sendWithFds(client, 'abc' as unknown as Uint8Array, []), TypeError, 'data a string');
  bad(() => native.sendWithFds(client, new Uint16Array(2) as unknown as Uint8Array, []), TypeError, 'data not bytes');
  bad(() => native.sendWithFds(client, new Uint8Array(0), []), RangeError, 'no data');
  bad(() => native.sendWithFds(client, data, new Array<number>(17).fill(0)), RangeError, '17 fds');
  bad(() => native.sendWithFds(client, data, [-1]), RangeError, 'negative fd');
  bad(() => native.sendWithFds(client, data, ['0' as unknown as number]), TypeError, 'fd a string');
  bad(() => native.sendWithFds(-1, data, []), RangeError, 'negative socket fd');
  bad(() => native.recvWithFds(client, 0, 0), RangeError, 'maxBytes 0');
  bad(() => native.recvWithFds(client, 2 ** 20 + 1, 0), RangeError, 'maxBytes too large');
  bad(() => native.recvWithFds(client, 16, 17), RangeError, 'maxFds 17');
  bad(() => native.recvWithFds(client, 16, -1), RangeError, 'maxFds -1');
});
