import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  PROTOCOL_VERSION,
  SATELLITE_JWT_CLOCK_SKEW_SECONDS,
  desiredStateSchema,
} from '@edge/contract';
import {
  bearer,
  createAndJoin,
  generateIdentity,
  json,
  login,
  provisionDatabase,
  signSatelliteJwt,
  startApp,
  statusReport,
  ADMIN_PASSWORD,
  type TestApp,
  type TestDatabaseHandle,
} from './helpers.js';

let databases: TestDatabaseHandle;
let gc: TestApp;
let admin: string;
/** Moves Ground Control's clock, to test token expiry without waiting. */
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

async function createSatellite(name: string, extra: Record<string, unknown> = {}) {
  const response = await gc.app.inject({
    method: 'POST',
    url: '/api/v1/satellites',
    headers: bearer(admin),
    payload: { name, ...extra },
  });
  expect(response.statusCode).toBe(201);
  return json<{ satellite: { id: string }; joinToken: { token: string; expiresAt: string } }>(
    response,
  );
}

async function join(token: string, publicKey: Record<string, unknown>) {
  return gc.app.inject({
    method: 'POST',
    url: '/satellite/v1/join',
    payload: { protocolVersion: 1, token, publicKey, hostname: 'h', version: '0.1.0' },
  });
}

describe('join', () => {
  it('consumes the token once', async () => {
    const created = await createSatellite('join-once');
    const keys = await generateIdentity();
    const first = await join(created.joinToken.token, keys.publicJwk);
    expect(first.statusCode).toBe(200);
    expect(json(first)).toMatchObject({
      protocolVersion: PROTOCOL_VERSION,
      satelliteId: created.satellite.id,
      name: 'join-once',
    });
    const second = await join(created.joinToken.token, keys.publicJwk);
    expect(second.statusCode).toBe(401);
    expect(json<{ error: { code: string } }>(second).error.code).toBe('JOIN_TOKEN_USED');
  });

  it('lets exactly one of racing joins win', async () => {
    const created = await createSatellite('join-race');
    const keys = await Promise.all(Array.from({ length: 8 }, () => generateIdentity()));
    const answers = await Promise.all(
      keys.map((key) => join(created.joinToken.token, key.publicJwk)),
    );
    const statuses = answers.map((answer) => answer.statusCode).sort();
    expect(statuses.filter((status) => status === 200)).toHaveLength(1);
    expect(statuses.filter((status) => status === 401)).toHaveLength(7);
    for (const answer of answers.filter((entry) => entry.statusCode === 401)) {
      expect(json<{ error: { code: string } }>(answer).error.code).toBe('JOIN_TOKEN_USED');
    }
  });

  it('rejects unknown, expired and replaced tokens', async () => {
    const keys = await generateIdentity();
    const unknown = await join('gcj_not-a-token', keys.publicJwk);
    expect(json<{ error: { code: string } }>(unknown).error.code).toBe('JOIN_TOKEN_INVALID');

    const expiring = await createSatellite('join-expired', { joinTokenTtlSeconds: 60 });
    clockOffsetMs = 61_000;
    try {
      const expired = await join(expiring.joinToken.token, keys.publicJwk);
      expect(expired.statusCode).toBe(401);
      expect(json<{ error: { code: string } }>(expired).error.code).toBe('JOIN_TOKEN_EXPIRED');
    } finally {
      clockOffsetMs = 0;
    }

    const replaced = await createSatellite('join-replaced');
    const renewed = await gc.app.inject({
      method: 'POST',
      url: '/api/v1/satellites/join-replaced/join-token',
      headers: bearer(admin),
      payload: {},
    });
    expect(renewed.statusCode).toBe(201);
    const old = await join(replaced.joinToken.token, keys.publicJwk);
    expect(json<{ error: { code: string } }>(old).error.code).toBe('JOIN_TOKEN_REVOKED');
    const fresh = await join(json<{ token: string }>(renewed).token, keys.publicJwk);
    expect(fresh.statusCode).toBe(200);
  });

  it('rejects a private key in the JWK', async () => {
    const created = await createSatellite('join-private');
    const keys = await generateIdentity();
    const response = await join(created.joinToken.token, { ...keys.publicJwk, d: 'A'.repeat(43) });
    expect(response.statusCode).toBe(400);
    expect(json<{ error: { code: string } }>(response).error.code).toBe('VALIDATION_FAILED');
  });

  it('rejects an unsupported protocol version', async () => {
    const created = await createSatellite('join-version');
    const keys = await generateIdentity();
    const response = await gc.app.inject({
      method: 'POST',
      url: '/satellite/v1/join',
      payload: {
        protocolVersion: 0,
        token: created.joinToken.token,
        publicKey: keys.publicJwk,
        hostname: 'h',
        version: '1',
      },
    });
    expect(response.statusCode).toBe(400);
  });
});

describe('satellite JWT', () => {
  it('accepts skew inside the allowance and rejects it outside', async () => {
    const satellite = await createAndJoin(gc.app, admin, { name: 'skew' });
    const now = Math.floor(Date.now() / 1_000);
    const state = (token: string) =>
      gc.app.inject({ method: 'GET', url: '/satellite/v1/state', headers: bearer(token) });

    const ahead = await state(
      await signSatelliteJwt(satellite, { nowSeconds: now + SATELLITE_JWT_CLOCK_SKEW_SECONDS - 5 }),
    );
    expect(ahead.statusCode).toBe(200);
    const tooFarAhead = await state(
      await signSatelliteJwt(satellite, {
        nowSeconds: now + SATELLITE_JWT_CLOCK_SKEW_SECONDS + 30,
      }),
    );
    expect(tooFarAhead.statusCode).toBe(401);
    expect(json<{ error: { code: string } }>(tooFarAhead).error.code).toBe('SATELLITE_CLOCK_SKEW');

    // Expired 30 s ago is still inside the 60 s allowance; expired 90 s ago is not.
    const slightlyBehind = await state(
      await signSatelliteJwt(satellite, { nowSeconds: now - 150, lifetimeSeconds: 120 }),
    );
    expect(slightlyBehind.statusCode).toBe(200);
    const farBehind = await state(
      await signSatelliteJwt(satellite, { nowSeconds: now - 210, lifetimeSeconds: 120 }),
    );
    expect(farBehind.statusCode).toBe(401);
    expect(json<{ error: { code: string } }>(farBehind).error.code).toBe('SATELLITE_TOKEN_EXPIRED');
  });

  it('rejects long lifetimes, wrong audience and foreign keys', async () => {
    const satellite = await createAndJoin(gc.app, admin, { name: 'jwt-rules' });
    const other = await generateIdentity();
    const cases = [
      await signSatelliteJwt(satellite, { lifetimeSeconds: 301 }),
      await signSatelliteJwt(satellite, { audience: 'someone-else' }),
      await signSatelliteJwt({ id: satellite.id, privateKey: other.privateKey }),
      await signSatelliteJwt(satellite, { subject: '00000000-0000-4000-8000-000000000000' }),
      'not-a-jwt',
    ];
    for (const token of cases) {
      const response = await gc.app.inject({
        method: 'GET',
        url: '/satellite/v1/state',
        headers: bearer(token),
      });
      expect(response.statusCode).toBe(401);
      expect(json<{ error: { code: string } }>(response).error.code).toBe(
        'SATELLITE_TOKEN_INVALID',
      );
    }
  });

  it('sends a Date header for clock correction', async () => {
    const response = await gc.app.inject({ method: 'GET', url: '/healthz' });
    expect(Number.isNaN(Date.parse(String(response.headers['date'])))).toBe(false);
  });
});

describe('state and status', () => {
  it('answers 304 for a matching ETag and 200 after a change', async () => {
    const satellite = await createAndJoin(gc.app, admin, { name: 'etag' });
    const token = await signSatelliteJwt(satellite);
    const first = await gc.app.inject({
      method: 'GET',
      url: '/satellite/v1/state',
      headers: bearer(token),
    });
    expect(first.statusCode).toBe(200);
    const state = desiredStateSchema.parse(json(first));
    expect(state.satelliteId).toBe(satellite.id);
    expect(state.artifacts).toEqual([]);
    const etag = String(first.headers['etag']);
    expect(etag).toBe(`"${state.revision}"`);

    const unchanged = await gc.app.inject({
      method: 'GET',
      url: '/satellite/v1/state',
      headers: { ...bearer(token), 'if-none-match': etag },
    });
    expect(unchanged.statusCode).toBe(304);
    // A 304 carries no content (RFC 9110 section 15.4.5). A body or a non-zero Content-Length
    // makes undici raise a length mismatch and close the keep-alive connection on every poll.
    expect(unchanged.rawPayload.length).toBe(0);
    expect(unchanged.headers['content-length'] ?? '0').toBe('0');
    expect(unchanged.headers['content-type']).toBeUndefined();

    const config = await gc.app.inject({
      method: 'POST',
      url: '/api/v1/configs',
      headers: bearer(admin),
      payload: { name: 'slow-poll', settings: { pollIntervalSeconds: 120, concurrency: 2 } },
    });
    expect(config.statusCode).toBe(201);
    const updated = await gc.app.inject({
      method: 'PATCH',
      url: '/api/v1/satellites/etag',
      headers: bearer(admin),
      payload: { config: 'slow-poll' },
    });
    expect(updated.statusCode).toBe(200);
    const changed = await gc.app.inject({
      method: 'GET',
      url: '/satellite/v1/state',
      headers: { ...bearer(token), 'if-none-match': etag },
    });
    expect(changed.statusCode).toBe(200);
    const next = desiredStateSchema.parse(json(changed));
    expect(next.revision).toBeGreaterThan(state.revision);
    expect(next.config.pollIntervalSeconds).toBe(120);
    expect(next.config.concurrency).toBe(2);
    expect(next.config.heartbeatIntervalSeconds).toBe(60);
  });

  it('wakes a long poll when the revision changes', async () => {
    const satellite = await createAndJoin(gc.app, admin, { name: 'long-poll-local' });
    const token = await signSatelliteJwt(satellite);
    const first = await gc.app.inject({
      method: 'GET',
      url: '/satellite/v1/state',
      headers: bearer(token),
    });
    const etag = String(first.headers['etag']);
    const started = Date.now();
    const waiting = gc.app.inject({
      method: 'GET',
      url: '/satellite/v1/state?wait=30',
      headers: { ...bearer(token), 'if-none-match': etag },
    });
    await new Promise((resolve) => setTimeout(resolve, 300));
    const patched = await gc.app.inject({
      method: 'PATCH',
      url: '/api/v1/satellites/long-poll-local',
      headers: bearer(admin),
      payload: { groups: [] },
    });
    expect(patched.statusCode).toBe(200);
    const answer = await waiting;
    expect(answer.statusCode).toBe(200);
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(answer.headers['etag']).not.toBe(etag);
  });

  it('stores the latest report and events only for changes', async () => {
    const satellite = await createAndJoin(gc.app, admin, { name: 'reporter' });
    const token = await signSatelliteJwt(satellite);
    const artifact = {
      localRepository: 'test/app-a',
      tag: '1',
      digest: `sha256:${'1'.repeat(64)}`,
      state: 'pending',
      bytesDone: 10,
      bytesTotal: 100,
    };
    const send = (report: Record<string, unknown>) =>
      gc.app.inject({
        method: 'POST',
        url: '/satellite/v1/status',
        headers: bearer(token),
        payload: report,
      });
    const first = await send(statusReport({ artifacts: [artifact] }));
    expect(first.statusCode).toBe(200);
    expect(json(first)).toMatchObject({ protocolVersion: PROTOCOL_VERSION, desiredRevision: 1 });
    const eventsAfterFirst = await events('reporter');
    await send(statusReport({ artifacts: [{ ...artifact, bytesDone: 50 }] }));
    expect(await events('reporter')).toHaveLength(eventsAfterFirst.length);
    await send(
      statusReport({
        phase: 'in-sync',
        appliedRevision: 1,
        artifacts: [{ ...artifact, state: 'present', bytesDone: 100 }],
      }),
    );
    const eventsAfterChange = await events('reporter');
    // Phase, applied revision and the artifact state each changed once.
    expect(eventsAfterChange.length).toBe(eventsAfterFirst.length + 3);

    const status = await gc.app.inject({
      method: 'GET',
      url: '/api/v1/satellites/reporter/status',
      headers: bearer(admin),
    });
    expect(json<{ report: { phase: string } }>(status).report.phase).toBe('in-sync');
    const fleet = await gc.app.inject({
      method: 'GET',
      url: '/api/v1/fleet',
      headers: bearer(admin),
    });
    expect(fleet.statusCode).toBe(200);
    const entry = json<{ items: { name: string; category: string }[] }>(fleet).items.find(
      (item) => item.name === 'reporter',
    );
    expect(entry?.category).toBe('in-sync');
  });

  it('ignores unknown fields from newer satellites', async () => {
    const satellite = await createAndJoin(gc.app, admin, { name: 'newer' });
    const response = await gc.app.inject({
      method: 'POST',
      url: '/satellite/v1/status',
      headers: bearer(await signSatelliteJwt(satellite)),
      payload: { ...statusReport(), addedInVersion2: { anything: true } },
    });
    expect(response.statusCode).toBe(200);
  });

  it('refuses a revoked satellite at once', async () => {
    const satellite = await createAndJoin(gc.app, admin, { name: 'to-revoke' });
    const token = await signSatelliteJwt(satellite);
    const before = await gc.app.inject({
      method: 'GET',
      url: '/satellite/v1/state',
      headers: bearer(token),
    });
    expect(before.statusCode).toBe(200);
    const revoked = await gc.app.inject({
      method: 'POST',
      url: '/api/v1/satellites/to-revoke/revoke',
      headers: bearer(admin),
    });
    expect(revoked.statusCode).toBe(200);
    const state = await gc.app.inject({
      method: 'GET',
      url: '/satellite/v1/state',
      headers: bearer(token),
    });
    expect(state.statusCode).toBe(403);
    expect(json<{ error: { code: string } }>(state).error.code).toBe('SATELLITE_REVOKED');
    const status = await gc.app.inject({
      method: 'POST',
      url: '/satellite/v1/status',
      headers: bearer(token),
      payload: statusReport(),
    });
    expect(status.statusCode).toBe(403);
  });
});

async function events(name: string): Promise<unknown[]> {
  const response = await gc.app.inject({
    method: 'GET',
    url: `/api/v1/satellites/${name}/status`,
    headers: bearer(admin),
  });
  return json<{ events: unknown[] }>(response).events;
}
