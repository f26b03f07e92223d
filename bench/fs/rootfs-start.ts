// bench/fs's second half: a pod's root filesystem over virtio-fs
// (`--rootfs fs`, the host directory served read-only by the pod's
// virtiofsd) against a read-only disk (`--rootfs block`), timed as a user
// meets them: `vmctr run --rm` of a short command, from the command to its
// exit, on the host. The images: the built-in default one (busybox, whose
// disk is built once at set-up, so block pays nothing before the boot); a
// directory holding Node and its libraries, a typical image's size, for
// which block builds the pod's disk on each run and fs builds nothing but
// every file the command opens crosses virtio-fs; and the same files as an
// image in the store, whose disk block builds once per image (before the
// rounds) and fs serves from its snapshot. Modes alternate from round to
// round; medians.
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { OciLayout, sha256 } from '../../test/image/image-builder.js';
import type { RootfsMode } from '../../pod/rootfs-source.js';
import { median, roundsTable } from '../report.js';
import { dumpDefaultImage } from '../oci-bundle.js';

const ROOTFS_MODES: readonly RootfsMode[] = ['block', 'fs'];

/** Where the Node image has node, as the official node images do. */
const NODE_IN_IMAGE = '/usr/local/bin/node';
/** Guest memory for every start: Node's page cache fits with room. */
export const ROOTFS_MEMORY_MIB = 512;

export const ROOTFS_CASES = [
  { key: 'default', label: 'default image, `true`', plot: 'default image\ntrue', command: ['true'] },
  { key: 'node', label: 'Node image (a directory), `node -e 0`', plot: 'Node directory\nnode -e 0', command: [NODE_IN_IMAGE, '-e', '0'] },
  { key: 'nodeStore', label: 'Node image (in the store), `node -e 0`', plot: 'Node store image\nnode -e 0', command: [NODE_IN_IMAGE, '-e', '0'] },
] as const;
/** The Node image's name in the store. */
export const NODE_STORE_IMAGE = 'vmctr-bench/node:fs';
export type RootfsCase = (typeof ROOTFS_CASES)[number]['key'];

export interface RootfsMeasurement {
  /** The Node image's size on the host (du -sk), KiB. */
  nodeImageKiB: number;
  /** Milliseconds from `vmctr run --rm` to its exit, per mode, per case, per round. */
  ms: Record<RootfsMode, Record<RootfsCase, number[]>>;
}

/** The Node image in `dir` (created): the default image's files, Node at NODE_IN_IMAGE and the shared libraries it loads, where it loads them. */
export async function makeNodeImage(dir: string): Promise<number> {
  await dumpDefaultImage(dir);
  const node = process.execPath;
  const place = (from: string, to: string) => {
    mkdirSync(join(dir, dirname(to)), { recursive: true });
    copyFileSync(from, join(dir, to));
  };
  place(node, NODE_IN_IMAGE);
  // "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)" and "/lib64/ld-linux-x86-64.so.2 (0x...)"
  for (const line of execFileSync('ldd', [node], { encoding: 'utf8' }).split('\n')) {
    const path = /(?:=> )?(\/\S+) \(0x[0-9a-f]+\)/.exec(line)?.[1];
    if (path) place(path, path);
  }
  return Number(execFileSync('du', ['-sk', dir], { encoding: 'utf8' }).split('\t')[0]);
}

/** `directory` as a one-layer image in an OCI layout at `layout`, for `vmctr load`. */
export async function layoutOf(directory: string, layout: string): Promise<void> {
  const tar = execFileSync('tar', ['-C', directory, '--numeric-owner', '-cf', '-', '.'], { maxBuffer: 1 << 30 });
  const oci = new OciLayout(layout);
  const config = await oci.blob(JSON.stringify({
    architecture: 'amd64',
    os: 'linux',
    config: { Cmd: ['/bin/sh'], Env: ['PATH=/usr/local/bin:/usr/bin:/bin'] },
    rootfs: { type: 'layers', diff_ids: [sha256(tar)] },
  }), 'application/vnd.oci.image.config.v1+json');
  const layer = await oci.blob(tar, 'application/vnd.oci.image.layer.v1.tar');
  const manifest = await oci.blob(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config, layers: [layer] }), 'application/vnd.oci.image.manifest.v1+json');
  await oci.tag(manifest, 'node');
}

/**
 * `rounds` rounds of both modes on every image, the order of the modes
 * alternating; `run` runs one `vmctr run` argv (after `run`) to its exit.
 */
export function measureRootfs(rounds: number, nodeImage: string, nodeImageKiB: number, run: (args: string[]) => void, log: (line: string) => void): RootfsMeasurement {
  const ms = Object.fromEntries(ROOTFS_MODES.map((m) => [m, Object.fromEntries(ROOTFS_CASES.map((c) => [c.key, [] as number[]]))])) as RootfsMeasurement['ms'];
  for (let i = 0; i < rounds; i++) {
    const order = i % 2 === 0 ? ROOTFS_MODES : [...ROOTFS_MODES].reverse();
    for (const mode of order) {
      for (const c of ROOTFS_CASES) {
        const image = c.key === 'default' ? 'default' : c.key === 'node' ? nodeImage : NODE_STORE_IMAGE;
        const t0 = performance.now();
        run(['--rm', '--memory', String(ROOTFS_MEMORY_MIB), '--rootfs', mode, image, '--', ...c.command]);
        ms[mode][c.key].push(performance.now() - t0);
      }
      log(`rootfs round ${i + 1}/${rounds} ${mode}: ${ROOTFS_CASES.map((c) => `${c.key} ${(ms[mode][c.key].at(-1)! / 1000).toFixed(2)} s`).join(', ')}`);
    }
  }
  return { nodeImageKiB, ms };
}

/** The report's section on root filesystems: medians, fs / block, and every round. */
export function rootfsReport(r: RootfsMeasurement, rounds: number): string[] {
  const med = (mode: RootfsMode, c: RootfsCase) => median(r.ms[mode][c]) / 1000;
  return [
    '## Root filesystem: `--rootfs fs` against `--rootfs block`',
    '',
    `Each round, for each mode in turn (alternating order from round to round), \`vmctr run --rm --memory ${ROOTFS_MEMORY_MIB} --rootfs MODE IMAGE -- COMMAND\`, timed on the host from the command to its exit (the pod's whole life: its virtiofsd, for fs, or its disk, for block, the boot, the command, the shutdown), ${rounds} rounds. Images: the built-in **default** image (busybox; its disk was built at set-up, so block builds nothing before the boot; fs copies its files out of the disk once, before the first round); a **Node image**, a directory of ${(r.nodeImageKiB / 1024).toFixed(0)} MiB (the default image's files, Node at ${NODE_IN_IMAGE} and the libraries it loads), for which block builds the pod's disk (mke2fs -d) on every run, as \`vmctr run DIR\` does, and fs serves the directory as it is; and the same files **in the store** (\`vmctr load\` of a one-layer OCI layout), whose disk block builds once per image, before the first round, and fs serves from the image's snapshot. \`node -e 0\` reads Node's binary (about 120 MB) through the pod's root filesystem.`,
    '',
    '| image, command | block (s) | fs (s) | fs / block |',
    '| --- | ---: | ---: | ---: |',
    ...ROOTFS_CASES.map((c) => `| ${c.label} | ${med('block', c.key).toFixed(2)} | ${med('fs', c.key).toFixed(2)} | ${(med('fs', c.key) / med('block', c.key)).toFixed(3)} |`),
    '',
    'Below 1, fs starts and runs the command faster than block by that factor.',
    '',
    ...ROOTFS_CASES.flatMap((c) => [roundsTable(ROOTFS_MODES.map((m) => ({ name: m, values: r.ms[m][c.key].map((v) => v / 1000) })), `s, ${c.label}`, 2), '']),
  ];
}
