import { mkdir } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { PGlite } from '@electric-sql/pglite';
import { sql, type SQL } from 'drizzle-orm';
import { drizzle as drizzlePg } from 'drizzle-orm/node-postgres';
import { migrate as migratePg } from 'drizzle-orm/node-postgres/migrator';
import type { PgDatabase, PgQueryResultHKT } from 'drizzle-orm/pg-core';
import { drizzle as drizzlePglite } from 'drizzle-orm/pglite';
import { migrate as migratePglite } from 'drizzle-orm/pglite/migrator';
import pg from 'pg';
import type { Logger } from 'pino';
import * as schema from './schema.js';

export type Db = PgDatabase<PgQueryResultHKT, typeof schema>;

/** Folder of the drizzle-kit migrations, the same from `src/` (tests) and `dist/` (run time). */
export const MIGRATIONS_FOLDER = fileURLToPath(new URL('../../drizzle', import.meta.url));

/** Advisory lock key that serialises migrations when several replicas start at once. */
const MIGRATION_LOCK_KEY = 7_061_001;
/** Pause before reconnecting the LISTEN connection after it broke, in milliseconds. */
const LISTEN_RECONNECT_DELAY_MS = 1_000;
/** `application_name` of the LISTEN connection, so operators and tests can find it. */
export const LISTEN_APPLICATION_NAME = 'ground-control-listen';

export type NotificationHandler = (payload: string) => void;

export interface Database {
  readonly kind: 'postgres' | 'pglite';
  readonly db: Db;
  /**
   * Subscribes to a NOTIFY channel. After a lost LISTEN connection is restored the handler gets
   * the payload `*`, because notifications sent in between are lost.
   */
  listen(channel: string, handler: NotificationHandler): Promise<void>;
  /**
   * Whether notifications are being delivered: false from the moment the LISTEN connection
   * fails until a new one has subscribed to every channel again. Caches that NOTIFY keeps
   * correct must not serve from memory while this is false.
   */
  readonly listening: boolean;
  /** Applies the pending migrations; on PostgreSQL under an advisory lock. */
  migrate(): Promise<void>;
  ping(): Promise<void>;
  close(): Promise<void>;
}

export interface OpenDatabaseOptions {
  /** PostgreSQL URL; without it PGlite runs in `dataDir`, or in memory when that is undefined. */
  url?: string | undefined;
  dataDir?: string | undefined;
  poolSize?: number;
  logger: Logger;
}

export async function openDatabase(options: OpenDatabaseOptions): Promise<Database> {
  if (options.url !== undefined) return openPostgres(options.url, options);
  if (options.dataDir !== undefined) await mkdir(options.dataDir, { recursive: true });
  const client = await PGlite.create(options.dataDir);
  return openPglite(client);
}

/** Wraps an existing PGlite instance, for tests that share one between two apps. */
export function openPglite(client: PGlite, closeClient = true): Database {
  const db = drizzlePglite(client, { schema }) as unknown as Db;
  return {
    kind: 'pglite',
    db,
    // PGlite runs in this process, so its notifications cannot be lost.
    listening: true,
    async listen(channel, handler) {
      await client.listen(channel, handler);
    },
    async migrate() {
      await migratePglite(drizzlePglite(client), { migrationsFolder: MIGRATIONS_FOLDER });
    },
    async ping() {
      await client.query('select 1');
    },
    async close() {
      if (closeClient) await client.close();
    },
  };
}

function openPostgres(url: string, options: OpenDatabaseOptions): Database {
  const { logger } = options;
  const pool = new pg.Pool({ connectionString: url, max: options.poolSize ?? 10 });
  pool.on('error', (error) => {
    logger.error({ err: error }, 'idle PostgreSQL connection failed; the pool replaces it');
  });
  const db = drizzlePg(pool, { schema }) as unknown as Db;
  const handlers = new Map<string, NotificationHandler[]>();
  let listener: pg.Client | undefined;
  let connecting: Promise<pg.Client> | undefined;
  let closed = false;

  async function connectListener(): Promise<pg.Client> {
    const client = new pg.Client({
      connectionString: url,
      application_name: LISTEN_APPLICATION_NAME,
    });
    client.on('notification', (message) => {
      for (const handler of handlers.get(message.channel) ?? []) handler(message.payload ?? '');
    });
    // Until it has subscribed, a failure rejects this function instead, and the caller retries.
    let subscribed = false;
    let failed = false;
    const fail = (error: Error): void => {
      if (!subscribed || failed || closed) return;
      failed = true;
      logger.warn({ err: error }, 'PostgreSQL LISTEN connection failed; reconnecting');
      if (listener === client) listener = undefined;
      client.end().catch(() => undefined);
      scheduleReconnect();
    };
    client.on('error', fail);
    // A connection the server closes cleanly ends without an error event.
    client.on('end', () => fail(new Error('PostgreSQL closed the LISTEN connection')));
    try {
      await client.connect();
      for (const channel of handlers.keys()) await client.query(`LISTEN "${channel}"`);
    } catch (error) {
      client.end().catch(() => undefined);
      throw error;
    }
    subscribed = true;
    return client;
  }

  function scheduleReconnect(): void {
    if (closed) return;
    setTimeout(() => {
      if (closed) return;
      ensureListener()
        .then(() => {
          for (const list of handlers.values()) for (const handler of list) handler('*');
        })
        .catch((error: unknown) => {
          logger.warn({ err: error }, 'reconnecting the PostgreSQL LISTEN connection failed');
          scheduleReconnect();
        });
    }, LISTEN_RECONNECT_DELAY_MS).unref();
  }

  async function ensureListener(): Promise<pg.Client> {
    if (listener !== undefined) return listener;
    connecting ??= connectListener().finally(() => {
      connecting = undefined;
    });
    listener = await connecting;
    return listener;
  }

  return {
    kind: 'postgres',
    db,
    get listening() {
      return listener !== undefined;
    },
    async listen(channel, handler) {
      if (!/^[a-z_]+$/.test(channel)) throw new TypeError(`invalid channel name ${channel}`);
      const list = handlers.get(channel);
      if (list !== undefined) {
        list.push(handler);
        return;
      }
      handlers.set(channel, [handler]);
      const client = await ensureListener();
      await client.query(`LISTEN "${channel}"`);
    },
    migrate: () => migratePostgres(url),
    async ping() {
      await pool.query('select 1');
    },
    async close() {
      closed = true;
      const client = listener;
      listener = undefined;
      if (client !== undefined) await client.end();
      await pool.end();
    },
  };
}

/**
 * Applies the pending migrations on PostgreSQL on one dedicated connection that holds a
 * session-level advisory lock, so replicas that start together migrate one after another.
 */
export async function migratePostgres(url: string): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query('select pg_advisory_lock($1)', [MIGRATION_LOCK_KEY]);
    try {
      await migratePg(drizzlePg(client), { migrationsFolder: MIGRATIONS_FOLDER });
    } finally {
      await client.query('select pg_advisory_unlock($1)', [MIGRATION_LOCK_KEY]);
    }
  } finally {
    await client.end();
  }
}

/** Runs a raw query and returns its rows; both drivers return `{ rows }`. */
export async function queryRows<T>(db: Db, query: SQL): Promise<T[]> {
  const result: unknown = await db.execute(query);
  return (result as { rows: T[] }).rows;
}

/** Sends a NOTIFY; inside a transaction it is delivered at commit. */
export async function notify(db: Db, channel: string, payload: string): Promise<void> {
  await db.execute(sql`select pg_notify(${channel}, ${payload})`);
}
