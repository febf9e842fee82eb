// Ground Control for the fleet bench: a fresh PostgreSQL database, the built service spawned as
// `node apps/ground-control/dist/main.js`, and the operator API calls that set up the fleet.
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import pg from 'pg';
import { Pool } from 'undici';
import { z } from 'zod';
import {
  createdSatelliteSchema,
  groupSchema,
  loginResponseSchema,
  registrySchema,
  type Selection,
} from '@edge/contract';
import { getFreePort, spawnProcess, waitForHttp, type ManagedProcess } from '@edge/testkit';
import { forEachLimit } from './concurrency.js';
import { BenchError } from './satellite.js';

const GROUND_CONTROL_ENTRY = join(
  import.meta.dirname,
  '..',
  '..',
  '..',
  'apps',
  'ground-control',
  'dist',
  'main.js',
);
/** Ground Control runs migrations before /readyz turns 200; a cold start takes a few seconds. */
const READY_TIMEOUT_MS = 60_000;
/**
 * Time an operator call may take to respond, in milliseconds. A group change under 10,000
 * long polls took longer than undici's default of 300 s on a loaded 2-core machine.
 */
const OPERATOR_CALL_TIMEOUT_MS = 900_000;
/** Operator API calls in flight while creating satellites. */
export const CREATE_CONCURRENCY = 16;

export interface Database {
  url: string;
  /** `server_version` of the PostgreSQL server, e.g. `15.10 (Debian 15.10-0+deb12u1)`. */
  serverVersion: string;
  drop(): Promise<void>;
}

/** Creates an empty database named `edge_bench_fleet_<random>` on the server of `adminUrl`. */
export async function createDatabase(adminUrl: string): Promise<Database> {
  const name = `edge_bench_fleet_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  let serverVersion: string;
  try {
    await admin.query(`CREATE DATABASE ${name}`);
    const result = await admin.query<{ server_version: string }>('SHOW server_version');
    serverVersion = result.rows[0]?.server_version ?? 'unknown';
  } finally {
    await admin.end();
  }
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    serverVersion,
    drop: async () => {
      const client = new pg.Client({ connectionString: adminUrl });
      await client.connect();
      try {
        await client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } finally {
        await client.end();
      }
    },
  };
}

export interface GroundControlOptions {
  databaseUrl: string;
  dataDir: string;
  /** Node options before the entry, e.g. `--cpu-prof`. */
  nodeArgs?: string[];
  /** Port to listen on; a free one when absent. A restart passes the old one for its clients. */
  port?: number;
}

export interface GroundControl {
  url: string;
  process: ManagedProcess;
  adminPassword: string;
  stop(): Promise<void>;
}

/** Spawns Ground Control on a free loopback port and waits until /readyz returns 200. */
export async function startGroundControl(
  options: GroundControlOptions,
  secrets: { encryptionKey: string; adminPassword: string },
): Promise<GroundControl> {
  const port = options.port ?? (await getFreePort());
  const child = spawnProcess(
    process.execPath,
    [...(options.nodeArgs ?? []), GROUND_CONTROL_ENTRY],
    {
      name: 'ground-control',
      env: {
        ...process.env,
        DATABASE_URL: options.databaseUrl,
        GC_ENCRYPTION_KEY: secrets.encryptionKey,
        GC_ADMIN_PASSWORD: secrets.adminPassword,
        GC_HOST: '127.0.0.1',
        GC_PORT: String(port),
        GC_DATA_DIR: options.dataDir,
        GC_LOG_LEVEL: 'warn',
        // Scheduled jobs stay off, so every request and revision in the run comes from the bench.
        GC_RESOLVE_INTERVAL_SECONDS: '0',
        GC_CREDENTIAL_INTERVAL_SECONDS: '0',
      },
    },
  );
  const url = `http://127.0.0.1:${port}`;
  try {
    await waitForHttp(`${url}/readyz`, { timeoutMs: READY_TIMEOUT_MS, process: child });
  } catch (error) {
    await child.stop();
    throw error;
  }
  return {
    url,
    process: child,
    adminPassword: secrets.adminPassword,
    stop: async () => {
      await child.stop();
    },
  };
}

/** Client of the operator API, logged in as `admin`. */
export class OperatorApi {
  private constructor(
    private readonly pool: Pool,
    private readonly sessionToken: string,
  ) {}

  static async login(url: string, password: string): Promise<OperatorApi> {
    const pool = new Pool(url, {
      connections: CREATE_CONCURRENCY,
      headersTimeout: OPERATOR_CALL_TIMEOUT_MS,
      bodyTimeout: OPERATOR_CALL_TIMEOUT_MS,
    });
    const body = await call(pool, 'POST', '/api/v1/auth/login', undefined, {
      username: 'admin',
      password,
    });
    return new OperatorApi(pool, loginResponseSchema.parse(body).token);
  }

  async createRegistry(name: string, registryUrl: string): Promise<void> {
    const body = await this.call('POST', '/api/v1/registries', {
      name,
      kind: 'oci',
      url: registryUrl,
    });
    registrySchema.parse(body);
  }

  async createGroup(name: string, selections: Selection[]): Promise<void> {
    groupSchema.parse(await this.call('POST', '/api/v1/groups', { name, selections }));
  }

  /** Replaces the selections of a group; Ground Control resolves them before it responds. */
  async replaceSelections(group: string, selections: Selection[]): Promise<void> {
    groupSchema.parse(await this.call('PUT', `/api/v1/groups/${group}/selections`, selections));
  }

  /** Creates `count` satellites in `group` and returns their names and join tokens. */
  async createSatellites(count: number, group: string): Promise<{ name: string; token: string }[]> {
    const created = new Array<{ name: string; token: string }>(count);
    const indexes = Array.from({ length: count }, (_, i) => i);
    await forEachLimit(indexes, CREATE_CONCURRENCY, async (i) => {
      const name = `bench-${String(i).padStart(6, '0')}`;
      const body = await this.call('POST', '/api/v1/satellites', { name, groups: [group] });
      created[i] = { name, token: createdSatelliteSchema.parse(body).joinToken.token };
    });
    return created;
  }

  async close(): Promise<void> {
    await this.pool.close();
  }

  private call(method: 'POST' | 'PUT', path: string, body: unknown): Promise<unknown> {
    return call(this.pool, method, path, this.sessionToken, body);
  }
}

const errorBodySchema = z.looseObject({
  error: z.looseObject({ code: z.string(), message: z.string() }),
});

async function call(
  pool: Pool,
  method: 'POST' | 'PUT',
  path: string,
  sessionToken: string | undefined,
  body: unknown,
): Promise<unknown> {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (sessionToken !== undefined) headers.authorization = `Bearer ${sessionToken}`;
  const response = await pool.request({ method, path, headers, body: JSON.stringify(body) });
  const text = await response.body.text();
  if (response.statusCode >= 300) {
    const parsed = errorBodySchema.safeParse(safeJson(text));
    const reason = parsed.success
      ? `${parsed.data.error.code}: ${parsed.data.error.message}`
      : text.slice(0, 500);
    throw new BenchError(`${method} ${path} returned HTTP ${response.statusCode} (${reason})`);
  }
  return JSON.parse(text);
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** Reads the `gc_state_long_polls` gauge: the number of long polls Ground Control has open now. */
export async function readLongPolls(url: string): Promise<number> {
  const response = await fetch(`${url}/metrics`);
  const text = await response.text();
  const match = /^gc_state_long_polls(?:\{[^}]*\})? (\d+(?:\.\d+)?)$/m.exec(text);
  if (match === null) {
    throw new BenchError(
      `${url}/metrics has no gc_state_long_polls gauge; is this Ground Control?`,
    );
  }
  return Number(match[1]);
}
