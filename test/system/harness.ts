// Process harness of the system tests: a fresh PostgreSQL database, Ground Control replicas
// built from apps/ground-control/dist, satellites built from apps/satellite/dist, and skopeo
// checks against the registries. Every server listens on 127.0.0.1.
import { createHash, createPrivateKey, randomBytes, randomUUID, sign } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { getFreePort, runCommand, spawnProcess, waitForHttp } from '@edge/testkit';
import type { ManagedProcess, TestImages } from '@edge/testkit';

const REPO_ROOT = resolve(import.meta.dirname, '../..');
const GROUND_CONTROL_MAIN = join(REPO_ROOT, 'apps/ground-control/dist/main.js');
const SATELLITE_MAIN = join(REPO_ROOT, 'apps/satellite/dist/main.js');

/** Connection URL of the PostgreSQL server that gets one database per test file. */
const POSTGRES_ADMIN_URL =
  process.env.TEST_DATABASE_URL ?? 'postgres://edge_test:edge_test@127.0.0.1:5432/edge_test';
/** Password of the `admin` account, set through GC_ADMIN_PASSWORD (at least 12 characters). */
export const ADMIN_PASSWORD = 'system-tests-admin-password';
/** Time a spawned service gets until its readiness URL returns 200, in ms (2 busy cores). */
const READY_TIMEOUT_MS = 90_000;
/** Time Ground Control gets to exit after SIGTERM; it closes within 10 s by design, in ms. */
const GROUND_CONTROL_STOP_TIMEOUT_MS = 15_000;
/** Interval between two checks of a condition in `waitUntil`, in ms. */
const POLL_INTERVAL_MS = 200;

/** Polls `check` until it returns something other than undefined or false. */
export async function waitUntil<T>(
  description: string,
  check: () => Promise<T | undefined | false>,
  timeoutMs: number,
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
    await new Promise((done) => setTimeout(done, POLL_INTERVAL_MS));
  }
  const reason = lastError instanceof Error ? `; last error: ${lastError.message}` : '';
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${description}${reason}`);
}

export interface TestDatabaseHandle {
  url: string;
  drop(): Promise<void>;
}

/** Creates an empty database on the local PostgreSQL; Ground Control migrates it at start. */
export async function createDatabase(): Promise<TestDatabaseHandle> {
  const name = `edge_system_${randomBytes(6).toString('hex')}`;
  await runCommand('psql', [POSTGRES_ADMIN_URL, '-q', '-c', `CREATE DATABASE ${name}`]);
  const url = new URL(POSTGRES_ADMIN_URL);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    async drop() {
      await runCommand('psql', [
        POSTGRES_ADMIN_URL,
        '-q',
        '-c',
        `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`,
      ]);
    },
  };
}

export interface ApiResponse<T> {
  status: number;
  body: T;
}

/** Sends one JSON request and returns the status and the parsed body (undefined when empty). */
export async function requestJson<T = unknown>(
  url: string,
  init: { method?: string; token?: string; body?: unknown } = {},
): Promise<ApiResponse<T>> {
  const headers: Record<string, string> = {};
  if (init.token !== undefined) headers.authorization = `Bearer ${init.token}`;
  if (init.body !== undefined) headers['content-type'] = 'application/json';
  const response = await fetch(url, {
    method: init.method ?? 'GET',
    headers,
    ...(init.body !== undefined ? { body: JSON.stringify(init.body) } : {}),
  });
  const text = await response.text();
  return { status: response.status, body: (text ? JSON.parse(text) : undefined) as T };
}

export interface GroundControlReplica {
  url: string;
  running(): boolean;
  start(): Promise<void>;
  stop(): Promise<void>;
}

/** One Ground Control process on PostgreSQL, restartable on the same port. */
export async function createGroundControlReplica(
  databaseUrl: string,
  encryptionKey: string,
): Promise<GroundControlReplica> {
  const port = await getFreePort();
  const dataDir = await mkdtemp(join(tmpdir(), 'system-gc-'));
  const url = `http://127.0.0.1:${port}`;
  let child: ManagedProcess | undefined;
  return {
    url,
    running: () => child !== undefined,
    async start() {
      child = spawnProcess('node', [GROUND_CONTROL_MAIN], {
        name: `ground-control on port ${port}`,
        env: {
          ...process.env,
          GC_HOST: '127.0.0.1',
          GC_PORT: String(port),
          GC_DATA_DIR: dataDir,
          DATABASE_URL: databaseUrl,
          GC_ENCRYPTION_KEY: encryptionKey,
          GC_ADMIN_PASSWORD: ADMIN_PASSWORD,
          GC_LOG_LEVEL: 'warn',
          // Re-resolution runs on demand in these tests, so the schedule is off.
          GC_RESOLVE_INTERVAL_SECONDS: '0',
        },
      });
      await waitForHttp(`${url}/readyz`, { timeoutMs: READY_TIMEOUT_MS, process: child });
    },
    async stop() {
      await child?.stop('SIGTERM', GROUND_CONTROL_STOP_TIMEOUT_MS);
      child = undefined;
    },
  };
}

/** Generates a value for GC_ENCRYPTION_KEY: 32 random bytes in base64. */
export function newEncryptionKey(): string {
  return randomBytes(32).toString('base64');
}

/** An operator API client logged in as `admin`. */
export interface Operator {
  call<T = unknown>(method: string, path: string, body?: unknown): Promise<ApiResponse<T>>;
  /** Like `call`, but throws unless the status is 2xx. */
  send<T = unknown>(method: string, path: string, body?: unknown): Promise<T>;
}

export async function loginOperator(baseUrl: string): Promise<Operator> {
  const login = await requestJson<{ token: string }>(`${baseUrl}/api/v1/auth/login`, {
    method: 'POST',
    body: { username: 'admin', password: ADMIN_PASSWORD },
  });
  if (login.status !== 200) throw new Error(`admin login failed with status ${login.status}`);
  const token = login.body.token;
  const call = <T>(method: string, path: string, body?: unknown) =>
    requestJson<T>(`${baseUrl}/api/v1${path}`, { method, token, body });
  return {
    call,
    async send<T>(method: string, path: string, body?: unknown) {
      const response = await call<T>(method, path, body);
      if (response.status < 200 || response.status > 299) {
        throw new Error(
          `${method} ${path} returned ${response.status}: ${JSON.stringify(response.body)}`,
        );
      }
      return response.body;
    },
  };
}

/** The part of the satellite's status.json these tests read. */
export interface LocalStatus {
  phase: string;
  appliedRevision: number;
  desiredRevision: number | null;
  revoked: boolean;
  groundControl: { reachable: boolean | null };
  artifacts: { localRepository: string; tag: string | null; digest: string; state: string }[];
}

export interface UpstreamCredential {
  username: string;
  password: string;
}

export interface SatelliteProcess {
  name: string;
  dataDir: string;
  /** host:port of the site registry for skopeo references. */
  registryHost: string;
  /** Credentials of the site registry, when it needs them. */
  registryCredentials?: UpstreamCredential;
  status(): Promise<LocalStatus>;
  /** Pull credential of the first upstream in the stored desired state. */
  upstreamCredential(): Promise<UpstreamCredential>;
  /** Signs a request JWT with the satellite's own key, as the protocol prescribes. */
  signJwt(): Promise<string>;
  output(): string;
  stop(): Promise<void>;
}

/** Spawns `satellite run` with the embedded registry, or with an external registry. */
export async function startSatellite(options: {
  name: string;
  groundControlUrl: string;
  joinToken: string;
  external?: { url: string; host: string; username: string; password: string };
}): Promise<SatelliteProcess> {
  const dataDir = await mkdtemp(join(tmpdir(), `system-${options.name}-`));
  const registryPort = await getFreePort();
  const metricsPort = await getFreePort();
  const registryEnv: Record<string, string> = options.external
    ? {
        SATELLITE_REGISTRY: 'external',
        SATELLITE_REGISTRY_URL: options.external.url,
        SATELLITE_REGISTRY_USERNAME: options.external.username,
        SATELLITE_REGISTRY_PASSWORD: options.external.password,
      }
    : { SATELLITE_REGISTRY: 'embedded', SATELLITE_REGISTRY_LISTEN: `127.0.0.1:${registryPort}` };
  const child = spawnProcess('node', [SATELLITE_MAIN, 'run'], {
    name: `satellite ${options.name}`,
    env: {
      ...process.env,
      SATELLITE_GROUND_CONTROL_URL: options.groundControlUrl,
      SATELLITE_TOKEN: options.joinToken,
      SATELLITE_DATA_DIR: dataDir,
      SATELLITE_METRICS_LISTEN: `127.0.0.1:${metricsPort}`,
      SATELLITE_LOG_LEVEL: 'info',
      // The test folders share the tmp file system with other suites, so no free-space floor.
      SATELLITE_MIN_FREE_BYTES: '0',
      ...registryEnv,
    },
  });
  await waitForHttp(`http://127.0.0.1:${metricsPort}/healthz`, {
    timeoutMs: READY_TIMEOUT_MS,
    process: child,
  });
  const readJson = async <T>(file: string): Promise<T> =>
    JSON.parse(await readFile(join(dataDir, file), 'utf8')) as T;
  return {
    name: options.name,
    dataDir,
    registryHost: options.external ? options.external.host : `127.0.0.1:${registryPort}`,
    ...(options.external
      ? {
          registryCredentials: {
            username: options.external.username,
            password: options.external.password,
          },
        }
      : {}),
    status: () => readJson<LocalStatus>('status.json'),
    async upstreamCredential() {
      const stored = await readJson<{
        state: { upstreams: { credential: UpstreamCredential | null }[] };
      }>('desired-state.json');
      const credential = stored.state.upstreams[0]?.credential;
      if (!credential) throw new Error(`${options.name}: the desired state has no credential`);
      return { username: credential.username, password: credential.password };
    },
    async signJwt() {
      const { satelliteId: id } = await readJson<{ satelliteId: string }>('identity.json');
      const key = createPrivateKey(await readFile(join(dataDir, 'identity.key'), 'utf8'));
      const now = Math.floor(Date.now() / 1000);
      const encode = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url');
      const header = encode({ alg: 'EdDSA', typ: 'JWT' });
      const claims = encode({
        iss: id,
        sub: id,
        aud: 'ground-control',
        iat: now,
        exp: now + 60,
        jti: randomUUID(),
      });
      const signature = sign(null, Buffer.from(`${header}.${claims}`), key).toString('base64url');
      return `${header}.${claims}.${signature}`;
    },
    output: () => child.output(),
    async stop() {
      await child.stop('SIGTERM', 30_000);
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

/** sha256 of the manifest bytes that `skopeo inspect --raw` prints for `host/reference`. */
export async function rawDigest(
  host: string,
  reference: string,
  credentials?: UpstreamCredential,
): Promise<string> {
  const { stdout } = await runCommand(
    'skopeo',
    [
      'inspect',
      '--raw',
      '--tls-verify=false',
      ...(credentials ? ['--creds', `${credentials.username}:${credentials.password}`] : []),
      `docker://${host}/${reference}`,
    ],
    { secrets: credentials ? [credentials.password] : [] },
  );
  return `sha256:${createHash('sha256').update(stdout).digest('hex')}`;
}

/** Copies a test image from the OCI layout to `host/reference` with the given credentials. */
export async function pushImage(
  images: TestImages,
  name: string,
  host: string,
  reference: string,
  credentials: UpstreamCredential,
): Promise<void> {
  const image = images.images[name];
  if (!image) throw new Error(`test image ${name} is not in the layout`);
  await runCommand(
    'skopeo',
    [
      'copy',
      '--quiet',
      '--preserve-digests',
      '--dest-tls-verify=false',
      '--dest-creds',
      `${credentials.username}:${credentials.password}`,
      `oci:${images.layoutDir}:${image.layoutTag}`,
      `docker://${host}/${reference}`,
    ],
    { secrets: [credentials.password] },
  );
}

/** Returns the digest of a test image, or throws when the layout does not contain it. */
export function digestOf(images: TestImages, name: string): string {
  const image = images.images[name];
  if (!image) throw new Error(`test image ${name} is not in the layout`);
  return image.digest;
}
