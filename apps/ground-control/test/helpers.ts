import { createHash, randomUUID } from 'node:crypto';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { PGlite } from '@electric-sql/pglite';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { SignJWT, exportJWK, generateKeyPair, type CryptoKey } from 'jose';
import pino from 'pino';
import { provisionTestDatabase } from '@edge/testkit';
import { PROTOCOL_VERSION, SATELLITE_JWT_AUDIENCE } from '@edge/contract';
import { REDACTED_LOG_PATHS, buildApp, type BuildOptions } from '../src/app.js';
import { loadConfig, type Config } from '../src/config.js';
import type { AppContext } from '../src/context.js';
import {
  MIGRATIONS_FOLDER,
  migratePostgres,
  openDatabase,
  openPglite,
  type Database,
} from '../src/db/database.js';

export const ADMIN_PASSWORD = 'admin-password-for-tests';
export const TEST_ENCRYPTION_KEY = Buffer.alloc(32, 7).toString('base64');

/** One database per test file: PGlite in memory, or a copy of a migrated PostgreSQL template. */
export interface TestDatabaseHandle {
  /** Opens a connection to the file's database; two calls give two independent app backends. */
  open(): Promise<Database>;
  close(): Promise<void>;
}

export async function migrationsKey(): Promise<string> {
  const hash = createHash('sha256');
  for (const file of (await readdir(MIGRATIONS_FOLDER)).sort()) {
    if (file.endsWith('.sql')) hash.update(await readFile(join(MIGRATIONS_FOLDER, file)));
  }
  return `ground-control:${hash.digest('hex')}`;
}

export async function provisionDatabase(): Promise<TestDatabaseHandle> {
  const provisioned = await provisionTestDatabase({
    templateKey: await migrationsKey(),
    migrate: migratePostgres,
  });
  const quiet = pino({ level: 'silent' });
  if (provisioned.kind === 'postgres') {
    const opened: Database[] = [];
    return {
      async open() {
        const database = await openDatabase({ url: provisioned.url, logger: quiet, poolSize: 5 });
        opened.push(database);
        return database;
      },
      async close() {
        await Promise.all(opened.map((database) => database.close()));
        await provisioned.drop();
      },
    };
  }
  // One PGlite boot per file: apps built from it share the single in-memory instance.
  const client = await PGlite.create();
  return {
    open: () => Promise.resolve(openPglite(client, false)),
    close: () => client.close(),
  };
}

export function testConfig(overrides: Record<string, string> = {}, dataDir?: string): Config {
  return loadConfig({
    GC_ENCRYPTION_KEY: TEST_ENCRYPTION_KEY,
    GC_ADMIN_PASSWORD: ADMIN_PASSWORD,
    GC_DATA_DIR: dataDir ?? join(tmpdir(), 'gc-test-unused'),
    GC_RESOLVE_INTERVAL_SECONDS: '0',
    GC_LOG_LEVEL: 'trace',
    ...overrides,
  });
}

export interface TestApp {
  app: FastifyInstance;
  context: AppContext;
  /** Every log line written so far, as raw JSON text. */
  logs: string[];
  close(): Promise<void>;
}

export async function startApp(
  databases: TestDatabaseHandle,
  options: { env?: Record<string, string>; build?: BuildOptions } = {},
): Promise<TestApp> {
  const dataDir = await mkdtemp(join(tmpdir(), 'gc-test-'));
  const config = testConfig(options.env, dataDir);
  const logs: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      logs.push(chunk.toString('utf8'));
      callback();
    },
  });
  const logger = pino(
    { level: 'trace', redact: { paths: REDACTED_LOG_PATHS, censor: '[redacted]' } },
    stream,
  );
  const database = await databases.open();
  const { app, context } = await buildApp(config, {
    database,
    closeDatabase: false,
    logger,
    jobs: false,
    ...options.build,
  });
  await app.ready();
  return {
    app,
    context,
    logs,
    async close() {
      await app.close();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

export function json<T = Record<string, unknown>>(
  response: Pick<LightMyRequestResponse, 'body'>,
): T {
  return JSON.parse(response.body) as T;
}

export async function login(
  app: FastifyInstance,
  username: string,
  password: string,
): Promise<string> {
  const response = await app.inject({
    method: 'POST',
    url: '/api/v1/auth/login',
    payload: { username, password },
  });
  if (response.statusCode !== 200) throw new Error(`login failed: ${response.body}`);
  return json<{ token: string }>(response).token;
}

/** Throws when a fixture request in a setup hook did not return the expected status. */
export function assertStatus(response: LightMyRequestResponse, status: number): void {
  if (response.statusCode !== status) {
    throw new Error(`expected status ${status}, got ${response.statusCode}: ${response.body}`);
  }
}

export function bearer(token: string): Record<string, string> {
  return { authorization: `Bearer ${token}` };
}

/** A satellite's identity as the satellite daemon keeps it: an Ed25519 key pair. */
export interface SatelliteIdentity {
  id: string;
  name: string;
  privateKey: CryptoKey;
  publicJwk: Record<string, unknown>;
}

export async function generateIdentity(): Promise<Omit<SatelliteIdentity, 'id' | 'name'>> {
  const { privateKey, publicKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519' });
  return { privateKey, publicJwk: { ...(await exportJWK(publicKey)) } };
}

export async function signSatelliteJwt(
  identity: Pick<SatelliteIdentity, 'id' | 'privateKey'>,
  options: {
    nowSeconds?: number;
    lifetimeSeconds?: number;
    audience?: string;
    subject?: string;
  } = {},
): Promise<string> {
  const iat = options.nowSeconds ?? Math.floor(Date.now() / 1_000);
  return new SignJWT({})
    .setProtectedHeader({ alg: 'EdDSA', typ: 'JWT' })
    .setIssuer(identity.id)
    .setSubject(options.subject ?? identity.id)
    .setAudience(options.audience ?? SATELLITE_JWT_AUDIENCE)
    .setIssuedAt(iat)
    .setExpirationTime(iat + (options.lifetimeSeconds ?? 120))
    .setJti(randomUUID())
    .sign(identity.privateKey);
}

/** Creates a satellite through the operator API and joins it; returns its identity. */
export async function createAndJoin(
  app: FastifyInstance,
  adminToken: string,
  body: Record<string, unknown>,
): Promise<SatelliteIdentity> {
  const created = await app.inject({
    method: 'POST',
    url: '/api/v1/satellites',
    headers: bearer(adminToken),
    payload: body,
  });
  if (created.statusCode !== 201) throw new Error(`create failed: ${created.body}`);
  const { joinToken } = json<{ joinToken: { token: string } }>(created);
  const keys = await generateIdentity();
  const joined = await app.inject({
    method: 'POST',
    url: '/satellite/v1/join',
    payload: {
      protocolVersion: PROTOCOL_VERSION,
      token: joinToken.token,
      publicKey: keys.publicJwk,
      hostname: 'site-host',
      version: '0.1.0',
    },
  });
  if (joined.statusCode !== 200) throw new Error(`join failed: ${joined.body}`);
  const { satelliteId, name } = json<{ satelliteId: string; name: string }>(joined);
  return { id: satelliteId, name, ...keys };
}

export function statusReport(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    protocolVersion: PROTOCOL_VERSION,
    appliedRevision: 0,
    phase: 'syncing',
    artifacts: [],
    storage: { usedBytes: 0, freeBytes: 1_000_000 },
    version: '0.1.0',
    errors: [],
    ...overrides,
  };
}
