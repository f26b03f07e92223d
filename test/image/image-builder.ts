// Builds test images from scratch: tar layers with exactly the entries a test
// wants (including hostile ones), OCI layouts, docker-save archives.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { gzipSync, zstdCompressSync } from 'node:zlib';
import { Header } from 'tar';

export const run = promisify(execFile);

export type EntryType = 'file' | 'dir' | 'symlink' | 'link' | 'char' | 'fifo';

export interface TarEntry {
  readonly path: string;
  readonly type?: EntryType;
  readonly content?: string | Buffer;
  readonly mode?: number;
  readonly uid?: number;
  readonly gid?: number;
  readonly linkpath?: string;
  readonly mtime?: Date;
}

const TYPE_NAMES = { file: 'File', dir: 'Directory', symlink: 'SymbolicLink', link: 'Link', char: 'CharacterDevice', fifo: 'FIFO' } as const;

export function sha256(bytes: Uint8Array | string): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

/** A tar archive of exactly these entries, in this order. */
export function tarOf(entries: readonly TarEntry[]): Buffer {
  const blocks: Buffer[] = [];
  for (const entry of entries) {
    const type = entry.type ?? 'file';
    const content = type === 'file' ? Buffer.from(entry.content ?? '') : Buffer.alloc(0);
    const header = new Header({
      path: entry.path,
      type: TYPE_NAMES[type],
      mode: entry.mode ?? (type === 'dir' ? 0o755 : 0o644),
      uid: entry.uid ?? 0,
      gid: entry.gid ?? 0,
      size: content.length,
      mtime: entry.mtime ?? new Date('2024-01-02T03:04:05Z'),
      ...(entry.linkpath !== undefined ? { linkpath: entry.linkpath } : {}),
      ...(type === 'char' ? { devmaj: 1, devmin: 3 } : {}),
    });
    const block = Buffer.alloc(512);
    header.encode(block, 0);
    blocks.push(block, content, Buffer.alloc((512 - (content.length % 512)) % 512));
  }
  blocks.push(Buffer.alloc(1024));
  return Buffer.concat(blocks);
}

export type Compression = 'gzip' | 'zstd' | 'none';

export interface Layer {
  readonly blob: Buffer;
  readonly digest: string;
  readonly diffId: string;
  readonly mediaType: string;
}

export function layerOf(entries: readonly TarEntry[], compression: Compression = 'gzip'): Layer {
  const tar = tarOf(entries);
  const blob = compression === 'gzip' ? gzipSync(tar) : compression === 'zstd' ? zstdCompressSync(tar) : tar;
  const mediaType = `application/vnd.oci.image.layer.v1.tar${compression === 'none' ? '' : `+${compression}`}`;
  return { blob, digest: sha256(blob), diffId: sha256(tar), mediaType };
}

/** A tiny but runnable root filesystem: static busybox, a shell link, accounts. */
export async function busyboxEntries(): Promise<TarEntry[]> {
  const busybox = await readFile('/bin/busybox');
  return [
    { path: 'bin/', type: 'dir' },
    { path: 'bin/busybox', content: busybox, mode: 0o755 },
    { path: 'bin/sh', type: 'symlink', linkpath: 'busybox' },
    { path: 'bin/ls', type: 'link', linkpath: 'bin/busybox' },
    { path: 'etc/', type: 'dir' },
    { path: 'etc/passwd', content: 'root:x:0:0:root:/root:/bin/sh\nwww:x:33:33:www:/var/www:/bin/sh\n' },
    { path: 'etc/group', content: 'root:x:0:\nwww:x:33:\nstaff:x:50:www\n' },
    { path: 'tmp/', type: 'dir', mode: 0o1777 },
  ];
}

export interface ImageSpec {
  readonly layers: readonly Layer[];
  readonly architecture?: string;
  readonly variant?: string;
  readonly config?: Record<string, unknown>;
}

export interface Descriptor {
  readonly mediaType: string;
  readonly digest: string;
  readonly size: number;
  readonly platform?: { os: string; architecture: string; variant?: string };
  readonly annotations?: Record<string, string>;
}

/** An OCI image layout directory, written file by file. */
export class OciLayout {
  readonly #refs: Descriptor[] = [];

  constructor(readonly dir: string) {}

  async blob(bytes: Buffer | string, mediaType: string): Promise<Descriptor> {
    const data = Buffer.from(bytes);
    const digest = sha256(data);
    await mkdir(join(this.dir, 'blobs', 'sha256'), { recursive: true });
    await writeFile(join(this.dir, 'blobs', 'sha256', digest.slice(7)), data);
    return { mediaType, digest, size: data.length };
  }

  async image(spec: ImageSpec): Promise<Descriptor & { config: Descriptor }> {
    const architecture = spec.architecture ?? 'amd64';
    const config = await this.blob(JSON.stringify({
      architecture,
      os: 'linux',
      ...(spec.variant ? { variant: spec.variant } : {}),
      created: '2024-01-02T03:04:05Z',
      config: spec.config ?? { Cmd: ['/bin/sh'] },
      rootfs: { type: 'layers', diff_ids: spec.layers.map((layer) => layer.diffId) },
    }), 'application/vnd.oci.image.config.v1+json');
    const layers: Descriptor[] = [];
    for (const layer of spec.layers) layers.push(await this.blob(layer.blob, layer.mediaType));
    const manifest = await this.blob(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config, layers }), 'application/vnd.oci.image.manifest.v1+json');
    return { ...manifest, platform: { os: 'linux', architecture, ...(spec.variant ? { variant: spec.variant } : {}) }, config };
  }

  async index(manifests: readonly Descriptor[]): Promise<Descriptor> {
    return this.blob(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests }), 'application/vnd.oci.image.index.v1+json');
  }

  /** Names a manifest or index in index.json, as `oci:DIR:NAME` addresses it. */
  async tag(descriptor: Descriptor, name: string): Promise<void> {
    const { mediaType, digest, size } = descriptor;
    this.#refs.push({ mediaType, digest, size, annotations: { 'org.opencontainers.image.ref.name': name } });
    await writeFile(join(this.dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
    await writeFile(join(this.dir, 'index.json'), JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: this.#refs }));
  }
}

/**
 * Pushes `oci:DIR:NAME` to a plain-HTTP registry with skopeo: digests
 * unchanged, or converted to Docker schema 2 (manifest and manifest list) with `docker`.
 */
export async function push(layout: OciLayout, name: string, destination: string, options: { all?: boolean; creds?: string; docker?: boolean } = {}): Promise<void> {
  await run('skopeo', [
    'copy', '--quiet', '--dest-tls-verify=false', ...(options.docker ? ['--format', 'v2s2'] : ['--preserve-digests']),
    ...(options.all ? ['--all'] : []),
    ...(options.creds ? ['--dest-creds', options.creds] : []),
    `oci:${layout.dir}:${name}`, `docker://${destination}`,
  ]);
}
