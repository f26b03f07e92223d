// The two authentication set-ups registries use, for tests: a token service
// for docker-registry's `auth: token` (JWTs signed with a test-made key whose
// certificate the registry trusts), and a front proxy demanding HTTP Basic.
import { createSign } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createServer, request, type IncomingMessage, type Server } from 'node:http';
import { join } from 'node:path';
import { run } from './image-builder.js';

export interface AuthLog {
  readonly requests: { user: string | undefined; scope: string | null; service: string | null }[];
}

function basicUser(request: IncomingMessage): { user: string; password: string } | undefined {
  const header = request.headers.authorization ?? '';
  if (!header.startsWith('Basic ')) return undefined;
  const decoded = Buffer.from(header.slice(6), 'base64').toString();
  const colon = decoded.indexOf(':');
  return { user: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

function listen(server: Server): Promise<number> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => {
    const address = server.address();
    resolve(typeof address === 'object' && address ? address.port : 0);
  }));
}

const base64url = (data: Buffer | string) => Buffer.from(data).toString('base64url');

export interface TokenService {
  readonly realm: string;
  readonly service: string;
  readonly issuer: string;
  readonly rootCertBundle: string;
  readonly log: AuthLog;
  close(): Promise<void>;
}

/** A token service granting what is asked to `user:password`, and refusing anyone else. */
export async function startTokenService(dir: string, user: string, password: string): Promise<TokenService> {
  const key = join(dir, 'token.key');
  const cert = join(dir, 'token.crt');
  await run('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '2', '-subj', '/CN=vmctr-test-token-issuer']);
  const privateKey = await readFile(key, 'utf8');
  const certDer = Buffer.from((await readFile(cert, 'utf8')).replace(/-----[^-]+-----|\s/g, ''), 'base64');
  const issuer = 'vmctr-test-issuer';
  const service = 'vmctr-test-registry';
  const log: AuthLog = { requests: [] };

  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const given = basicUser(req);
    const scope = url.searchParams.get('scope');
    log.requests.push({ user: given?.user, scope, service: url.searchParams.get('service') });
    if (!given || given.user !== user || given.password !== password) {
      res.writeHead(401, { 'content-type': 'application/json' }).end('{"details":"bad credentials"}');
      return;
    }
    const access = scope ? [{ type: scope.split(':')[0], name: scope.split(':')[1], actions: (scope.split(':')[2] ?? '').split(',') }] : [];
    const now = Math.floor(Date.now() / 1000);
    const header = base64url(JSON.stringify({ alg: 'RS256', typ: 'JWT', x5c: [certDer.toString('base64')] }));
    const claims = base64url(JSON.stringify({ iss: issuer, sub: user, aud: service, exp: now + 300, nbf: now - 10, iat: now, jti: String(Math.random()), access }));
    const signature = createSign('RSA-SHA256').update(`${header}.${claims}`).sign(privateKey);
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ token: `${header}.${claims}.${base64url(signature)}`, expires_in: 300 }));
  });
  const port = await listen(server);
  return {
    realm: `http://127.0.0.1:${port}/token`,
    service,
    issuer,
    rootCertBundle: cert,
    log,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

export interface BasicAuthProxy {
  readonly host: string;
  close(): Promise<void>;
}

export interface BlobStorage {
  readonly origin: string;
  /** The Authorization header of each request it served (undefined when none came). */
  readonly authorizations: (string | undefined)[];
  close(): Promise<void>;
}

/**
 * Plays the object storage registries redirect blob downloads to (another
 * origin): serves `/blob?path=…` from the registry at `upstream`, recording
 * whether credentials were (wrongly) sent along.
 */
export async function startBlobStorage(upstream: string): Promise<BlobStorage> {
  const [upstreamHost, upstreamPort] = upstream.split(':');
  const authorizations: (string | undefined)[] = [];
  const server = createServer((req, res) => {
    authorizations.push(req.headers.authorization);
    const path = new URL(req.url ?? '/', 'http://localhost').searchParams.get('path') ?? '/';
    request({ host: upstreamHost, port: Number(upstreamPort), path }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    }).on('error', () => res.writeHead(502).end()).end();
  });
  const port = await listen(server);
  return { origin: `http://127.0.0.1:${port}`, authorizations, close: () => new Promise((resolve) => server.close(() => resolve())) };
}

/**
 * docker-registry only does htpasswd auth over TLS, so Basic auth is tested
 * through this front proxy: it answers 401 with a Basic challenge unless the
 * request carries `user:password`, and forwards the rest to `upstream`.
 */
export async function startBasicAuthProxy(upstream: string, user: string, password: string, blobStorage?: BlobStorage): Promise<BasicAuthProxy> {
  const [upstreamHost, upstreamPort] = upstream.split(':');
  const server = createServer((req, res) => {
    const given = basicUser(req);
    if (!given || given.user !== user || given.password !== password) {
      res.writeHead(401, { 'www-authenticate': 'Basic realm="vmctr-test"', 'content-type': 'application/json' })
        .end('{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}');
      return;
    }
    if (blobStorage && req.method === 'GET' && /\/blobs\/sha256:/.test(req.url ?? '')) {
      res.writeHead(307, { location: `${blobStorage.origin}/blob?path=${encodeURIComponent(req.url ?? '')}` }).end();
      return;
    }
    const headers = { ...req.headers };
    delete headers.authorization;
    const forward = request({ host: upstreamHost, port: Number(upstreamPort), path: req.url, method: req.method, headers }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    });
    forward.on('error', () => res.writeHead(502).end());
    req.pipe(forward);
  });
  const port = await listen(server);
  return { host: `127.0.0.1:${port}`, close: () => new Promise((resolve) => server.close(() => resolve())) };
}
