// Pull + unpack time of one multi-layer image from a local registry:
// `vmctr pull` against `skopeo copy` followed by `umoci unpack`, alternating,
// several rounds. Writes bench/results/pull.md and bench/results/pull.png.
import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { busyboxEntries, layerOf, OciLayout, push, type Layer, type TarEntry } from '../../test/image/image-builder.js';
import { startRegistry } from '../../test/image/registry-server.js';
import { VMCTR } from '../../test/image/vmctr-process.js';
import { RESULTS_DIR, median, plotRounds, roundsTable, type Series } from '../report.js';

const run = promisify(execFile);
const ROUNDS = Number(process.env.ROUNDS ?? 7);
const RESULTS = RESULTS_DIR;

// Source-tree-like content: compressible text of varied sizes, deterministic.
function textFiles(prefix: string, count: number, seed: number): TarEntry[] {
  const words = ['const', 'return', 'function', 'import', 'export', 'value', 'index', 'buffer', 'stream', 'layer', 'digest', 'vmctr'];
  const entries: TarEntry[] = [{ path: `${prefix}/`, type: 'dir' }];
  let state = seed;
  const next = () => (state = (state * 1103515245 + 12345) % 2 ** 31);
  for (let i = 0; i < count; i++) {
    const dir = `${prefix}/d${i % 40}`;
    if (i < 40) entries.push({ path: `${dir}/`, type: 'dir' });
    const lines = 10 + (next() % 300);
    let text = '';
    for (let l = 0; l < lines; l++) text += `${Array.from({ length: 8 }, () => words[next() % words.length]).join(' ')} ${next()}\n`;
    entries.push({ path: `${dir}/f${i}.txt`, content: text });
  }
  return entries;
}


async function timed(command: string, args: string[]): Promise<number> {
  const start = process.hrtime.bigint();
  await new Promise<void>((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`${command} ${args.join(' ')} failed: ${stderr}`))));
  });
  return Number(process.hrtime.bigint() - start) / 1e9;
}

const work = await mkdtemp(join(tmpdir(), 'vmctr-pull-bench-'));
const registry = await startRegistry(work);
try {
  const layers: Layer[] = [layerOf(await busyboxEntries())];
  for (let i = 0; i < 4; i++) layers.push(layerOf(textFiles(`src${i}`, 1500, i + 1)));
  layers.push(layerOf([{ path: 'data/', type: 'dir' }, { path: 'data/a.bin', content: randomBytes(16 << 20) }, { path: 'data/b.bin', content: randomBytes(8 << 20) }]));
  // All gzip: umoci 0.4 cannot unpack zstd layers.
  layers.push(layerOf(textFiles('src4', 1500, 99)));
  const layout = new OciLayout(join(work, 'layout'));
  await layout.tag(await layout.image({ layers }), 'bench');
  const ref = `${registry.host}/bench/image:1`;
  await push(layout, 'bench', ref);
  const compressed = layers.reduce((sum, layer) => sum + layer.blob.length, 0);
  const files = 8 + 5 * 1500 + 2;

  const vmctrTimes: number[] = [];
  const peerTimes: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    // Alternate which goes first, so neither always meets a colder cache.
    const order = round % 2 === 0 ? ['vmctr', 'peer'] : ['peer', 'vmctr'];
    for (const which of order) {
      const dir = await mkdtemp(join(work, `${which}-`));
      // Start each run with no dirty pages left by the previous one.
      await run('sync');
      if (which === 'vmctr') {
        vmctrTimes.push(await timed(VMCTR, ['pull', '-q', '--root', dir, '--insecure-registry', registry.host, ref]));
      } else {
        const skopeo = await timed('skopeo', ['copy', '--quiet', '--src-tls-verify=false', `docker://${ref}`, `oci:${join(dir, 'oci')}:bench`]);
        const umoci = await timed('umoci', ['unpack', ...(process.getuid?.() === 0 ? [] : ['--rootless']), '--image', `${join(dir, 'oci')}:bench`, join(dir, 'bundle')]);
        peerTimes.push(skopeo + umoci);
      }
      await rm(dir, { recursive: true, force: true });
    }
    process.stderr.write(`round ${round + 1}/${ROUNDS}: vmctr ${vmctrTimes.at(-1)!.toFixed(3)}s, skopeo+umoci ${peerTimes.at(-1)!.toFixed(3)}s\n`);
  }

  const vmctrMedian = median(vmctrTimes);
  const peerMedian = median(peerTimes);
  const versions = {
    node: process.version,
    skopeo: (await run('skopeo', ['--version'])).stdout.trim(),
    umoci: (await run('umoci', ['--version'])).stdout.trim(),
  };
  await mkdir(RESULTS, { recursive: true });
  const series: Series[] = [{ name: 'vmctr pull', values: vmctrTimes }, { name: 'skopeo copy + umoci unpack', values: peerTimes }];
  const markdown = [
    '# Pull + unpack from a local registry',
    '',
    `Image: ${layers.length} gzip layers, ${(compressed / 1e6).toFixed(1)} MB compressed, about ${files} files; registry: docker-registry on 127.0.0.1; ${ROUNDS} rounds, alternating order.`,
    `vmctr: \`vmctr pull\` (process start, fetch, verify, unpack). Peer: \`skopeo copy docker://… oci:…\` then \`umoci unpack\`. Wall-clock seconds.`,
    '',
    roundsTable(series, 's'),
    '',
    `Ratio vmctr / peer (medians): **${(vmctrMedian / peerMedian).toFixed(2)}**`,
    '',
    `Node ${versions.node}; ${versions.skopeo}; ${versions.umoci}.`,
    '',
  ].join('\n');
  await writeFile(join(RESULTS, 'pull.md'), markdown);

  await plotRounds(join(RESULTS, 'pull.png'), `Pull + unpack, ${layers.length}-layer image from a local registry (lower is better)`, 'seconds', series);
  process.stdout.write(markdown);
} finally {
  await registry.stop();
  await rm(work, { recursive: true, force: true });
}
