import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { satelliteEvents, satelliteStatus } from '../src/db/schema.js';
import {
  ADMIN_PASSWORD,
  bearer,
  createAndJoin,
  login,
  provisionDatabase,
  signSatelliteJwt,
  startApp,
  statusReport,
  type TestApp,
  type TestDatabaseHandle,
} from './helpers.js';

// Two app instances on one database stand for two replicas behind a load balancer. They share
// one clock that does not move unless a test moves it, so receipt times are exact.
let databases: TestDatabaseHandle;
let replicaA: TestApp;
let replicaB: TestApp;
let admin: string;
let clockOffsetMs = 0;
const clockStartMs = Date.now();
const now = (): number => clockStartMs + clockOffsetMs;

beforeAll(async () => {
  databases = await provisionDatabase();
  replicaA = await startApp(databases, { build: { now } });
  replicaB = await startApp(databases, { build: { now } });
  admin = await login(replicaA.app, 'admin', ADMIN_PASSWORD);
});

afterAll(async () => {
  await replicaA?.close();
  await replicaB?.close();
  await databases?.close();
});

type Satellite = Awaited<ReturnType<typeof createAndJoin>>;

/** Sends a report ten seconds after the previous request and returns its receipt time. */
async function send(
  replica: TestApp,
  satellite: Satellite,
  report: Record<string, unknown>,
): Promise<number> {
  clockOffsetMs += 10_000;
  const sentAt = now();
  const token = await signSatelliteJwt(satellite, { nowSeconds: Math.floor(sentAt / 1_000) });
  const response = await replica.app.inject({
    method: 'POST',
    url: '/satellite/v1/status',
    headers: bearer(token),
    payload: report,
  });
  expect(response.statusCode).toBe(200);
  return sentAt;
}

async function storedRow(satellite: Satellite) {
  const [row] = await replicaA.context.db
    .select()
    .from(satelliteStatus)
    .where(eq(satelliteStatus.satelliteId, satellite.id));
  return row;
}

async function eventCount(satellite: Satellite): Promise<number> {
  const rows = await replicaA.context.db
    .select({ id: satelliteEvents.id })
    .from(satelliteEvents)
    .where(eq(satelliteEvents.satelliteId, satellite.id));
  return rows.length;
}

const steady = statusReport({ phase: 'in-sync', appliedRevision: 1 });
const failing = statusReport({
  phase: 'failed',
  appliedRevision: 1,
  errors: [{ code: 'REGISTRY_UNREACHABLE', message: 'connection refused' }],
});

describe('unchanged heartbeat', () => {
  it('writes only its time, at the flush', async () => {
    const satellite = await createAndJoin(replicaA.app, admin, { name: 'unchanged' });
    const firstAt = await send(replicaA, satellite, steady);
    const events = await eventCount(satellite);

    const secondAt = await send(replicaA, satellite, steady);
    const before = await storedRow(satellite);
    expect(before?.receivedAt.getTime()).toBe(firstAt);
    expect(replicaA.context.reportTimes.pendingCount).toBe(1);

    await replicaA.context.lastSeen.flush();
    const after = await storedRow(satellite);
    expect(after?.receivedAt.getTime()).toBe(secondAt);
    expect(after?.phase).toBe('in-sync');
    expect(await eventCount(satellite)).toBe(events);
  });

  it('stores a changed report at once', async () => {
    const satellite = await createAndJoin(replicaA.app, admin, { name: 'changed' });
    await send(replicaA, satellite, steady);
    await send(replicaA, satellite, steady);
    const events = await eventCount(satellite);

    const changedAt = await send(replicaA, satellite, failing);
    const stored = await storedRow(satellite);
    expect(stored?.phase).toBe('failed');
    expect(stored?.receivedAt.getTime()).toBe(changedAt);
    expect(await eventCount(satellite)).toBeGreaterThan(events);

    // The earlier unchanged report's time must not replace the newer one.
    await replicaA.context.lastSeen.flush();
    const flushed = await storedRow(satellite);
    expect(flushed?.phase).toBe('failed');
    expect(flushed?.receivedAt.getTime()).toBe(changedAt);
  });
});

describe('heartbeats across replicas', () => {
  it('stores a report the other replica replaced', async () => {
    const satellite = await createAndJoin(replicaA.app, admin, { name: 'alternating' });
    await send(replicaA, satellite, steady);
    await send(replicaB, satellite, failing);
    expect((await storedRow(satellite))?.phase).toBe('failed');
    const events = await eventCount(satellite);

    // Replica A's memory still contains the steady digest, but the row contains the failing report.
    const lastAt = await send(replicaA, satellite, steady);
    await replicaA.context.lastSeen.flush();
    const stored = await storedRow(satellite);
    expect(stored?.phase).toBe('in-sync');
    expect(stored?.receivedAt.getTime()).toBe(lastAt);
    expect(await eventCount(satellite)).toBeGreaterThan(events);

    // The row contains the steady report again, so the next one writes only its time.
    const nextAt = await send(replicaA, satellite, steady);
    expect((await storedRow(satellite))?.receivedAt.getTime()).toBe(lastAt);
    await replicaA.context.lastSeen.flush();
    expect((await storedRow(satellite))?.receivedAt.getTime()).toBe(nextAt);
  });

  it('keeps a newer report from the other replica', async () => {
    const satellite = await createAndJoin(replicaA.app, admin, { name: 'overtaken' });
    await send(replicaA, satellite, steady);
    await send(replicaA, satellite, steady);
    const newerAt = await send(replicaB, satellite, failing);

    await replicaA.context.lastSeen.flush();
    const stored = await storedRow(satellite);
    expect(stored?.phase).toBe('failed');
    expect(stored?.receivedAt.getTime()).toBe(newerAt);
  });
});
