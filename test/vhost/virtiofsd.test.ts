import test, { type ExecutionContext } from 'ava';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, existsSync, mkdirSync, mkdtempSync, readSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { native } from '../../vmm/kvm/native.js';
import { GuestMemory } from '../../vmm/memory/guest-memory.js';
import { VhostUserFrontend, type QueueSetup } from '../../vmm/vhost/vhost-user.js';
import { F_PROTOCOL_FEATURES, ProtocolFeature } from '../../vmm/vhost/vhost-user-message.js';
import { DescFlag, Feature, featureBit } from '../../vmm/virtio/spec.js';

// The front-end against the real back-end, QEMU's virtiofsd (Debian's
// qemu-system-common): the negotiation, the memory table and both virtio-fs
// queues (0 hiprio, 1 requests) set up in shared guest memory, a FUSE_INIT
// request served from that memory and completed through the call eventfd,
// the rings stopped with their bases; a virtiofsd that stops answering or
// is killed mid-session is a one-line error, not a hang.

const VIRTIOFSD = '/usr/lib/qemu/virtiofsd';
const VERSION_1 = featureBit(Feature.VERSION_1);
const MQ = featureBit(ProtocolFeature.MQ);
const REPLY_ACK = featureBit(ProtocolFeature.REPLY_ACK);
const QUEUE_SIZE = 16;
const RAM_SIZE = 1 << 20;

/** linux/fuse.h. */
const FUSE_INIT = 26;
const FUSE_KERNEL_VERSION = 7;
const FUSE_KERNEL_MINOR_VERSION = 36;
const IN_HEADER_SIZE = 40;
const INIT_IN_SIZE = 64;
const OUT_HEADER_SIZE = 16;
const INIT_OUT_SIZE = 64;

/** Queue `index`'s rings, one 16 KiB block each from 4 KiB. */
const rings = (index: number) => ({ desc: 0x1000 + index * 0x4000, avail: 0x2000 + index * 0x4000, used: 0x3000 + index * 0x4000 });
const REQUEST_BUFFER = 0x10000;
const REPLY_BUFFER = 0x11000;

interface Backend {
  process: ChildProcess;
  frontend: VhostUserFrontend;
  exited: Promise<number | null>;
}

const missing = (t: ExecutionContext): boolean => {
  if (existsSync(VIRTIOFSD)) return false;
  t.log(`${VIRTIOFSD} is missing (apt-get install qemu-system-common): not run`);
  t.pass();
  return true;
};

/** Starts virtiofsd on a socket of its own, sharing a directory with a file, and connects to it. */
async function startVirtiofsd(t: ExecutionContext, timeoutMs = 2000): Promise<Backend> {
  const dir = mkdtempSync(join(tmpdir(), 'vmctr-virtiofsd-'));
  const source = join(dir, 'shared');
  mkdirSync(source);
  writeFileSync(join(source, 'hello'), 'hello\n');
  const socketPath = join(dir, 'sock');
  const child = spawn(VIRTIOFSD, [`--socket-path=${socketPath}`, '-o', `source=${source}`, '-o', 'cache=none', '-o', 'sandbox=chroot'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = once(child, 'exit').then(([code]) => code as number | null);
  let frontend: VhostUserFrontend | undefined;
  t.teardown(async () => {
    frontend?.close();
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
    rmSync(dir, { recursive: true, force: true });
    // virtiofsd's lock file for the socket, named after its path.
    rmSync(`/run/virtiofsd/${socketPath.replaceAll('/', '.')}.pid`, { force: true });
  });
  // The socket is there once bound, and connectable once listening.
  for (const deadline = Date.now() + 5000; !frontend; await sleep(20)) {
    if (child.exitCode !== null) throw new Error(`virtiofsd exited with ${child.exitCode}: ${stderr}`);
    try {
      frontend = VhostUserFrontend.connect(socketPath, { timeoutMs });
    } catch (e) {
      if (Date.now() > deadline) throw new Error(`virtiofsd did not listen: ${(e as Error).message}\n${stderr}`);
    }
  }
  return { process: child, frontend, exited };
}

/** SET_OWNER to SET_MEM_TABLE, as a device would: returns the shared RAM. */
function negotiate(t: ExecutionContext, frontend: VhostUserFrontend): GuestMemory {
  frontend.setOwner();
  const features = frontend.getFeatures();
  t.log(`virtiofsd offers features 0x${features.toString(16)}`);
  t.true((features & VERSION_1) !== 0n, 'VERSION_1');
  t.true((features & featureBit(F_PROTOCOL_FEATURES)) !== 0n, 'F_PROTOCOL_FEATURES');
  const protocol = frontend.getProtocolFeatures();
  t.log(`virtiofsd offers protocol features 0x${protocol.toString(16)}`);
  t.is(frontend.negotiateProtocolFeatures(), protocol & (MQ | REPLY_ACK));
  t.true(frontend.getQueueNum() >= 2, 'hiprio and one request queue');
  frontend.setFeatures(VERSION_1);
  const mem = GuestMemory.allocate([{ base: 0, size: RAM_SIZE }], { shared: true });
  t.teardown(() => mem.close());
  frontend.setMemTable(mem);
  return mem;
}

function eventFds(t: ExecutionContext, n: number): number[] {
  const fds = Array.from({ length: n }, () => native.createEventFd());
  t.teardown(() => fds.forEach((fd) => closeSync(fd)));
  return fds;
}

/** Whether `fd` was signalled within `ms` (the count is drained). */
function signalled(fd: number, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      watcher.close();
      resolve(false);
    }, ms);
    const watcher = new native.EventFdWatcher(fd, () => {
      clearTimeout(timer);
      watcher.close();
      resolve(true);
    });
  });
}

/** Clears an eventfd's count (it is non-blocking: EAGAIN when already zero). */
function drain(fd: number): void {
  try {
    readSync(fd, Buffer.alloc(8));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EAGAIN') throw e;
  }
}

/** FUSE_INIT as the guest's driver would post it: the request readable, then a writable buffer for the reply. */
function postFuseInit(mem: GuestMemory, queue: QueueSetup, unique: bigint): void {
  mem.writeU32(REQUEST_BUFFER, IN_HEADER_SIZE + INIT_IN_SIZE); // fuse_in_header.len
  mem.writeU32(REQUEST_BUFFER + 4, FUSE_INIT);
  mem.writeU64(REQUEST_BUFFER + 8, unique);
  mem.writeU32(REQUEST_BUFFER + IN_HEADER_SIZE, FUSE_KERNEL_VERSION); // fuse_init_in.major
  mem.writeU32(REQUEST_BUFFER + IN_HEADER_SIZE + 4, FUSE_KERNEL_MINOR_VERSION);
  mem.writeU32(REQUEST_BUFFER + IN_HEADER_SIZE + 8, 0x20000); // max_readahead
  const descriptor = (i: number, addr: number, len: number, flags: number, next: number) => {
    mem.writeU64(queue.desc + 16 * i, BigInt(addr));
    mem.writeU32(queue.desc + 16 * i + 8, len);
    mem.writeU16(queue.desc + 16 * i + 12, flags);
    mem.writeU16(queue.desc + 16 * i + 14, next);
  };
  descriptor(0, REQUEST_BUFFER, IN_HEADER_SIZE + INIT_IN_SIZE, DescFlag.NEXT, 1);
  descriptor(1, REPLY_BUFFER, 4096, DescFlag.WRITE, 0);
  mem.writeU16(queue.avail + 4, 0); // ring[0]: the chain's head
  mem.writeU16(queue.avail + 2, 1); // idx
}

test('virtiofsd serves FUSE_INIT from shared guest memory on the request queue; GET_VRING_BASE stops each queue where it got to', async (t) => {
  if (missing(t)) return;
  const { frontend, exited } = await startVirtiofsd(t);
  const mem = negotiate(t, frontend);
  const kick = eventFds(t, 2);
  const call = eventFds(t, 2);
  const queues = [0, 1].map((i): QueueSetup => ({ size: QUEUE_SIZE, ...rings(i), kickFd: kick[i]!, callFd: call[i]! }));
  queues.forEach((q, i) => frontend.startQueue(i, q, mem));
  t.is(frontend.stopQueue(0), 0, 'hiprio: nothing taken');

  // libvhost-user signals each call eventfd once as it is set ("in case of I/O hang after reconnecting").
  drain(call[1]!);
  const unique = 0x1234n;
  postFuseInit(mem, queues[1]!, unique);
  native.writeEventFd(kick[1]!);
  t.true(await signalled(call[1]!, 5000), 'the call eventfd is signalled');

  const used = queues[1]!.used;
  t.is(mem.readU16(used + 2), 1, 'one used entry');
  t.is(mem.readU32(used + 4), 0, 'for the chain at descriptor 0');
  t.is(mem.readU32(used + 8), OUT_HEADER_SIZE + INIT_OUT_SIZE, 'bytes written');
  const out = new DataView(mem.regions[0]!.buffer, REPLY_BUFFER);
  t.deepEqual({ len: out.getUint32(0, true), error: out.getInt32(4, true), unique: out.getBigUint64(8, true) }, { len: OUT_HEADER_SIZE + INIT_OUT_SIZE, error: 0, unique });
  const major = out.getUint32(OUT_HEADER_SIZE, true);
  const minor = out.getUint32(OUT_HEADER_SIZE + 4, true);
  const maxWrite = out.getUint32(OUT_HEADER_SIZE + 20, true);
  t.log(`FUSE_INIT answered: ${major}.${minor}, max_write ${maxWrite}`);
  t.is(major, FUSE_KERNEL_VERSION);
  t.true(minor >= 31 && minor <= FUSE_KERNEL_MINOR_VERSION, `minor ${minor}`);
  t.true(maxWrite > 0);

  t.is(frontend.stopQueue(1), 1, 'requests: one taken');
  frontend.close();
  t.is(await exited, 0, 'virtiofsd ends with its connection');
});

test('a virtiofsd that stops answering is a timeout, one killed mid-session a one-line error, and neither a hang', async (t) => {
  if (missing(t)) return;
  const stopped = await startVirtiofsd(t, 300);
  negotiate(t, stopped.frontend);
  stopped.process.kill('SIGSTOP');
  const started = Date.now();
  t.throws(() => stopped.frontend.setVringNum(0, QUEUE_SIZE), { message: 'vhost-user SET_VRING_NUM: the back-end did not respond within 300 ms' });
  t.true(Date.now() - started < 2000);

  const killed = await startVirtiofsd(t);
  const mem = negotiate(t, killed.frontend);
  const [kick, call] = eventFds(t, 2) as [number, number];
  killed.frontend.startQueue(1, { size: QUEUE_SIZE, ...rings(1), kickFd: kick, callFd: call }, mem);
  killed.process.kill('SIGKILL');
  await killed.exited;
  const error = t.throws(() => killed.frontend.stopQueue(1), {
    message: /^vhost-user SET_VRING_ENABLE: (sendmsg failed: (EPIPE|ECONNRESET)|recvmsg failed: ECONNRESET|the back-end closed the connection)/,
  });
  t.log(error?.message);
  t.false(error?.message.includes('\n'));
  t.throws(() => killed.frontend.getVringBase(1), { message: /^vhost-user GET_VRING_BASE: the connection failed earlier/ });
});
