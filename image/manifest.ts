import { ImageError } from './image-error.js';
import { parseDigest, type Digest } from './digest.js';
import { formatPlatform, platformMatches, type Platform } from './platform.js';

export const MediaType = {
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerManifestList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerSchema1: 'application/vnd.docker.distribution.manifest.v1+json',
  dockerSchema1Signed: 'application/vnd.docker.distribution.manifest.v1+prettyjws',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  ociLayer: 'application/vnd.oci.image.layer.v1.tar',
  ociLayerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  ociLayerZstd: 'application/vnd.oci.image.layer.v1.tar+zstd',
} as const;

/** What a registry is asked for: every manifest kind this engine reads. */
export const MANIFEST_ACCEPT = [MediaType.ociIndex, MediaType.ociManifest, MediaType.dockerManifestList, MediaType.dockerManifest].join(', ');

/** Manifests are small; the distribution registry refuses ones over 4 MiB. */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;

const LAYER_TYPES = new Set<string>([
  MediaType.ociLayer,
  MediaType.ociLayerGzip,
  MediaType.ociLayerZstd,
  'application/vnd.oci.image.layer.nondistributable.v1.tar',
  'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip',
  'application/vnd.oci.image.layer.nondistributable.v1.tar+zstd',
  'application/vnd.docker.image.rootfs.diff.tar',
  'application/vnd.docker.image.rootfs.diff.tar.gzip',
  'application/vnd.docker.image.rootfs.diff.tar.zstd',
  'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip',
]);

export interface Descriptor {
  readonly mediaType: string;
  readonly digest: Digest;
  readonly size: number;
  readonly platform?: Platform;
  readonly annotations?: Readonly<Record<string, string>>;
}

export interface ImageManifest {
  readonly kind: 'manifest';
  readonly mediaType: string;
  readonly config: Descriptor;
  readonly layers: readonly Descriptor[];
}

export interface ImageIndex {
  readonly kind: 'index';
  readonly mediaType: string;
  readonly manifests: readonly Descriptor[];
}

type Json = Record<string, unknown>;

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function parseJson(bytes: Uint8Array, what: string): Json {
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch {
    throw new ImageError(`${what} is not valid JSON`);
  }
  if (!isObject(value)) throw new ImageError(`${what} is not a JSON object`);
  return value;
}

function parseDescriptor(value: unknown, what: string): Descriptor {
  if (!isObject(value)) throw new ImageError(`${what}: descriptor is not an object`);
  const { mediaType, digest, size, platform, annotations } = value;
  if (typeof mediaType !== 'string') throw new ImageError(`${what}: descriptor has no media type`);
  if (typeof digest !== 'string') throw new ImageError(`${what}: descriptor has no digest`);
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) throw new ImageError(`${what}: descriptor has an invalid size`);
  const descriptor: { -readonly [K in keyof Descriptor]: Descriptor[K] } = { mediaType, digest: parseDigest(digest, `${what} digest`), size };
  if (isObject(platform) && typeof platform.os === 'string' && typeof platform.architecture === 'string') {
    descriptor.platform = {
      os: platform.os,
      architecture: platform.architecture,
      ...(typeof platform.variant === 'string' && platform.variant !== '' ? { variant: platform.variant } : {}),
    };
  }
  if (isObject(annotations)) {
    descriptor.annotations = Object.fromEntries(Object.entries(annotations).filter((entry): entry is [string, string] => typeof entry[1] === 'string'));
  }
  return descriptor;
}

/**
 * Reads an OCI or Docker schema 2 manifest or index. `mediaType` is the
 * Content-Type the registry sent, used when the document does not say.
 */
export function parseManifest(bytes: Uint8Array, mediaType: string | undefined, what: string): ImageManifest | ImageIndex {
  const json = parseJson(bytes, what);
  const declared = typeof json.mediaType === 'string' ? json.mediaType : mediaType?.split(';')[0]?.trim();
  if (json.schemaVersion === 1 || declared === MediaType.dockerSchema1 || declared === MediaType.dockerSchema1Signed) {
    throw new ImageError(`${what} is a Docker schema 1 manifest, which is not supported (push the image again with a current tool)`);
  }
  if (json.schemaVersion !== 2) throw new ImageError(`${what} has unsupported schemaVersion ${String(json.schemaVersion)}`);

  if (Array.isArray(json.manifests)) {
    const manifests = json.manifests.map((entry, i) => parseDescriptor(entry, `${what} entry ${i}`));
    return { kind: 'index', mediaType: declared ?? MediaType.ociIndex, manifests };
  }
  if (isObject(json.config) && Array.isArray(json.layers)) {
    const config = parseDescriptor(json.config, `${what} config`);
    const layers = json.layers.map((entry, i) => parseDescriptor(entry, `${what} layer ${i}`));
    for (const layer of layers) {
      if (!LAYER_TYPES.has(layer.mediaType)) throw new ImageError(`${what}: unsupported layer media type ${layer.mediaType} (not a container image?)`);
    }
    return { kind: 'manifest', mediaType: declared ?? MediaType.ociManifest, config, layers };
  }
  throw new ImageError(`${what} is neither an image manifest nor an index`);
}

/** Picks the manifest for `platform` out of an index, as docker does. */
export function selectPlatform(index: ImageIndex, platform: Platform, what: string): Descriptor {
  const images = index.manifests.filter((entry) => entry.mediaType !== MediaType.ociIndex && entry.mediaType !== MediaType.dockerManifestList);
  const match = images.find((entry) => entry.platform !== undefined && platformMatches(platform, entry.platform));
  if (match) return match;
  const available = images.flatMap((entry) => (entry.platform && entry.platform.os !== 'unknown' ? [formatPlatform(entry.platform)] : []));
  throw new ImageError(`${what} has no ${formatPlatform(platform)} image (available: ${available.join(', ') || 'none'})`);
}

/** Serialises a manifest this engine writes itself (for `vmctr load` of docker-save archives). */
export function encodeManifest(config: Descriptor, layers: readonly Descriptor[]): Buffer {
  const strip = ({ mediaType, digest, size }: Descriptor) => ({ mediaType, digest, size });
  return Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.ociManifest, config: strip(config), layers: layers.map(strip) }));
}
