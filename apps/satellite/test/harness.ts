import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { getFreePort, runCommand, spawnProcess, waitForHttp } from '@edge/testkit';
import type { ManagedProcess, TestImages } from '@edge/testkit';
import { request } from 'undici';

const repositoryRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
export const SATELLITE_MAIN = join(repositoryRoot, 'apps/satellite/dist/main.js');
export const GROUND_CONTROL_MAIN = join(repositoryRoot, 'apps/ground-control/dist/main.js');

/** Admin password given to Ground Control through GC_ADMIN_PASSWORD (at least 12 characters). */
const ADMIN_PASSWORD = 'satellite-tests-admin';
/**
 * Time allowed until a spawned service's readiness URL returns 200, in ms. Ground Control on
 * PGlite took about 10 s on an idle 2-core machine and over 30 s with other test suites running.
 */
const READY_TIMEOUT_MS = 90_000;

/** Polls `check` every 100 ms until it returns a value other than undefined or false. */
export async function waitFor<T>(
  description: string,
  check: () => Promise<T | undefined | false> | T | undefined | false,
  timeoutMs = 60_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await check();
      if (value !== undefined && value !== false) return value;
    } catch (error) {
      lastError = error;
    }
    await new Promise((done) => setTimeout(done, 100));
  }
  throw new Error(
    `Timed out after ${timeoutMs} ms waiting for ${description}${lastError instanceof Error ? `: ${lastError.message}` : ''}`,
  );
}

export interface GroundControlHandle {
  url: string;
  port: number;
  process: ManagedProcess;
  api<T = unknown>(method: string, path: string, body?: unknown): Promise<T>;
  stop(): Promise<void>;
  /** Starts it again on the same port and data folder. */
  start(): Promise<void>;
  cleanup(): Promise<void>;
}

/** Spawns the built Ground Control on PGlite in a temp folder and logs in as admin. */
export async function startGroundControl(): Promise<GroundControlHandle> {
  const dataDir = await mkdtemp(join(tmpdir(), 'satellite-test-gc-'));
  const port = await getFreePort();
  const url = `http://127.0.0.1:${port}`;
  let token = '';
  let proc: ManagedProcess | undefined;

  const start = async (): Promise<void> => {
    // Without DATABASE_URL Ground Control runs on PGlite in its data folder.
    const { DATABASE_URL: _unused, ...inherited } = process.env;
    proc = spawnProcess('node', [GROUND_CONTROL_MAIN], {
      name: 'ground-control',
      env: {
        ...inherited,
        GC_HOST: '127.0.0.1',
        GC_PORT: String(port),
        GC_DATA_DIR: dataDir,
        GC_ADMIN_PASSWORD: ADMIN_PASSWORD,
        GC_LOG_LEVEL: 'warn',
        GC_RESOLVE_INTERVAL_SECONDS: '0',
      },
    });
    await waitForHttp(`${url}/readyz`, { timeoutMs: READY_TIMEOUT_MS, process: proc });
    const login = await call<{ token: string }>(url, '', 'POST', '/api/v1/auth/login', {
      username: 'admin',
      password: ADMIN_PASSWORD,
    });
    token = login.token;
  };
  await start();
  const handle: GroundControlHandle = {
    url,
    port,
    get process() {
      if (!proc) throw new Error('Ground Control is not running');
      return proc;
    },
    api: <T>(method: string, path: string, body?: unknown) =>
      call<T>(url, token, method, path, body),
    async stop() {
      await proc?.stop('SIGTERM', 10_000);
      proc = undefined;
    },
    start,
    async cleanup() {
      await handle.stop();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
  return handle;
}

async function call<T>(
  base: string,
  token: string,
  method: string,
  path: string,
  body?: unknown,
): Promise<T> {
  const response = await request(`${base}${path}`, {
    method: method as 'GET',
    headers: {
      ...(token ? { authorization: `Bearer ${token}` } : {}),
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
    },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await response.body.text();
  if (response.statusCode >= 400) {
    throw new Error(`${method} ${path} returned ${response.statusCode}: ${text.slice(0, 500)}`);
  }
  return (text ? JSON.parse(text) : undefined) as T;
}

export interface SatelliteHandle {
  process: ManagedProcess;
  dataDir: string;
  registryUrl: string;
  registryHost: string;
  metricsUrl: string;
  /** Contents of status.json. */
  status(): Promise<LocalStatusFile>;
  logLines(): Record<string, unknown>[];
}

export interface LocalStatusFile {
  pid: number;
  phase: string;
  appliedRevision: number;
  desiredRevision: number | null;
  revoked: boolean;
  groundControl: { reachable: boolean | null };
  artifacts: {
    localRepository: string;
    tag: string | null;
    digest: string;
    state: string;
    reason?: string;
    bytesDone: number;
    bytesTotal: number;
  }[];
}

/** Spawns `node apps/satellite/dist/main.js run` with settings from the environment. */
export async function startSatellite(options: {
  dataDir: string;
  groundControlUrl: string;
  token?: string;
  registry?: 'embedded' | 'external';
  registryUrl?: string;
  env?: Record<string, string>;
}): Promise<SatelliteHandle> {
  const registryPort = await getFreePort();
  const metricsPort = await getFreePort();
  const proc = spawnProcess('node', [SATELLITE_MAIN, 'run'], {
    name: 'satellite',
    env: {
      ...process.env,
      SATELLITE_GROUND_CONTROL_URL: options.groundControlUrl,
      SATELLITE_DATA_DIR: options.dataDir,
      SATELLITE_REGISTRY: options.registry ?? 'embedded',
      SATELLITE_REGISTRY_LISTEN: `127.0.0.1:${registryPort}`,
      SATELLITE_METRICS_LISTEN: `127.0.0.1:${metricsPort}`,
      SATELLITE_LOG_LEVEL: 'info',
      SATELLITE_MIN_FREE_BYTES: '0',
      ...(options.token ? { SATELLITE_TOKEN: options.token } : {}),
      ...(options.registryUrl ? { SATELLITE_REGISTRY_URL: options.registryUrl } : {}),
      ...options.env,
    },
  });
  const metricsUrl = `http://127.0.0.1:${metricsPort}`;
  await waitForHttp(`${metricsUrl}/healthz`, { timeoutMs: READY_TIMEOUT_MS, process: proc });
  const registryUrl =
    options.registry === 'external'
      ? (options.registryUrl ?? '')
      : `http://127.0.0.1:${registryPort}`;
  return {
    process: proc,
    dataDir: options.dataDir,
    registryUrl,
    registryHost: new URL(registryUrl).host,
    metricsUrl,
    async status() {
      return JSON.parse(
        await readFile(join(options.dataDir, 'status.json'), 'utf8'),
      ) as LocalStatusFile;
    },
    logLines() {
      return proc
        .output()
        .split('\n')
        .filter((line) => line.startsWith('{'))
        .map((line) => {
          try {
            return JSON.parse(line) as Record<string, unknown>;
          } catch {
            return {};
          }
        });
    },
  };
}

/** sha256 of `skopeo inspect --raw` of `host/ref`, the digest check the acceptance list names. */
export async function rawDigest(
  host: string,
  ref: string,
  credentials?: { username: string; password: string },
): Promise<string> {
  const { stdout } = await runCommand('skopeo', [
    'inspect',
    '--raw',
    '--tls-verify=false',
    ...(credentials ? ['--creds', `${credentials.username}:${credentials.password}`] : []),
    `docker://${host}/${ref}`,
  ]);
  return `sha256:${createHash('sha256').update(stdout).digest('hex')}`;
}

export async function newDataDir(): Promise<string> {
  return mkdtemp(join(tmpdir(), 'satellite-test-data-'));
}

/** Config and layer digests of a test image (for an index: of all its children), from its layout. */
export async function blobsOf(images: TestImages, name: string): Promise<string[]> {
  const image = images.images[name];
  if (!image) throw new Error(`unknown test image ${name}`);
  const read = async (digest: string): Promise<string[]> => {
    const path = join(images.layoutDir, 'blobs/sha256', digest.replace('sha256:', ''));
    const manifest = JSON.parse(await readFile(path, 'utf8')) as {
      config?: { digest: string };
      layers?: { digest: string }[];
      manifests?: { digest: string }[];
    };
    if (manifest.manifests)
      return (await Promise.all(manifest.manifests.map((child) => read(child.digest)))).flat();
    return [manifest.config?.digest ?? '', ...(manifest.layers ?? []).map((layer) => layer.digest)];
  };
  return read(image.digest);
}
