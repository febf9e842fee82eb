import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { provisionTestDatabase, templateDatabaseName, TestkitError } from '../src/index.js';

// This file runs twice: on PGlite (no TEST_DATABASE_URL), where provisioning must return the
// pglite kind, and on PostgreSQL, where it must copy databases from a migrated template.
const adminUrl = process.env.TEST_DATABASE_URL;
const runKey = `testkit-database-test-${randomBytes(6).toString('hex')}`;
const templateKeys: string[] = [];

function key(suffix: string): string {
  const templateKey = `${runKey}-${suffix}`;
  templateKeys.push(templateKey);
  return templateKey;
}

/** Builds a migration that creates one table and records its calls. */
function countingMigration() {
  const calls: string[] = [];
  const migrate = async (url: string) => {
    calls.push(url);
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    await client.query('CREATE TABLE widgets (id serial PRIMARY KEY, name text NOT NULL)');
    await client.end();
  };
  return { calls, migrate };
}

async function query<T extends pg.QueryResultRow>(
  url: string,
  sql: string,
  values: unknown[] = [],
) {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<T>(sql, values)).rows;
  } finally {
    await client.end();
  }
}

async function databaseExists(name: string): Promise<boolean> {
  const rows = await query(adminUrl!, 'SELECT 1 FROM pg_database WHERE datname = $1', [name]);
  return rows.length > 0;
}

afterAll(async () => {
  if (!adminUrl) return;
  for (const templateKey of templateKeys) {
    await query(
      adminUrl,
      `DROP DATABASE IF EXISTS ${templateDatabaseName(templateKey)} WITH (FORCE)`,
    );
  }
});

describe('provisionTestDatabase', () => {
  it('returns pglite without TEST_DATABASE_URL', async () => {
    const { calls, migrate } = countingMigration();
    const db = await provisionTestDatabase({ templateKey: key('pglite'), migrate, env: {} });
    expect(db.kind).toBe('pglite');
    expect(calls).toEqual([]);
    await expect(db.drop()).resolves.toBeUndefined();
  });
});

/** Provisions a database that must be on PostgreSQL and returns its URL. */
async function provisionPostgres(templateKey: string, migrate: (url: string) => Promise<void>) {
  const db = await provisionTestDatabase({ templateKey, migrate });
  if (db.kind !== 'postgres') throw new Error(`expected a PostgreSQL database, got ${db.kind}`);
  return db;
}

if (!adminUrl) {
  describe('provisionTestDatabase on PGlite', () => {
    it('returns pglite from the environment', async () => {
      const { calls, migrate } = countingMigration();
      const db = await provisionTestDatabase({ templateKey: key('env'), migrate });
      expect(db.kind).toBe('pglite');
      expect(calls).toEqual([]);
    });
  });
} else {
  describe('provisionTestDatabase on PostgreSQL', () => {
    it('copies migrated databases from one template', async () => {
      const { calls, migrate } = countingMigration();
      const templateKey = key('copies');
      const first = await provisionPostgres(templateKey, migrate);
      const second = await provisionPostgres(templateKey, migrate);
      try {
        expect(calls).toHaveLength(1);
        expect(first.url).not.toBe(second.url);
        await query(first.url, "INSERT INTO widgets (name) VALUES ('only in the first')");
        expect(await query(first.url, 'SELECT name FROM widgets')).toEqual([
          { name: 'only in the first' },
        ]);
        expect(await query(second.url, 'SELECT name FROM widgets')).toEqual([]);
      } finally {
        await first.drop();
        await second.drop();
      }
    });

    it('drop removes the database', async () => {
      const { migrate } = countingMigration();
      const db = await provisionPostgres(key('drop'), migrate);
      const name = new URL(db.url).pathname.slice(1);
      // An open session must not stop the drop.
      const client = new pg.Client({ connectionString: db.url });
      await client.connect();
      client.on('error', () => undefined);
      expect(await databaseExists(name)).toBe(true);
      await db.drop();
      expect(await databaseExists(name)).toBe(false);
      await client.end().catch(() => undefined);
    });

    it('migrates once for parallel callers', async () => {
      const { calls, migrate } = countingMigration();
      const templateKey = key('parallel');
      const dbs = await Promise.all([1, 2, 3].map(() => provisionPostgres(templateKey, migrate)));
      try {
        expect(new Set(dbs.map((db) => db.url)).size).toBe(3);
        expect(calls).toHaveLength(1);
      } finally {
        await Promise.all(dbs.map((db) => db.drop()));
      }
    });

    it('rebuilds a template whose migration failed', async () => {
      const templateKey = key('crash');
      const failing = async (url: string) => {
        const client = new pg.Client({ connectionString: url });
        await client.connect();
        await client.query('CREATE TABLE half_done (id int)');
        await client.end();
        throw new Error('migration crashed half way');
      };
      const error = await provisionTestDatabase({ templateKey, migrate: failing }).catch(
        (err: unknown) => err,
      );
      expect(error).toBeInstanceOf(TestkitError);
      expect((error as TestkitError).code).toBe('DATABASE_PROVISION_FAILED');
      const { calls, migrate } = countingMigration();
      const db = await provisionPostgres(templateKey, migrate);
      try {
        expect(calls).toHaveLength(1);
        const tables = await query<{ tablename: string }>(
          db.url,
          "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename",
        );
        expect(tables.map((t) => t.tablename)).toEqual(['widgets']);
      } finally {
        await db.drop();
      }
    });
  });
}
