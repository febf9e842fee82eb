// Shared setup of the replication and resume benchmarks: the built Ground Control on PGlite,
// operator API calls, `satellite sync --once` and `satellite run` as child processes, the
// skopeo commands they are compared with, and per-process figures read from /proc.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { request } from 'undici';
import { z } from 'zod';
import {
  getFreePort,
  spawnProcess,
  waitForHttp,
  type ManagedProcess,
  type RegistryHandle,
  type TestImages,
} from '@edge/testkit';

const repositoryRoot = resolve(import.meta.dirname, '..', '..', '..');
export const SATELLITE_MAIN = join(repositoryRoot, 'apps', 'satellite', 'dist', 'main.js');
const GROUND_CONTROL_MAIN = join(repositoryRoot, 'apps', 'ground-control', 'dist', 'main.js');

/** Admin password handed to Ground Control through GC_ADMIN_PASSWORD (at least 12 characters). */
const ADMIN_PASSWORD = 'bench-replication-admin';
/**
 * Time allowed for a spawned service to become ready, in ms. Ground Control on PGlite took
 * about 10 s on an idle 2-core machine, 35 s at a load average of 24, and over 90 s when two
 * started at once at that load.
 */
const READY_TIMEOUT_MS = 240_000;
/** Interval of status.json polls while waiting for a reconcile, in ms. */
const STATUS_POLL_MS = 10;
/** skopeo's cache of blob locations; a cold skopeo run starts without it. */
export const SKOPEO_BLOB_INFO_CACHE = '/var/lib/containers/cache/blob-info-cache-v1.boltdb';

/** The image set of both benchmarks: every test-kit image that skopeo 1.9 can copy by tag. */
export const IMAGE_SET = [
  'base:1',
  'app-a:1',
  'app-a:2',
  'app-a:sig',
  'app-b:1',
  'multi:1',
  'large:1',
] as const;

export class BenchError extends Error {
  readonly code = 'BENCH_FAILED';
}

export interface Selection {
  registry: string;
  repository: string;
  tag: string;
}

/** Selections of the named test images from the registry called `registryName`. */
export function selectionsOf(
  images: TestImages,
  names: readonly string[],
  registryName: string,
): Selection[] {
  return names.map((name) => {
    const image = images.images[name];
    if (image === undefined) throw new BenchError(`the test kit built no image named ${name}`);
    return { registry: registryName, repository: image.repository, tag: image.tag };
  });
}

export interface GroundControl {
  url: string;
  api<T = unknown>(method: string, path: string, body?: unknown): Promise<T>;
  /** Stops the process and removes its data folder. */
  stop(): Promise<void>;
}

/** Spawns the built Ground Control on PGlite in a temp folder and logs in as admin. */
export async function startGroundControl(): Promise<GroundControl> {
  const dataDir = await mkdtemp(join(tmpdir(), 'bench-replication-gc-'));
  const port = await getFreePort();
  const url = `http://127.0.0.1:${port}`;
  // Without DATABASE_URL Ground Control runs on PGlite in its data folder.
  const { DATABASE_URL: _ignored, ...inherited } = process.env;
  const child = spawnProcess(process.execPath, [GROUND_CONTROL_MAIN], {
    name: 'ground-control',
    env: {
      ...inherited,
      GC_HOST: '127.0.0.1',
      GC_PORT: String(port),
      GC_DATA_DIR: dataDir,
      GC_ADMIN_PASSWORD: ADMIN_PASSWORD,
      GC_LOG_LEVEL: 'warn',
      // Scheduled resolution stays off, so every upstream request in a run comes from the run.
      GC_RESOLVE_INTERVAL_SECONDS: '0',
    },
  });
  const stop = async (): Promise<void> => {
    await child.stop('SIGTERM', 10_000);
    await rm(dataDir, { recursive: true, force: true });
  };
  try {
    await waitForHttp(`${url}/readyz`, { timeoutMs: READY_TIMEOUT_MS, process: child });
    const login = loginSchema.parse(
      await callApi(url, undefined, 'POST', '/api/v1/auth/login', {
        username: 'admin',
        password: ADMIN_PASSWORD,
      }),
    );
    return {
      url,
      api: async <T>(method: string, path: string, body?: unknown) =>
        (await callApi(url, login.token, method, path, body)) as T,
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}

const loginSchema = z.looseObject({ token: z.string() });
const createdSatelliteSchema = z.looseObject({
  joinToken: z.looseObject({ token: z.string() }),
});

async function callApi(
  base: string,
  token: string | undefined,
  method: string,
  path: string,
  body?: unknown,
): Promise<unknown> {
  const headers: Record<string, string> = {};
  if (token !== undefined) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const response = await request(`${base}${path}`, {
    method: method as 'GET',
    headers,
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await response.body.text();
  if (response.statusCode >= 400) {
    throw new BenchError(
      `Ground Control returned HTTP ${response.statusCode} to ${method} ${path}: ${text.slice(0, 500)}`,
    );
  }
  return text === '' ? undefined : JSON.parse(text);
}

/** Registers `upstreamUrl` as the `kind: oci` registry `name`, with basic-auth credentials. */
export async function createUpstream(
  gc: GroundControl,
  name: string,
  upstreamUrl: string,
  registry: RegistryHandle,
): Promise<void> {
  await gc.api('POST', '/api/v1/registries', {
    name,
    kind: 'oci',
    url: upstreamUrl,
    credential: { username: registry.username, password: registry.password },
  });
}

/** Creates a satellite in `group` and returns its join token. */
export async function createSatellite(
  gc: GroundControl,
  name: string,
  group: string,
): Promise<string> {
  const body = await gc.api('POST', '/api/v1/satellites', { name, groups: [group] });
  return createdSatelliteSchema.parse(body).joinToken.token;
}

/** Registry a satellite writes to: its embedded one, or an external one by URL. */
export type SiteRegistry = { kind: 'embedded' } | { kind: 'external'; url: string };

export interface SatelliteSite {
  name: string;
  dataDir: string;
  token: string;
  registry: SiteRegistry;
}

/**
 * Arguments of `node` for a satellite command. BENCH_SATELLITE_NODE_ARGS (split at spaces)
 * goes before the entry, e.g. `--cpu-prof --cpu-prof-dir=DIR`, which Node 20 rejects in
 * NODE_OPTIONS.
 */
export function satelliteArgs(command: string[]): string[] {
  const nodeArgs = (process.env.BENCH_SATELLITE_NODE_ARGS ?? '').split(' ').filter(Boolean);
  return [...nodeArgs, SATELLITE_MAIN, ...command];
}

/** Environment of a satellite process for `site`; the token is ignored once it has joined. */
export async function satelliteEnv(
  gc: GroundControl,
  site: SatelliteSite,
): Promise<NodeJS.ProcessEnv> {
  const registryPort = await getFreePort();
  const metricsPort = await getFreePort();
  return {
    ...process.env,
    SATELLITE_GROUND_CONTROL_URL: gc.url,
    SATELLITE_DATA_DIR: site.dataDir,
    SATELLITE_TOKEN: site.token,
    SATELLITE_REGISTRY: site.registry.kind,
    ...(site.registry.kind === 'external' ? { SATELLITE_REGISTRY_URL: site.registry.url } : {}),
    SATELLITE_REGISTRY_LISTEN: `127.0.0.1:${registryPort}`,
    SATELLITE_METRICS_LISTEN: `127.0.0.1:${metricsPort}`,
    SATELLITE_LOG_LEVEL: 'warn',
    SATELLITE_MIN_FREE_BYTES: '0',
  };
}

/**
 * Removes what a satellite copied (store, partial downloads, placements, status) and keeps its
 * identity, so that the next run is cold without a new join.
 */
export async function resetSatelliteData(dataDir: string): Promise<void> {
  for (const entry of [
    'store',
    'partial',
    'placements.json',
    'status.json',
    'desired-state.json',
  ]) {
    await rm(join(dataDir, entry), { recursive: true, force: true });
  }
}

const localStatusSchema = z.looseObject({
  phase: z.string(),
  appliedRevision: z.number(),
  desiredRevision: z.number().nullable(),
  artifacts: z.array(z.looseObject({ state: z.string() })),
});
export type LocalStatus = z.infer<typeof localStatusSchema>;

/** Reads status.json, or returns undefined while the satellite has written none. */
export async function readLocalStatus(dataDir: string): Promise<LocalStatus | undefined> {
  let text: string;
  try {
    text = await readFile(join(dataDir, 'status.json'), 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  return localStatusSchema.parse(JSON.parse(text));
}

/**
 * Polls status.json until the satellite is in sync at a revision of at least `minRevision`
 * with at least `expectedArtifacts` artifacts present. Artifacts that left the desired state
 * may stay listed until their removal grace period ends.
 */
export async function waitInSync(
  dataDir: string,
  minRevision: number,
  expectedArtifacts: number,
  timeoutMs: number,
  child?: ManagedProcess,
): Promise<LocalStatus> {
  const deadline = performance.now() + timeoutMs;
  let last: LocalStatus | undefined;
  while (performance.now() < deadline) {
    last = await readLocalStatus(dataDir).catch(() => undefined);
    if (
      last !== undefined &&
      last.phase === 'in-sync' &&
      last.appliedRevision >= minRevision &&
      last.desiredRevision === last.appliedRevision &&
      last.artifacts.filter((artifact) => artifact.state === 'present').length >= expectedArtifacts
    ) {
      return last;
    }
    await new Promise((done) => setTimeout(done, STATUS_POLL_MS));
  }
  const output = child === undefined ? '' : `; satellite output:\n${child.output()}`;
  throw new BenchError(
    `satellite in ${dataDir} was not in sync at revision ${minRevision} with ` +
      `${expectedArtifacts} artifacts within ${timeoutMs} ms; last status ` +
      `${JSON.stringify(last ?? null).slice(0, 500)}${output}`,
  );
}

/** Writes skopeo's sync YAML for the image set on `sourceHost` and returns its path. */
export async function writeSkopeoSyncFile(
  dir: string,
  sourceHost: string,
  images: TestImages,
  credentials: { username: string; password: string },
): Promise<string> {
  const tagsByRepository = new Map<string, string[]>();
  for (const name of IMAGE_SET) {
    const image = images.images[name];
    if (image === undefined) throw new BenchError(`the test kit built no image named ${name}`);
    tagsByRepository.set(image.repository, [
      ...(tagsByRepository.get(image.repository) ?? []),
      image.tag,
    ]);
  }
  const lines = [
    `${sourceHost}:`,
    '  tls-verify: false',
    `  credentials: { username: ${JSON.stringify(credentials.username)}, password: ${JSON.stringify(credentials.password)} }`,
    '  images:',
    ...[...tagsByRepository].map(
      ([repository, tags]) => `    ${repository}: ${JSON.stringify(tags)}`,
    ),
  ];
  const path = join(dir, 'sync.yml');
  await writeFile(path, `${lines.join('\n')}\n`);
  return path;
}

/**
 * Arguments of `skopeo sync` into `destinationHost`. Without `--scoped` skopeo keeps only the
 * last path component of each source repository, so the destination names the `test` namespace.
 */
export function skopeoSyncArgs(syncFile: string, destinationHost: string): string[] {
  return [
    'sync',
    '--src',
    'yaml',
    '--dest',
    'docker',
    '--dest-tls-verify=false',
    '--all',
    '--preserve-digests',
    syncFile,
    `${destinationHost}/test`,
  ];
}

/** Clock ticks per second of /proc/<pid>/stat times (USER_HZ, 100 on Linux). */
const USER_HZ = 100;

/** User plus system CPU time of a running process, in ms, from /proc/<pid>/stat. */
export async function processCpuMs(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name, which sits in brackets and may contain spaces.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const user = Number(fields[11]);
  const system = Number(fields[12]);
  return ((user + system) * 1000) / USER_HZ;
}

/** Peak RSS (VmHWM) of a running process in bytes, since start or the last resetPeakRss. */
export async function processPeakRssBytes(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const match = /^VmHWM:\s+(\d+) kB$/m.exec(status);
  if (match === null) throw new BenchError(`/proc/${pid}/status has no VmHWM line`);
  return Number(match[1]) * 1024;
}

/** Resets VmHWM to the current RSS (Linux 4.0 and later: write 5 to clear_refs). */
export async function resetPeakRss(pid: number): Promise<void> {
  await writeFile(`/proc/${pid}/clear_refs`, '5');
}

/** Reads `satellite_downloaded_bytes_total` from a satellite's metrics server. */
export async function downloadedBytesTotal(metricsUrl: string): Promise<number> {
  const response = await request(`${metricsUrl}/metrics`);
  const text = await response.body.text();
  const match = /^satellite_downloaded_bytes_total(?:\{[^}]*\})? (\S+)$/m.exec(text);
  if (match === null) {
    throw new BenchError(`${metricsUrl}/metrics has no satellite_downloaded_bytes_total counter`);
  }
  return Number(match[1]);
}

/** Returns the value after `flag` on the command line, or undefined without the flag. */
export function optionValue(flag: string): string | undefined {
  const index = process.argv.indexOf(flag);
  return index === -1 ? undefined : process.argv[index + 1];
}
