import { ImageError } from './image-error.js';
import { parseDigest, type Digest } from './digest.js';

/** An image reference after docker's normalisation: `nginx` is docker.io/library/nginx:latest. */
export interface ImageReference {
  /** As the user names it: `docker.io`, `quay.io`, `127.0.0.1:5000`. */
  readonly registry: string;
  readonly repository: string;
  readonly tag?: string;
  readonly digest?: Digest;
}

export const DEFAULT_REGISTRY = 'docker.io';
const LEGACY_DEFAULT_REGISTRY = 'index.docker.io';
const DOCKER_HUB_ENDPOINT = 'registry-1.docker.io';
const DEFAULT_TAG = 'latest';

// The grammar of distribution/reference.
const COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const DOMAIN = /^(?:(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])(?:\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))*|\[[a-fA-F0-9:]+\])(?::[0-9]+)?$/;
const TAG = /^[\w][\w.-]{0,127}$/;
const IMAGE_ID = /^[a-f0-9]{64}$/;
const MAX_NAME = 255;

/** Parses a reference exactly as `docker pull` would read it. */
export function parseReference(text: string): ImageReference {
  const bad = (why: string) => new ImageError(`invalid reference "${text}": ${why}`);
  if (text === '') throw bad('empty');
  if (IMAGE_ID.test(text)) throw bad('a 64-digit hexadecimal string is an image id, not a repository name');

  let rest = text;
  let digest: Digest | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    try {
      digest = parseDigest(rest.slice(at + 1));
    } catch (error) {
      throw bad((error as Error).message);
    }
    rest = rest.slice(0, at);
  }

  const slash = rest.indexOf('/');
  const first = slash < 0 ? '' : rest.slice(0, slash);
  const hasDomain = slash >= 0 && (/[.:]/.test(first) || first === 'localhost' || first.toLowerCase() !== first);
  let registry = hasDomain ? first : DEFAULT_REGISTRY;
  let path = hasDomain ? rest.slice(slash + 1) : rest;

  let tag: string | undefined;
  const colon = path.lastIndexOf(':');
  if (colon >= 0) {
    tag = path.slice(colon + 1);
    path = path.slice(0, colon);
    if (!TAG.test(tag)) throw bad(`invalid tag "${tag}"`);
  }

  if (!DOMAIN.test(registry)) throw bad(`invalid registry "${registry}"`);
  if (registry === LEGACY_DEFAULT_REGISTRY) registry = DEFAULT_REGISTRY;
  if (path.toLowerCase() !== path) throw bad('repository name must be lowercase');
  if (path === '' || !path.split('/').every((component) => COMPONENT.test(component))) {
    throw bad(`invalid repository name "${path}"`);
  }
  if (registry === DEFAULT_REGISTRY && !path.includes('/')) path = `library/${path}`;
  if (registry.length + 1 + path.length > MAX_NAME) throw bad(`name longer than ${MAX_NAME} characters`);

  if (tag === undefined && digest === undefined) tag = DEFAULT_TAG;
  return { registry, repository: path, ...(tag === undefined ? {} : { tag }), ...(digest === undefined ? {} : { digest }) };
}

/** `docker.io/library/nginx`: the repository's full name, the key under which images are recorded. */
export function repositoryName(ref: Pick<ImageReference, 'registry' | 'repository'>): string {
  return `${ref.registry}/${ref.repository}`;
}

/** The canonical form: `docker.io/library/nginx:1.25`, `host:5000/app@sha256:…`. */
export function formatReference(ref: ImageReference): string {
  return repositoryName(ref) + (ref.tag === undefined ? '' : `:${ref.tag}`) + (ref.digest === undefined ? '' : `@${ref.digest}`);
}

/** The short form docker shows: `nginx`, `user/app`, `quay.io/x/y`. */
export function familiarName(ref: Pick<ImageReference, 'registry' | 'repository'>): string {
  if (ref.registry !== DEFAULT_REGISTRY) return repositoryName(ref);
  return ref.repository.startsWith('library/') ? ref.repository.slice('library/'.length) : ref.repository;
}

/** Where the registry's API actually lives: Docker Hub's is not at docker.io. */
export function registryEndpoint(registry: string): string {
  return registry === DEFAULT_REGISTRY ? DOCKER_HUB_ENDPOINT : registry;
}
