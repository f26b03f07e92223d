import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, readFile, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Readable } from 'node:stream';
import { extract } from 'tar';
import { ImageError } from './image-error.js';
import { ContentVerifier, digestOf, type Digest } from './digest.js';
import { removeAtExit } from './exit-cleanup.js';
import { collectGarbage } from './garbage.js';
import { parseImageConfig, type ImageConfig } from './image-config.js';
import { encodeManifest, MediaType, parseManifest, selectPlatform, type Descriptor, type ImageManifest } from './manifest.js';
import { Pin } from './pin.js';
import { DEFAULT_PLATFORM, formatPlatform, type Platform } from './platform.js';
import { quietProgress, type PullProgress } from './progress.js';
import { parseReference, repositoryName, type ImageReference } from './reference.js';
import { containedPath } from './root-path.js';
import { chainId, ensureSnapshot } from './snapshot.js';
import type { ImageRecord, ImageStore } from './store.js';

export interface LoadOptions {
  /** Names every loaded image, overriding (or supplying) the archive's names. */
  readonly tag?: ImageReference;
  readonly platform?: Platform;
  readonly progress?: PullProgress;
}

/** One image found in an archive, with the names it carries. */
interface Found {
  readonly manifestDigest: Digest;
  readonly topDigest: Digest;
  readonly manifest: ImageManifest;
  readonly config: ImageConfig;
  readonly names: readonly ImageReference[];
}

async function hashFile(path: string): Promise<{ digest: Digest; size: number }> {
  const hash = createHash('sha256');
  let size = 0;
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 }) as AsyncIterable<Buffer>) {
    hash.update(chunk);
    size += chunk.length;
  }
  return { digest: `sha256:${hash.digest('hex')}`, size };
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(() => true, () => false);
}

/**
 * Loads what `docker save` writes (manifest.json with RepoTags) or an OCI
 * image layout (oci-layout, index.json, blobs/), from a directory, a tar
 * file, or a tar stream. Every blob is verified on its way into the store.
 */
export class ArchiveLoader {
  readonly #added = new Set<Digest>();
  readonly #pin: Pin;

  constructor(
    readonly store: ImageStore,
    readonly options: LoadOptions,
  ) {
    this.#pin = new Pin(store);
  }

  // Copies a file of the archive into the store as a blob, checking it
  // against `expected` (an OCI descriptor) or, lacking one, hashing it first.
  async #ingestFile(path: string, expected: Pick<Descriptor, 'digest' | 'size'> | undefined, what: string): Promise<{ digest: Digest; size: number }> {
    const { digest, size } = expected ?? (await hashFile(path));
    await this.#pin.add([digest]);
    if (!(await this.store.hasBlob(digest, size))) {
      await this.store.withBlobLock(digest, async () => {
        if (await this.store.hasBlob(digest, size)) return;
        await this.store.ingest(createReadStream(path), new ContentVerifier(digest, size, what));
        this.#added.add(digest);
      });
    }
    return { digest, size };
  }

  async #putDocument(bytes: Buffer): Promise<Digest> {
    const digest = digestOf(bytes);
    await this.#pin.add([digest]);
    if (!(await this.store.hasBlob(digest, bytes.length))) {
      await this.store.putBlob(bytes);
      this.#added.add(digest);
    }
    return digest;
  }

  async #readJson(path: string, what: string): Promise<unknown> {
    try {
      return JSON.parse(await readFile(path, 'utf8'));
    } catch (error) {
      throw new ImageError(`${what}: cannot read ${(error as NodeJS.ErrnoException).code === 'ENOENT' ? 'it (missing)' : 'it (not JSON)'}`);
    }
  }

  async #dockerSave(dir: string): Promise<Found[]> {
    const entries = await this.#readJson(join(dir, 'manifest.json'), 'manifest.json of the archive');
    if (!Array.isArray(entries)) throw new ImageError('manifest.json of the archive is not a list');
    const found: Found[] = [];
    for (const [n, entry] of (entries as { Config?: unknown; RepoTags?: unknown; Layers?: unknown }[]).entries()) {
      const what = `image ${n + 1} of the archive`;
      if (typeof entry.Config !== 'string' || !Array.isArray(entry.Layers)) throw new ImageError(`${what}: manifest.json entry lacks Config or Layers`);
      const configPath = join(dir, containedPath(entry.Config, what));
      const configBytes = await readFile(configPath).catch(() => {
        throw new ImageError(`${what}: config ${entry.Config} is missing`);
      });
      // docker names the config by its digest: a mismatch means a damaged archive.
      const named = /([a-f0-9]{64})(?:\.json)?$/.exec(entry.Config as string)?.[1];
      const configDigest = await this.#putDocument(configBytes);
      if (named !== undefined && configDigest !== `sha256:${named}`) throw new ImageError(`${what}: config ${entry.Config} does not match its digest`);
      const config = parseImageConfig(configBytes, `config of ${what}`);
      if (config.rootfs.diff_ids.length !== entry.Layers.length) throw new ImageError(`${what}: ${entry.Layers.length} layers but the config lists ${config.rootfs.diff_ids.length}`);
      const layers: Descriptor[] = [];
      for (const [i, layerPath] of (entry.Layers as unknown[]).entries()) {
        if (typeof layerPath !== 'string') throw new ImageError(`${what}: layer ${i + 1} is not a path`);
        const path = join(dir, containedPath(layerPath, what));
        if (!(await exists(path))) throw new ImageError(`${what}: layer ${layerPath} is missing from the archive`);
        const { digest, size } = await this.#ingestFile(path, undefined, `layer ${layerPath} of ${what}`);
        layers.push({ mediaType: await layerMediaType(path), digest, size });
      }
      const configDescriptor: Descriptor = { mediaType: MediaType.ociConfig, digest: configDigest, size: configBytes.length };
      const manifestBytes = encodeManifest(configDescriptor, layers);
      const manifestDigest = await this.#putDocument(manifestBytes);
      const tags = Array.isArray(entry.RepoTags) ? entry.RepoTags.filter((tag): tag is string => typeof tag === 'string') : [];
      found.push({
        manifestDigest,
        topDigest: manifestDigest,
        manifest: { kind: 'manifest', mediaType: MediaType.ociManifest, config: configDescriptor, layers },
        config,
        names: tags.map((tag) => parseReference(tag)),
      });
    }
    return found;
  }

  async #ociLayout(dir: string): Promise<Found[]> {
    const blob = (digest: Digest) => join(dir, 'blobs', 'sha256', digest.slice('sha256:'.length));
    const readDocument = async (descriptor: Descriptor, what: string) => {
      await this.#ingestFile(blob(descriptor.digest), descriptor, what);
      return this.store.readBlob(descriptor.digest, what);
    };
    const indexBytes = await readFile(join(dir, 'index.json')).catch(() => {
      throw new ImageError('the OCI layout has no index.json');
    });
    const index = parseManifest(indexBytes, MediaType.ociIndex, 'index.json of the OCI layout');
    if (index.kind !== 'index') throw new ImageError('index.json of the OCI layout is not an index');
    const found: Found[] = [];
    for (const [n, top] of index.manifests.entries()) {
      const what = `image ${n + 1} of the OCI layout`;
      if (!(await exists(blob(top.digest)))) throw new ImageError(`${what}: blob ${top.digest} is missing`);
      let descriptor = top;
      let document = parseManifest(await readDocument(top, what), top.mediaType, what);
      if (document.kind === 'index') {
        descriptor = selectPlatform(document, this.options.platform ?? DEFAULT_PLATFORM, what);
        document = parseManifest(await readDocument(descriptor, what), descriptor.mediaType, what);
      }
      if (document.kind !== 'manifest') throw new ImageError(`${what}: nested indexes are not supported`);
      const config = parseImageConfig(await readDocument(document.config, `config of ${what}`), `config of ${what}`);
      for (const [i, layer] of document.layers.entries()) {
        if (!(await exists(blob(layer.digest)))) throw new ImageError(`${what}: layer ${layer.digest} is missing`);
        await this.#ingestFile(blob(layer.digest), layer, `layer ${i + 1} (${layer.digest}) of ${what}`);
      }
      // containerd and docker put the full name here; umoci and skopeo only a tag, which names nothing alone.
      const name = top.annotations?.['io.containerd.image.name'] ?? top.annotations?.['org.opencontainers.image.ref.name'];
      const names = name !== undefined && /[/:@]/.test(name) ? [parseReference(name)] : [];
      found.push({ manifestDigest: descriptor.digest, topDigest: top.digest, manifest: document, config, names });
    }
    return found;
  }

  /** Loads the archive at `dir` (already unpacked, or given as a directory). */
  async loadDirectory(dir: string): Promise<ImageRecord[]> {
    try {
      let found: Found[];
      if (await exists(join(dir, 'manifest.json'))) found = await this.#dockerSave(dir);
      else if (await exists(join(dir, 'oci-layout'))) found = await this.#ociLayout(dir);
      else throw new ImageError('not a docker-save archive (no manifest.json) nor an OCI image layout (no oci-layout)');
      if (found.length === 0) throw new ImageError('the archive holds no image');

      const progress = this.options.progress ?? quietProgress;
      const records: ImageRecord[] = [];
      for (const image of found) {
        const snapshot = chainId(image.config.rootfs.diff_ids);
        await this.#pin.add([snapshot]);
        const names = this.options.tag ? [this.options.tag] : image.names;
        const label = names[0] ? repositoryName(names[0]) : image.manifest.config.digest;
        await ensureSnapshot(this.store, image.manifest, image.config, label, progress);
        const base = {
          digest: image.topDigest,
          manifest: image.manifestDigest,
          config: image.manifest.config.digest,
          snapshot,
          platform: formatPlatform({ os: image.config.os ?? 'linux', architecture: image.config.architecture ?? 'amd64', ...(image.config.variant ? { variant: image.config.variant } : {}) }),
          size: image.manifest.config.size + image.manifest.layers.reduce((sum, layer) => sum + layer.size, 0),
          created: image.config.created ?? null,
        };
        const named = names.map((ref): ImageRecord => ({ ...base, repository: repositoryName(ref), tag: ref.digest ? null : (ref.tag ?? 'latest'), ...(ref.digest ? { digest: ref.digest } : {}) }));
        records.push(...(named.length > 0 ? named : [{ ...base, repository: null, tag: null }]));
      }
      for (const record of records) await this.store.record(record);
      await this.#pin.release();
      return records;
    } catch (error) {
      await this.#pin.release();
      if (this.#added.size > 0) await collectGarbage(this.store, this.#added);
      throw error;
    }
  }

  /** Loads a tar (optionally gzipped) of either format, from a file or a stream. */
  async loadTar(source: Readable, what: string): Promise<ImageRecord[]> {
    const dir = this.store.tempPath('-load');
    const dispose = removeAtExit(dir, true);
    try {
      await mkdir(dir);
      try {
        await pipeline(source, extract({ cwd: dir, strict: true, preservePaths: false, preserveOwner: false }));
      } catch (error) {
        throw new ImageError(`${what} is not a valid tar archive: ${(error as Error).message}`);
      }
      return await this.loadDirectory(dir);
    } finally {
      await rm(dir, { recursive: true, force: true });
      dispose();
    }
  }
}

// docker-save layers are plain tars; other tools compress them.
async function layerMediaType(path: string): Promise<string> {
  const file = await open(path, 'r');
  try {
    const { buffer } = await file.read(Buffer.alloc(4), 0, 4, 0);
    if (buffer[0] === 0x1f && buffer[1] === 0x8b) return MediaType.ociLayerGzip;
    if (buffer.equals(Buffer.from([0x28, 0xb5, 0x2f, 0xfd]))) return MediaType.ociLayerZstd;
    return MediaType.ociLayer;
  } finally {
    await file.close();
  }
}

/** `vmctr load`: a directory, a tar file, or (path undefined) a tar on standard input. */
export async function loadImages(store: ImageStore, path: string | undefined, options: LoadOptions = {}): Promise<ImageRecord[]> {
  const loader = new ArchiveLoader(store, options);
  if (path === undefined) return loader.loadTar(process.stdin, 'standard input');
  const info = await stat(path).catch(() => {
    throw new ImageError(`cannot load ${path}: no such file or directory`);
  });
  if (info.isDirectory()) return loader.loadDirectory(path);
  return loader.loadTar(createReadStream(path), path);
}
