// A real distribution registry (Debian's docker-registry) on loopback, for tests.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { connect, createServer } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

export interface TokenAuthSettings {
  readonly realm: string;
  readonly service: string;
  readonly issuer: string;
  readonly rootCertBundle: string;
}

export interface Registry {
  /** `127.0.0.1:PORT` */
  readonly host: string;
  readonly dataDir: string;
  /** How many successful GETs of this blob the registry has served. */
  blobDownloads(digest: string): Promise<number>;
  stop(): Promise<void>;
}

export interface TlsSettings {
  readonly certificate: string;
  readonly key: string;
}

function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** Starts docker-registry on a free loopback port, serving `dataDir` (shared between instances if given). */
export async function startRegistry(workDir: string, options: { dataDir?: string; tokenAuth?: TokenAuthSettings; tls?: TlsSettings } = {}): Promise<Registry> {
  const port = await freePort();
  const dataDir = options.dataDir ?? join(workDir, 'registry-data');
  await mkdir(dataDir, { recursive: true });
  const auth = options.tokenAuth
    ? `auth:\n  token:\n    realm: ${options.tokenAuth.realm}\n    service: ${options.tokenAuth.service}\n    issuer: ${options.tokenAuth.issuer}\n    rootcertbundle: ${options.tokenAuth.rootCertBundle}\n`
    : '';
  const tls = options.tls ? `  tls:\n    certificate: ${options.tls.certificate}\n    key: ${options.tls.key}\n` : '';
  const configPath = join(workDir, `registry-${port}.yml`);
  await writeFile(configPath, `version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: false\nstorage:\n  filesystem:\n    rootdirectory: ${dataDir}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:${port}\n${tls}${auth}`);
  const logPath = join(workDir, `registry-${port}.log`);
  const log: Buffer[] = [];
  const child: ChildProcess = spawn('/usr/bin/docker-registry', ['serve', configPath], { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout!.on('data', (chunk: Buffer) => log.push(chunk));
  child.stderr!.on('data', (chunk: Buffer) => log.push(chunk));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  for (let attempt = 0; ; attempt++) {
    if (await listening(port)) break;
    if (attempt > 100 || child.exitCode !== null) throw new Error(`docker-registry did not start: ${Buffer.concat(log).toString()}`);
    await sleep(50);
  }
  return {
    host: `127.0.0.1:${port}`,
    dataDir,
    async blobDownloads(digest) {
      const text = Buffer.concat(log).toString();
      await writeFile(logPath, text);
      return text.split('\n').filter((line) => line.includes(`"GET /v2/`) && line.includes(`/blobs/${digest} `) && / 200 \d+ /.test(line)).length;
    },
    async stop() {
      child.kill('SIGTERM');
      await exited;
    },
  };
}

/** The file the registry stores a blob's content in: tests corrupt it to play a hostile registry. */
export function registryBlobPath(registry: Registry, digest: string): string {
  const hex = digest.slice('sha256:'.length);
  return join(registry.dataDir, 'docker', 'registry', 'v2', 'blobs', 'sha256', hex.slice(0, 2), hex, 'data');
}

export async function readRegistryBlob(registry: Registry, digest: string): Promise<Buffer> {
  return readFile(registryBlobPath(registry, digest));
}
