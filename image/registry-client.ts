import type { Readable } from 'node:stream';
import { Agent, interceptors, request, type Dispatcher } from 'undici';
import { ImageError } from './image-error.js';
import { digestOf, type Digest } from './digest.js';
import { parseAuthChallenges } from './auth-challenge.js';
import { dockerConfigPath, loadCredentials, type Credentials } from './credentials.js';
import { MANIFEST_ACCEPT, MAX_MANIFEST_BYTES } from './manifest.js';
import { registryEndpoint } from './reference.js';

export interface RegistryOptions {
  /** Registries (`host` or `host:port`) to reach over plain HTTP; every other one is HTTPS only. */
  readonly insecureRegistries?: readonly string[];
  /** Looks up `docker login` credentials; config.json by default. */
  readonly credentials?: (registry: string) => Promise<Credentials | undefined>;
}

/** The connections and settings shared by every repository one command talks to. */
export class RegistrySession {
  readonly dispatcher: Dispatcher;
  readonly #agent: Agent;
  readonly #insecure: ReadonlySet<string>;
  readonly #credentials: (registry: string) => Promise<Credentials | undefined>;

  constructor(options: RegistryOptions = {}) {
    this.#agent = new Agent({ connect: { timeout: 15_000 }, headersTimeout: 60_000, bodyTimeout: 120_000 });
    // Blob downloads are commonly redirected to object storage; undici drops
    // the Authorization header when a redirect leaves the origin.
    this.dispatcher = this.#agent.compose(interceptors.redirect({ maxRedirections: 5 }));
    this.#insecure = new Set(options.insecureRegistries ?? []);
    this.#credentials = options.credentials ?? ((registry) => loadCredentials(registry));
  }

  baseUrl(registry: string): string {
    const endpoint = registryEndpoint(registry);
    const plain = this.#insecure.has(registry) || this.#insecure.has(endpoint);
    return `${plain ? 'http' : 'https'}://${endpoint}`;
  }

  credentials(registry: string): Promise<Credentials | undefined> {
    return this.#credentials(registry);
  }

  repository(registry: string, repository: string): RegistryClient {
    return new RegistryClient(this, registry, repository);
  }

  async close(): Promise<void> {
    await this.#agent.close();
  }
}

export interface FetchedManifest {
  readonly bytes: Buffer;
  readonly mediaType: string | undefined;
  readonly digest: Digest;
}

type Response = Dispatcher.ResponseData;

function header(response: Response, name: string): string | undefined {
  const value = response.headers[name];
  return Array.isArray(value) ? value.join(', ') : value;
}

// The distribution API puts a reason in {"errors":[{"code","message"}]}.
async function errorDetail(response: Response): Promise<string> {
  try {
    const body = (await response.body.json()) as { errors?: { code?: string; message?: string }[] };
    const first = body.errors?.[0];
    return first ? `${first.code ?? ''}${first.message ? `: ${first.message}` : ''}` : '';
  } catch {
    return '';
  } finally {
    if (!response.body.destroyed) response.body.destroy();
  }
}

function networkError(error: unknown, registry: string, url: string): ImageError {
  if (error instanceof ImageError) return error;
  const err = error as NodeJS.ErrnoException & { cause?: NodeJS.ErrnoException };
  const code = err.code ?? err.cause?.code ?? '';
  const reason =
    code === 'ECONNREFUSED' ? 'connection refused'
    : code === 'ENOTFOUND' || code === 'EAI_AGAIN' ? 'host not found'
    : code === 'UND_ERR_CONNECT_TIMEOUT' ? 'connection timed out'
    // Node appends advice about its own flags to certificate errors; vmctr's hint replaces it.
    : (err.cause?.message ?? err.message).replace(/; if the root CA is installed locally.*$/, '');
  const https = url.startsWith('https:');
  const hint =
    https && /CERT|SELF_SIGNED|UNABLE_TO_VERIFY/i.test(code) ? ' (to trust a private CA, set NODE_EXTRA_CA_CERTS to its certificate)'
    : https && /SSL|TLS|EPROTO|ECONNRESET/i.test(`${code} ${reason}`) ? ` (a plain-HTTP registry must be named with --insecure-registry ${registry})`
    : '';
  return new ImageError(`cannot reach registry ${registry} at ${url}: ${reason}${hint}`);
}

/** The OCI distribution API (v2) for one repository, with anonymous, bearer-token and basic auth. */
export class RegistryClient {
  #authorization: string | undefined;

  constructor(
    readonly session: RegistrySession,
    readonly registry: string,
    readonly repository: string,
  ) {}

  async #send(path: string, accept: string | undefined, signal?: AbortSignal): Promise<Response> {
    const url = `${this.session.baseUrl(this.registry)}/v2/${this.repository}/${path}`;
    const headers: Record<string, string> = { 'user-agent': 'vmctr' };
    if (accept) headers.accept = accept;
    if (this.#authorization) headers.authorization = this.#authorization;
    try {
      return await request(url, { method: 'GET', headers, dispatcher: this.session.dispatcher, signal });
    } catch (error) {
      if (signal?.aborted) throw signal.reason;
      throw networkError(error, this.registry, url);
    }
  }

  /** GET with the challenge flow: anonymous first, then whatever the 401 asks for. */
  async #get(path: string, accept: string | undefined, signal?: AbortSignal): Promise<Response> {
    let response = await this.#send(path, accept, signal);
    if (response.statusCode !== 401) return response;
    const challenge = header(response, 'www-authenticate');
    await response.body.dump();
    await this.#authenticate(challenge);
    response = await this.#send(path, accept, signal);
    if (response.statusCode === 401) {
      const detail = await errorDetail(response);
      throw new ImageError(`${this.registry} refused access to ${this.repository}${detail ? ` (${detail})` : ''}: check the credentials in ${dockerConfigPath()}`);
    }
    return response;
  }

  async #authenticate(challengeHeader: string | undefined): Promise<void> {
    const challenges = parseAuthChallenges(challengeHeader ?? '');
    const credentials = await this.session.credentials(this.registry);
    const bearer = challenges.find((challenge) => challenge.scheme === 'bearer');
    if (bearer) {
      this.#authorization = `Bearer ${await this.#fetchToken(bearer.params, credentials)}`;
      return;
    }
    if (challenges.some((challenge) => challenge.scheme === 'basic')) {
      if (!credentials) throw new ImageError(`${this.registry} requires a login and ${dockerConfigPath()} has no credentials for it`);
      this.#authorization = `Basic ${Buffer.from(`${credentials.username}:${credentials.password}`).toString('base64')}`;
      return;
    }
    throw new ImageError(`${this.registry} answered 401 without a usable authentication challenge`);
  }

  // The token flow of the distribution spec: ask the realm for a pull token for this repository.
  async #fetchToken(params: Readonly<Record<string, string>>, credentials: Credentials | undefined): Promise<string> {
    const realm = params.realm;
    if (!realm || !/^https?:\/\//.test(realm)) throw new ImageError(`${this.registry} sent a bearer challenge without a usable realm`);
    const url = new URL(realm);
    if (params.service) url.searchParams.set('service', params.service);
    url.searchParams.set('scope', `repository:${this.repository}:pull`);
    const headers: Record<string, string> = { 'user-agent': 'vmctr' };
    if (credentials) headers.authorization = `Basic ${Buffer.from(`${credentials.username}:${credentials.password}`).toString('base64')}`;
    let response: Response;
    try {
      response = await request(url, { method: 'GET', headers, dispatcher: this.session.dispatcher });
    } catch (error) {
      throw networkError(error, url.host, url.origin);
    }
    if (response.statusCode !== 200) {
      await response.body.dump();
      throw new ImageError(`the token service of ${this.registry} (${url.origin}) refused ${credentials ? `user ${credentials.username}` : 'anonymous access'}: HTTP ${response.statusCode}`);
    }
    const body = (await response.body.json().catch(() => ({}))) as { token?: string; access_token?: string };
    const token = body.token ?? body.access_token;
    if (typeof token !== 'string' || token === '') throw new ImageError(`the token service of ${this.registry} sent no token`);
    return token;
  }

  async #failure(response: Response, what: string): Promise<ImageError> {
    const status = response.statusCode;
    const detail = await errorDetail(response);
    if (status === 404) return new ImageError(`${what} not found in ${this.registry}${detail ? ` (${detail})` : ''}`);
    if (status === 403) return new ImageError(`${this.registry} denied access to ${what}${detail ? ` (${detail})` : ''}`);
    return new ImageError(`${this.registry} answered HTTP ${status} for ${what}${detail ? ` (${detail})` : ''}`);
  }

  /**
   * Fetches a manifest by tag or digest. The digest returned is computed from
   * the bytes; the caller checks it against what was asked for.
   */
  async fetchManifest(reference: string, what: string): Promise<FetchedManifest> {
    const response = await this.#get(`manifests/${reference}`, MANIFEST_ACCEPT);
    if (response.statusCode !== 200) throw await this.#failure(response, what);
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of response.body) {
      size += (chunk as Buffer).length;
      if (size > MAX_MANIFEST_BYTES) {
        response.body.destroy();
        throw new ImageError(`${what} is larger than ${MAX_MANIFEST_BYTES} bytes`);
      }
      chunks.push(chunk as Buffer);
    }
    const bytes = Buffer.concat(chunks);
    const digest = digestOf(bytes);
    const announced = header(response, 'docker-content-digest');
    if (announced !== undefined && announced.startsWith('sha256:') && announced !== digest) {
      throw new ImageError(`${what}: the registry announced digest ${announced} but sent content with digest ${digest}`);
    }
    return { bytes, mediaType: header(response, 'content-type'), digest };
  }

  /** Opens a blob's content as a stream; the caller verifies it while consuming it. */
  async fetchBlob(digest: Digest, what: string, signal?: AbortSignal): Promise<Readable> {
    const response = await this.#get(`blobs/${digest}`, undefined, signal);
    if (response.statusCode !== 200) throw await this.#failure(response, what);
    return response.body;
  }
}
