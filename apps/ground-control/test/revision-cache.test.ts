import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import pg from 'pg';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  getFreePort,
  provisionTestDatabase,
  spawnProcess,
  waitForHttp,
  type ManagedProcess,
} from '@edge/testkit';
import { LISTEN_APPLICATION_NAME, migratePostgres, openDatabase } from '../src/db/database.js';
import {
  ADMIN_PASSWORD,
  TEST_ENCRYPTION_KEY,
  bearer,
  createAndJoin,
  login,
  migrationsKey,
  signSatelliteJwt,
  startApp,
  type SatelliteIdentity,
  type TestApp,
} from './helpers.js';

// The revision cache on real PostgreSQL: one Ground Control in this process serves the
// satellite, a second one spawned from the built entry point makes the changes, and the only
// path between them is PostgreSQL's NOTIFY. The LISTEN connection is cut with
// pg_terminate_backend, which a PGlite database cannot do, so this file always uses PostgreSQL.

const ENTRY = resolve(import.meta.dirname, '../dist/main.js');
const ADMIN_URL =
  process.env.TEST_DATABASE_URL ?? 'postgres://edge_test:edge_test@127.0.0.1:5432/edge_test';
/** Start-up of the spawned process: migrations are done, so this is mostly Node's boot. */
const START_TIMEOUT_MS = 60_000;
/** How long a notification may take to arrive, in milliseconds; loopback takes a few. */
const NOTIFY_TIMEOUT_MS = 10_000;

let databaseUrl: string;
let dropDatabase: () => Promise<void>;
let local: TestApp;
let remote: ManagedProcess;
let remoteUrl: string;
let workDir: string;
let admin: string;

beforeAll(async () => {
  const provisioned = await provisionTestDatabase({
    templateKey: await migrationsKey(),
    migrate: migratePostgres,
    env: { TEST_DATABASE_URL: ADMIN_URL },
  });
  if (provisioned.kind !== 'postgres') throw new Error('expected a PostgreSQL test database');
  databaseUrl = provisioned.url;
  dropDatabase = () => provisioned.drop();
  const quiet = pino({ level: 'silent' });
  const opened: Array<{ close(): Promise<void> }> = [];
  local = await startApp({
    async open() {
      const database = await openDatabase({ url: databaseUrl, logger: quiet, poolSize: 5 });
      opened.push(database);
      return database;
    },
    async close() {
      for (const database of opened) await database.close();
    },
  });
  workDir = await mkdtemp(join(tmpdir(), 'gc-revision-cache-'));
  const port = await getFreePort();
  remoteUrl = `http://127.0.0.1:${port}`;
  remote = spawnProcess(process.execPath, [ENTRY], {
    cwd: workDir,
    name: 'ground-control',
    env: {
      PATH: process.env.PATH ?? '',
      DATABASE_URL: databaseUrl,
      GC_HOST: '127.0.0.1',
      GC_PORT: String(port),
      GC_DATA_DIR: workDir,
      GC_ENCRYPTION_KEY: TEST_ENCRYPTION_KEY,
      GC_ADMIN_PASSWORD: ADMIN_PASSWORD,
      GC_LOG_LEVEL: 'warn',
      GC_RESOLVE_INTERVAL_SECONDS: '0',
      GC_CREDENTIAL_INTERVAL_SECONDS: '0',
    },
  });
  await waitForHttp(`${remoteUrl}/readyz`, { timeoutMs: START_TIMEOUT_MS, process: remote });
  admin = await login(local.app, 'admin', ADMIN_PASSWORD);
});

afterAll(async () => {
  await remote?.stop('SIGTERM', 10_000);
  await local?.close();
  await dropDatabase?.();
  if (workDir !== undefined) await rm(workDir, { recursive: true, force: true });
});

async function poll(satellite: SatelliteIdentity, etag: string | undefined) {
  const token = await signSatelliteJwt(satellite);
  const headers: Record<string, string> = bearer(token);
  if (etag !== undefined) headers['if-none-match'] = etag;
  return local.app.inject({ method: 'GET', url: '/satellite/v1/state', headers });
}

/** Polls until the state request returns 200, or returns the last status at the timeout. */
async function pollUntilChanged(satellite: SatelliteIdentity, etag: string): Promise<number> {
  const deadline = Date.now() + NOTIFY_TIMEOUT_MS;
  let status = 304;
  while (Date.now() < deadline) {
    status = (await poll(satellite, etag)).statusCode;
    if (status !== 304) return status;
    await new Promise((settle) => setTimeout(settle, 50));
  }
  return status;
}

async function waitForListening(expected: boolean): Promise<void> {
  const deadline = Date.now() + NOTIFY_TIMEOUT_MS;
  while (local.context.database.listening !== expected) {
    if (Date.now() > deadline) throw new Error(`LISTEN connection never became ${expected}`);
    await new Promise((settle) => setTimeout(settle, 10));
  }
}

async function execute(query: string, values: unknown[] = []): Promise<void> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    await client.query(query, values);
  } finally {
    await client.end();
  }
}

/** Joins a satellite and polls it once with its ETag, so the local cache contains its revision. */
async function cachedSatellite(
  name: string,
): Promise<{ satellite: SatelliteIdentity; etag: string }> {
  const satellite = await createAndJoin(local.app, admin, { name });
  const first = await poll(satellite, undefined);
  expect(first.statusCode).toBe(200);
  const etag = String(first.headers['etag']);
  expect((await poll(satellite, etag)).statusCode).toBe(304);
  expect(local.context.states.revisions.get(satellite.id)).toBe(Number(etag.replaceAll('"', '')));
  return { satellite, etag };
}

describe('revision cache on PostgreSQL', () => {
  it('drops a revision changed by another process', async () => {
    const { satellite, etag } = await cachedSatellite('cached-remote');
    const remoteAdmin = await fetch(`${remoteUrl}/api/v1/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username: 'admin', password: ADMIN_PASSWORD }),
    });
    const { token } = (await remoteAdmin.json()) as { token: string };
    const changed = await fetch(`${remoteUrl}/api/v1/satellites/cached-remote`, {
      method: 'PATCH',
      headers: { ...bearer(token), 'content-type': 'application/json' },
      body: JSON.stringify({ groups: [] }),
    });
    await changed.arrayBuffer();
    expect(changed.status).toBe(200);

    expect(await pollUntilChanged(satellite, etag)).toBe(200);
    const fresh = await poll(satellite, undefined);
    expect(fresh.headers['etag']).not.toBe(etag);
  });

  it('bypasses and clears the cache across a LISTEN reconnect', async () => {
    const { satellite, etag } = await cachedSatellite('cached-reconnect');
    await execute(
      'select pg_terminate_backend(pid) from pg_stat_activity where application_name = $1 and datname = current_database()',
      [LISTEN_APPLICATION_NAME],
    );
    await waitForListening(false);
    // This change's notification has no listener, as when PostgreSQL restarts.
    await execute('update satellites set desired_revision = desired_revision + 1 where id = $1', [
      satellite.id,
    ]);
    expect((await poll(satellite, etag)).statusCode).toBe(200);

    await waitForListening(true);
    expect(local.context.states.revisions.get(satellite.id)).toBeUndefined();
    expect((await poll(satellite, etag)).statusCode).toBe(200);
  });
});
