import test from 'ava';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLayerDisk, parseSize } from '../../pod/layer-disk.js';

test('sizes: a count with an optional K, M, G or T (and iB), within 16M to 16T', (t) => {
  t.is(parseSize('10G'), 10 * 2 ** 30);
  t.is(parseSize('512m'), 512 * 2 ** 20);
  t.is(parseSize('1TiB'), 2 ** 40);
  t.is(parseSize('16777216'), 16 * 2 ** 20);
  for (const bad of ['', '10', '1M', '-5G', '1.5G', '10X', '17T', 'G']) t.throws(() => parseSize(bad), { message: /^expected a size such as 512M, 10G or 1T \(from 16M to 16T\), got/ }, bad);
});

test('a layer disk is an empty ext4 filesystem of the size asked, sparse on the host', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'vmctr-layer-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'layer.ext4');
  await createLayerDisk(path, 10 * 2 ** 30);
  const st = statSync(path);
  t.is(st.size, 10 * 2 ** 30);
  t.true(st.blocks * 512 < 64 * 2 ** 20, `${st.blocks * 512} bytes allocated`);
  const info = execFileSync('dumpe2fs', ['-h', path], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  t.regex(info, /^Filesystem volume name:\s+vmctr-layer$/m);
  t.regex(info, /^Reserved block count:\s+0$/m);
  t.notRegex(info, /has_journal/);
});

test('a layer that cannot be made is one line', async (t) => {
  const err = await t.throwsAsync(createLayerDisk('/proc/vmctr-no/layer.ext4', 2 ** 30));
  t.notRegex(err!.message, /\n/);
});
