import { ImageError } from './image-error.js';
import { ContentVerifier, type Digest } from './digest.js';
import { collectGarbage } from './garbage.js';
import { parseImageConfig, type ImageConfig } from './image-config.js';
import { parseManifest, selectPlatform, type Descriptor, type ImageManifest } from './manifest.js';
import { Pin } from './pin.js';
import { DEFAULT_PLATFORM, formatPlatform, platformMatches, type Platform } from './platform.js';
import { quietProgress, type PullProgress } from './progress.js';
import { formatReference, repositoryName, type ImageReference } from './reference.js';
import type { RegistryClient, RegistrySession } from './registry-client.js';
import { chainId, ensureSnapshot } from './snapshot.js';
import type { ImageRecord, ImageStore } from './store.js';

export interface PullOptions {
  readonly session: RegistrySession;
  /** The platform asked for with --platform; linux/amd64 when absent. */
  readonly platform?: Platform;
  readonly progress?: PullProgress;
}

/** Layers fetched at once: docker's default. */
const CONCURRENT_DOWNLOADS = 3;

// Runs `work` over `items`, at most `limit` at a time. On the first failure
// the others are aborted and awaited, so nothing still writes when it returns.
async function forEachLimited<T>(items: readonly T[], limit: number, work: (item: T, signal: AbortSignal) => Promise<void>): Promise<void> {
  const abort = new AbortController();
  let next = 0;
  let firstError: unknown;
  const worker = async () => {
    while (next < items.length && !abort.signal.aborted) {
      const item = items[next++]!;
      try {
        await work(item, abort.signal);
      } catch (error) {
        if (firstError === undefined) firstError = error;
        abort.abort(error);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (firstError !== undefined) throw firstError;
}

/**
 * Pulls an image into the store: manifest (choosing the platform from an
 * index), config and layers, each verified against its digest and size while
 * it streams to disk; unpacks the snapshot; records the name. If anything
 * fails, the blobs this pull added and nothing else names are removed again.
 */
export async function pullImage(store: ImageStore, reference: ImageReference, options: PullOptions): Promise<ImageRecord> {
  const what = formatReference(reference);
  const progress = options.progress ?? quietProgress;
  const platform = options.platform ?? DEFAULT_PLATFORM;
  const client = options.session.repository(reference.registry, reference.repository);
  const pin = new Pin(store);
  const added = new Set<Digest>();
  try {
    const top = await client.fetchManifest(reference.digest ?? reference.tag!, what);
    if (reference.digest !== undefined && top.digest !== reference.digest) {
      throw new ImageError(`${what}: the registry sent a manifest whose digest is ${top.digest}`);
    }
    const document = parseManifest(top.bytes, top.mediaType, `manifest of ${what}`);
    const documents: { digest: Digest; bytes: Buffer }[] = [top];
    let manifest: ImageManifest;
    let manifestDigest = top.digest;
    if (document.kind === 'index') {
      const choice = selectPlatform(document, platform, what);
      progress.note(`${what}: ${formatPlatform(choice.platform ?? platform)} manifest ${choice.digest}`);
      const fetched = await client.fetchManifest(choice.digest, `${formatPlatform(platform)} manifest of ${what}`);
      if (fetched.digest !== choice.digest || fetched.bytes.length !== choice.size) {
        throw new ImageError(`${what}: the ${formatPlatform(platform)} manifest does not match its digest or size in the index`);
      }
      const child = parseManifest(fetched.bytes, fetched.mediaType ?? choice.mediaType, `${formatPlatform(platform)} manifest of ${what}`);
      if (child.kind !== 'manifest') throw new ImageError(`${what}: the index entry for ${formatPlatform(platform)} is not an image manifest`);
      manifest = child;
      manifestDigest = fetched.digest;
      documents.push(fetched);
    } else {
      manifest = document;
    }

    const blobs = [manifest.config, ...manifest.layers];
    // Pinned before anything is looked for or written: see Pin.add.
    await pin.add([...documents.map((doc) => doc.digest), ...blobs.map((blob) => blob.digest)]);
    for (const doc of documents) {
      if (!(await store.hasBlob(doc.digest, doc.bytes.length))) {
        await store.putBlob(doc.bytes);
        added.add(doc.digest);
      }
    }

    await fetchBlob(store, client, manifest.config, `config of ${what}`, progress, added);
    const config = parseImageConfig(await store.readBlob(manifest.config.digest, `config of ${what}`), `config of ${what}`);
    checkPlatform(config, options.platform, what);

    const unique = [...new Map(manifest.layers.map((layer) => [layer.digest, layer])).values()];
    await forEachLimited(unique, CONCURRENT_DOWNLOADS, (layer, signal) =>
      fetchBlob(store, client, layer, `layer ${layer.digest} of ${what}`, progress, added, signal));
    progress.close();

    const snapshot = chainId(config.rootfs.diff_ids);
    await pin.add([snapshot]);
    // Unpacked now, so the first run does not wait for it.
    await ensureSnapshot(store, manifest, config, what, progress);

    const record: ImageRecord = {
      repository: repositoryName(reference),
      tag: reference.digest === undefined ? reference.tag! : null,
      digest: reference.digest ?? top.digest,
      manifest: manifestDigest,
      config: manifest.config.digest,
      snapshot,
      platform: formatPlatform(config.os && config.architecture ? { os: config.os, architecture: config.architecture, ...(config.variant ? { variant: config.variant } : {}) } : platform),
      size: blobs.reduce((sum, blob) => sum + blob.size, 0),
      created: config.created ?? null,
    };
    await store.record(record);
    await pin.release();
    return record;
  } catch (error) {
    progress.close();
    // Unpinned first, so the collection can take back what this pull added.
    await pin.release();
    if (added.size > 0) await collectGarbage(store, added);
    throw error;
  }
}

function checkPlatform(config: ImageConfig, wanted: Platform | undefined, what: string): void {
  if (wanted === undefined || !config.os || !config.architecture) return;
  const have: Platform = { os: config.os, architecture: config.architecture, ...(config.variant ? { variant: config.variant } : {}) };
  if (!platformMatches(wanted, have)) throw new ImageError(`${what} is for ${formatPlatform(have)}, not ${formatPlatform(wanted)}`);
}

// One blob into the store, under its lock: a concurrent pull of the same blob
// waits for this one and then finds it present instead of fetching it again.
async function fetchBlob(store: ImageStore, client: RegistryClient, blob: Descriptor, what: string, progress: PullProgress, added: Set<Digest>, signal?: AbortSignal): Promise<void> {
  const report = progress.blob(blob.digest, blob.size);
  try {
    await store.withBlobLock(blob.digest, async () => {
      if (await store.hasBlob(blob.digest, blob.size)) return report.present();
      signal?.throwIfAborted();
      report.started();
      const body = await client.fetchBlob(blob.digest, what, signal);
      await store.ingest(body, new ContentVerifier(blob.digest, blob.size, what), (bytes) => report.advance(bytes), signal);
      added.add(blob.digest);
      report.finished();
    }, { onWait: (holder) => report.waiting(holder.pid) });
  } catch (error) {
    report.failed();
    throw error;
  }
}
