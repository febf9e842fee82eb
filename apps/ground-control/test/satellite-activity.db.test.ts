import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { satellites } from '../src/db/schema.js';
import {
  ADMIN_PASSWORD,
  bearer,
  createAndJoin,
  json,
  login,
  provisionDatabase,
  signSatelliteJwt,
  startApp,
  statusReport,
  type TestApp,
  type TestDatabaseHandle,
} from './helpers.js';

let databases: TestDatabaseHandle;
let gc: TestApp;
let admin: string;
/** Moves Ground Control's clock, so each request has a distinct time. */
let clockOffsetMs = 0;

beforeAll(async () => {
  databases = await provisionDatabase();
  gc = await startApp(databases, { build: { now: () => Date.now() + clockOffsetMs } });
  admin = await login(gc.app, 'admin', ADMIN_PASSWORD);
});

afterAll(async () => {
  await gc?.close();
  await databases?.close();
});

async function storedLastSeen(app: TestApp, satelliteId: string): Promise<number | undefined> {
  const [row] = await app.context.db
    .select({ lastSeenAt: satellites.lastSeenAt })
    .from(satellites)
    .where(eq(satellites.id, satelliteId));
  return row?.lastSeenAt?.getTime();
}

async function shownLastSeen(name: string): Promise<string | null> {
  const response = await gc.app.inject({
    method: 'GET',
    url: `/api/v1/satellites/${name}`,
    headers: bearer(admin),
  });
  return json<{ lastSeenAt: string | null }>(response).lastSeenAt;
}

describe('last_seen_at', () => {
  it('reaches the database in one batched write', async () => {
    const satellite = await createAndJoin(gc.app, admin, { name: 'poller' });
    const joinedAt = await storedLastSeen(gc, satellite.id);
    clockOffsetMs += 60_000;
    const token = await signSatelliteJwt(satellite, {
      nowSeconds: Math.floor((Date.now() + clockOffsetMs) / 1_000),
    });
    const before = Date.now() + clockOffsetMs;
    const polled = await gc.app.inject({
      method: 'GET',
      url: '/satellite/v1/state',
      headers: bearer(token),
    });
    expect(polled.statusCode).toBe(200);
    // The poll is recorded in memory only, until the next write.
    expect(gc.context.lastSeen.pendingCount).toBeGreaterThan(0);
    expect(await storedLastSeen(gc, satellite.id)).toBe(joinedAt);

    await gc.context.lastSeen.flush();
    expect(gc.context.lastSeen.pendingCount).toBe(0);
    const stored = await storedLastSeen(gc, satellite.id);
    expect(stored).toBeGreaterThanOrEqual(before);
    expect(await shownLastSeen('poller')).toBe(new Date(stored ?? 0).toISOString());
  });

  it('is written when the app closes', async () => {
    const other = await startApp(databases, { build: { now: () => Date.now() + clockOffsetMs } });
    let before: number;
    try {
      const satellite = await createAndJoin(other.app, admin, { name: 'closing' });
      clockOffsetMs += 60_000;
      const token = await signSatelliteJwt(satellite, {
        nowSeconds: Math.floor((Date.now() + clockOffsetMs) / 1_000),
      });
      before = Date.now() + clockOffsetMs;
      const polled = await other.app.inject({
        method: 'GET',
        url: '/satellite/v1/state',
        headers: bearer(token),
      });
      expect(polled.statusCode).toBe(200);
    } finally {
      await other.close();
    }
    const [row] = await gc.context.db
      .select({ lastSeenAt: satellites.lastSeenAt })
      .from(satellites)
      .where(eq(satellites.name, 'closing'));
    expect(row?.lastSeenAt?.getTime()).toBeGreaterThanOrEqual(before);
  });
});

describe('heartbeat', () => {
  it('updates the shown status when unchanged', async () => {
    const satellite = await createAndJoin(gc.app, admin, { name: 'steady' });
    const report = statusReport({ phase: 'in-sync', appliedRevision: 1 });
    const send = async () => {
      const token = await signSatelliteJwt(satellite, {
        nowSeconds: Math.floor((Date.now() + clockOffsetMs) / 1_000),
      });
      const response = await gc.app.inject({
        method: 'POST',
        url: '/satellite/v1/status',
        headers: bearer(token),
        payload: report,
      });
      expect(response.statusCode).toBe(200);
      expect(json<{ desiredRevision: number }>(response).desiredRevision).toBe(1);
    };
    const status = async () => {
      const response = await gc.app.inject({
        method: 'GET',
        url: '/api/v1/satellites/steady/status',
        headers: bearer(admin),
      });
      return json<{ receivedAt: string; events: unknown[]; report: { phase: string } }>(response);
    };

    clockOffsetMs += 60_000;
    await send();
    const first = await status();
    clockOffsetMs += 60_000;
    await send();
    // An unchanged report's time reaches the database with the batched flush.
    await gc.context.lastSeen.flush();
    const second = await status();

    expect(second.report.phase).toBe('in-sync');
    expect(Date.parse(second.receivedAt) - Date.parse(first.receivedAt)).toBeGreaterThanOrEqual(
      60_000,
    );
    expect(second.events).toHaveLength(first.events.length);
    expect(await shownLastSeen('steady')).toBe(second.receivedAt);
  });

  it('stores a changed version', async () => {
    const satellite = await createAndJoin(gc.app, admin, { name: 'upgraded' });
    const token = await signSatelliteJwt(satellite, {
      nowSeconds: Math.floor((Date.now() + clockOffsetMs) / 1_000),
    });
    const response = await gc.app.inject({
      method: 'POST',
      url: '/satellite/v1/status',
      headers: bearer(token),
      payload: statusReport({ version: '0.2.0' }),
    });
    expect(response.statusCode).toBe(200);
    const shown = await gc.app.inject({
      method: 'GET',
      url: '/api/v1/satellites/upgraded',
      headers: bearer(admin),
    });
    expect(json<{ version: string }>(shown).version).toBe('0.2.0');
  });
});
