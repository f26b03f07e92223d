import { ImageError } from './image-error.js';
import { digestHex } from './digest.js';
import { parseReference, repositoryName } from './reference.js';
import type { ImageRecord, ImageStore } from './store.js';

const ID_PREFIX = /^(?:sha256:)?([a-f0-9]{4,64})$/;

/**
 * The records `nameOrId` names: a reference (`nginx`, `nginx:1.25`,
 * `host/app@sha256:…`) or an image id / digest prefix of at least 4 hex
 * digits, as docker accepts them. Empty when nothing matches.
 */
export function matchImages(images: readonly ImageRecord[], nameOrId: string): ImageRecord[] {
  let named: ImageRecord[] = [];
  try {
    const ref = parseReference(nameOrId);
    const repository = repositoryName(ref);
    named = images.filter((image) =>
      image.repository === repository &&
      (ref.digest !== undefined ? image.digest === ref.digest || image.manifest === ref.digest : image.tag === ref.tag));
  } catch {
    // not a reference: may still be an id
  }
  if (named.length > 0) return named;
  const id = ID_PREFIX.exec(nameOrId)?.[1];
  if (id === undefined) return [];
  const byId = images.filter((image) => [image.config, image.manifest, image.digest].some((digest) => digestHex(digest).startsWith(id)));
  if (new Set(byId.map((image) => image.config)).size > 1) throw new ImageError(`image id prefix "${nameOrId}" is ambiguous: give more digits`);
  return byId;
}

/** The one image `nameOrId` names, or a one-line error. */
export async function findImage(store: ImageStore, nameOrId: string): Promise<ImageRecord> {
  const [image] = matchImages(await store.images(), nameOrId);
  if (!image) throw new ImageError(`image "${nameOrId}" is not in the store (vmctr pull ${nameOrId})`);
  return image;
}
