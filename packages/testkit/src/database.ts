import { createHash, randomBytes } from 'node:crypto';
import pg from 'pg';
import { TestkitError } from './errors.js';

/** Comment that marks a template database as completely migrated. */
const READY_COMMENT_PREFIX = 'edge-testkit template ready: ';
/** PostgreSQL SQLSTATE 55006: the template has other sessions, so it cannot be copied yet. */
const OBJECT_IN_USE = '55006';
/** Copies of a template tried while a session of the template is still going away. */
const CREATE_ATTEMPTS = 5;
/** Pause between those attempts, in milliseconds. */
const CREATE_RETRY_DELAY_MS = 200;

export type TestDatabase = { kind: 'pglite' } | { kind: 'postgres'; url: string };

export interface ProvisionTestDatabaseOptions {
  /** Identifies the schema, e.g. a hash of the migration files; one template per key. */
  templateKey: string;
  /** Migrates the empty template database at `url`; must close its connections before returning. */
  migrate: (url: string) => Promise<void>;
  /** Environment to read TEST_DATABASE_URL from (default process.env). */
  env?: NodeJS.ProcessEnv;
}

/** Returns the name of the template database for `templateKey`. */
export function templateDatabaseName(templateKey: string): string {
  return `edge_tpl_${createHash('sha256').update(templateKey).digest('hex').slice(0, 24)}`;
}

/** Advisory-lock key of a template: the first 8 bytes of its name's SHA-256, as a signed int8. */
function lockKey(name: string): string {
  return createHash('sha256').update(name).digest().readBigInt64BE(0).toString();
}

function databaseUrl(base: string, name: string): string {
  const url = new URL(base);
  url.pathname = `/${name}`;
  return url.toString();
}

function pgCode(err: unknown): string | undefined {
  return err instanceof Error && 'code' in err && typeof err.code === 'string'
    ? err.code
    : undefined;
}

async function terminateSessions(admin: pg.Client, name: string): Promise<void> {
  await admin.query(
    'SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()',
    [name],
  );
}

/** Creates and migrates the template unless a complete one exists; the caller holds the lock. */
async function ensureTemplate(
  admin: pg.Client,
  adminUrl: string,
  name: string,
  opts: ProvisionTestDatabaseOptions,
): Promise<void> {
  const ready = READY_COMMENT_PREFIX + opts.templateKey;
  const existing = await admin.query<{ comment: string | null }>(
    "SELECT shobj_description(oid, 'pg_database') AS comment FROM pg_database WHERE datname = $1",
    [name],
  );
  if (existing.rows[0]?.comment === ready) return;
  const quoted = admin.escapeIdentifier(name);
  if (existing.rows.length > 0) {
    // A template without the ready mark is left over from a crashed migration: rebuild it.
    await admin.query(`DROP DATABASE ${quoted} WITH (FORCE)`);
  }
  await admin.query(`CREATE DATABASE ${quoted}`);
  await opts.migrate(databaseUrl(adminUrl, name));
  await terminateSessions(admin, name);
  await admin.query(`COMMENT ON DATABASE ${quoted} IS ${admin.escapeLiteral(ready)}`);
}

async function copyTemplate(admin: pg.Client, template: string, name: string): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await admin.query(
        `CREATE DATABASE ${admin.escapeIdentifier(name)} TEMPLATE ${admin.escapeIdentifier(template)}`,
      );
      return;
    } catch (err) {
      if (pgCode(err) !== OBJECT_IN_USE || attempt >= CREATE_ATTEMPTS) throw err;
      await terminateSessions(admin, template);
      await new Promise((resolve) => setTimeout(resolve, CREATE_RETRY_DELAY_MS));
    }
  }
}

async function dropDatabase(adminUrl: string, name: string): Promise<void> {
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  try {
    await admin.query(`DROP DATABASE IF EXISTS ${admin.escapeIdentifier(name)} WITH (FORCE)`);
  } finally {
    await admin.end();
  }
}

/**
 * Provides one database for a test file. Without TEST_DATABASE_URL it returns `{ kind: 'pglite' }`
 * and the caller boots PGlite. With it, it copies a fresh database from a template migrated once
 * per `templateKey` (under an advisory lock, so parallel test files migrate it once) and returns
 * its URL; `drop()` removes the copy.
 */
export async function provisionTestDatabase(
  opts: ProvisionTestDatabaseOptions,
): Promise<TestDatabase & { drop(): Promise<void> }> {
  const adminUrl = (opts.env ?? process.env).TEST_DATABASE_URL;
  if (!adminUrl) return { kind: 'pglite', drop: () => Promise.resolve() };

  const template = templateDatabaseName(opts.templateKey);
  const name = `edge_test_${template.slice(9, 17)}_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  try {
    await admin.connect();
    // Advisory locks are per database, so every caller locks in the one TEST_DATABASE_URL names.
    await admin.query('SELECT pg_advisory_lock($1::bigint)', [lockKey(template)]);
    try {
      await ensureTemplate(admin, adminUrl, template, opts);
      await copyTemplate(admin, template, name);
    } finally {
      await admin.query('SELECT pg_advisory_unlock($1::bigint)', [lockKey(template)]);
    }
  } catch (err) {
    const target = new URL(adminUrl);
    throw new TestkitError(
      'DATABASE_PROVISION_FAILED',
      `provisioning a test database from template ${template} on ${target.host}${target.pathname} ` +
        `failed: ${err instanceof Error ? err.message : String(err)}; check that PostgreSQL runs ` +
        'and that the role in TEST_DATABASE_URL has CREATEDB',
      { cause: err },
    );
  } finally {
    await admin.end().catch(() => undefined);
  }
  return {
    kind: 'postgres',
    url: databaseUrl(adminUrl, name),
    drop: () => dropDatabase(adminUrl, name),
  };
}
