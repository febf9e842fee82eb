import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Jobs } from '../src/jobs.js';
import {
  ADMIN_PASSWORD,
  bearer,
  login,
  provisionDatabase,
  startApp,
  type TestApp,
  type TestDatabaseHandle,
} from './helpers.js';

let databases: TestDatabaseHandle;
let gc: TestApp;
let clockOffsetMs = 0;

beforeAll(async () => {
  databases = await provisionDatabase();
  gc = await startApp(databases, {
    env: { GC_SESSION_TTL_SECONDS: '60' },
    build: { now: () => Date.now() + clockOffsetMs },
  });
});

afterAll(async () => {
  await gc?.close();
  await databases?.close();
});

describe('scheduled jobs', () => {
  it('delete expired sessions in cleanup', async () => {
    const token = await login(gc.app, 'admin', ADMIN_PASSWORD);
    const jobs = new Jobs(gc.context);
    clockOffsetMs = 61_000;
    try {
      await jobs.run('cleanup', () => jobs.cleanup());
    } finally {
      clockOffsetMs = 0;
    }
    const response = await gc.app.inject({
      method: 'GET',
      url: '/api/v1/auth/me',
      headers: bearer(token),
    });
    expect(response.statusCode).toBe(401);
  });

  it('run one round at a time across replicas', async () => {
    const jobs = new Jobs(gc.context);
    let release: () => void = () => undefined;
    const blocked = new Promise<void>((resolve) => {
      release = resolve;
    });
    const first = jobs.run('resolve', () => blocked);
    // Let the first run take its lock before the second requests it.
    await new Promise((resolve) => setTimeout(resolve, 200));
    const secondResult = await jobs.run('resolve', () => Promise.resolve());
    release();
    expect(await first).toBe(true);
    // On PostgreSQL the advisory lock makes the second run skip its round. PGlite serves a single
    // process, so there is no other replica to lock out and the second run goes ahead.
    const expected = gc.context.database.kind !== 'postgres';
    expect(secondResult).toBe(expected);
  });
});
