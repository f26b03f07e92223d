import test from 'ava';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileBackend } from '../../vmm/devices/block/backend.js';
import { BlockDevice } from '../../vmm/devices/block/device.js';
import { DeviceStatus as S, DescFlag } from '../../vmm/virtio/spec.js';
import { TestDriver } from './driver.js';

const dir = mkdtempSync(join(tmpdir(), 'vmctr-blk-'));
let n = 0;

function disk(readOnly: boolean) {
  const path = join(dir, `disk${n++}.img`);
  const content = Buffer.alloc(8 * 512);
  for (let i = 0; i < content.length; i++) content[i] = (i * 7) & 0xff;
  writeFileSync(path, content);
  const backend = FileBackend.open(path, { readOnly });
  const d = new TestDriver(new BlockDevice(backend, 'vmctr-test-disk'));
  d.negotiate();
  d.setupQueue(0, 16);
  d.driverOk();
  return { d, path, content, backend };
}

/** Builds header + data + status as three descriptors and submits them. */
function request(d: TestDriver, type: number, sector: number, data: { len: number; fill?: Buffer; deviceWrites: boolean } | undefined) {
  const hdr = d.buffer(16);
  d.mem.writeU32(hdr, type);
  d.mem.writeU64(hdr + 8, BigInt(sector));
  const status = d.buffer(1);
  d.mem.writeU8(status, 0xff);
  let i = 0;
  d.writeDesc(0, i, { addr: hdr, len: 16, flags: DescFlag.NEXT, next: i + 1 }); i++;
  let dataAddr = 0;
  if (data) {
    dataAddr = d.buffer(data.len, data.fill);
    d.writeDesc(0, i, { addr: dataAddr, len: data.len, flags: DescFlag.NEXT | (data.deviceWrites ? DescFlag.WRITE : 0), next: i + 1 }); i++;
  }
  d.writeDesc(0, i, { addr: status, len: 1, flags: DescFlag.WRITE });
  d.offer(0, 0);
  const used = d.usedElem(0, d.usedIdx(0) - 1);
  return { status: d.mem.readU8(status), usedLen: used.len, data: data ? Buffer.from(d.mem.read(dataAddr, data.len)) : Buffer.alloc(0) };
}

test('read: sectors come from the file, used length counts data and status', (t) => {
  const { d, content } = disk(true);
  const r = request(d, 0, 2, { len: 1024, deviceWrites: true });
  t.is(r.status, 0);
  t.is(r.usedLen, 1025);
  t.deepEqual(r.data, content.subarray(1024, 2048));
  d.close();
});

test('write and flush on a read-write disk reach the file', (t) => {
  const { d, path } = disk(false);
  const payload = Buffer.alloc(512, 0x5a);
  t.is(request(d, 1, 3, { len: 512, fill: payload, deviceWrites: false }).status, 0);
  t.is(request(d, 4, 0, undefined).status, 0);
  t.deepEqual(readFileSync(path).subarray(1536, 2048), payload);
  d.close();
});

test('a write to a read-only disk fails with IOERR and changes nothing', (t) => {
  const { d, path, content } = disk(true);
  t.is(request(d, 1, 0, { len: 512, fill: Buffer.alloc(512, 1), deviceWrites: false }).status, 1);
  t.deepEqual(readFileSync(path), content);
  d.close();
});

test('reads beyond the end and partial sectors fail with IOERR', (t) => {
  const { d } = disk(true);
  t.is(request(d, 0, 7, { len: 1024, deviceWrites: true }).status, 1);
  t.is(request(d, 0, 2 ** 60, { len: 512, deviceWrites: true }).status, 1);
  t.is(request(d, 0, 0, { len: 100, deviceWrites: true }).status, 1);
  d.close();
});

test('GET_ID returns the serial; unknown request types are UNSUPP', (t) => {
  const { d } = disk(true);
  const id = request(d, 8, 0, { len: 20, deviceWrites: true });
  t.is(id.status, 0);
  t.is(id.data.toString().replace(/\0+$/, ''), 'vmctr-test-disk');
  t.is(request(d, 99, 0, undefined).status, 2);
  d.close();
});

test('hostile: a request without a status byte breaks the device, not the VMM', (t) => {
  const { d } = disk(true);
  const hdr = d.buffer(16);
  d.writeDesc(0, 0, { addr: hdr, len: 16, flags: 0 });
  d.offer(0, 0);
  t.is(d.status & S.DEVICE_NEEDS_RESET, S.DEVICE_NEEDS_RESET);
  t.regex(d.errors[0]!, /no status byte/);
  d.close();
});

test('hostile: a short header breaks the device', (t) => {
  const { d } = disk(true);
  d.writeDesc(0, 0, { addr: d.buffer(8), len: 8, flags: DescFlag.NEXT, next: 1 });
  d.writeDesc(0, 1, { addr: d.buffer(1), len: 1, flags: DescFlag.WRITE });
  d.offer(0, 0);
  t.regex(d.errors[0] ?? '', /header needs 16/);
  d.close();
});
