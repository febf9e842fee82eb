import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ADMIN_PASSWORD,
  bearer,
  createAndJoin,
  login,
  provisionDatabase,
  signSatelliteJwt,
  startApp,
  type TestApp,
  type TestDatabaseHandle,
} from './helpers.js';

// Two app instances on one database stand for two replicas behind a load balancer: the
// satellite waits on one, the operator changes its state through the other.
let databases: TestDatabaseHandle;
let replicaA: TestApp;
let replicaB: TestApp;

beforeAll(async () => {
  databases = await provisionDatabase();
  replicaA = await startApp(databases);
  replicaB = await startApp(databases);
});

afterAll(async () => {
  await replicaA?.close();
  await replicaB?.close();
  await databases?.close();
});

describe('long poll across replicas', () => {
  it('wakes on one replica for a change made on the other', async () => {
    const admin = await login(replicaB.app, 'admin', ADMIN_PASSWORD);
    const satellite = await createAndJoin(replicaB.app, admin, { name: 'replicated' });
    const token = await signSatelliteJwt(satellite);
    const first = await replicaA.app.inject({
      method: 'GET',
      url: '/satellite/v1/state',
      headers: bearer(token),
    });
    expect(first.statusCode).toBe(200);
    const etag = String(first.headers['etag']);

    const started = Date.now();
    const waiting = replicaA.app.inject({
      method: 'GET',
      url: '/satellite/v1/state?wait=30',
      headers: { ...bearer(token), 'if-none-match': etag },
    });
    await new Promise((resolve) => setTimeout(resolve, 500));
    const config = await replicaB.app.inject({
      method: 'POST',
      url: '/api/v1/configs',
      headers: bearer(admin),
      payload: { name: 'replicated', settings: { logLevel: 'debug' } },
    });
    expect(config.statusCode).toBe(201);
    const patched = await replicaB.app.inject({
      method: 'PATCH',
      url: '/api/v1/satellites/replicated',
      headers: bearer(admin),
      payload: { config: 'replicated' },
    });
    expect(patched.statusCode).toBe(200);

    const answer = await waiting;
    expect(answer.statusCode).toBe(200);
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(answer.headers['etag']).not.toBe(etag);
    expect((JSON.parse(answer.body) as { config: { logLevel: string } }).config.logLevel).toBe(
      'debug',
    );
  });

  it('answers 304 when the wait ends without a change', async () => {
    const admin = await login(replicaA.app, 'admin', ADMIN_PASSWORD);
    const satellite = await createAndJoin(replicaA.app, admin, { name: 'quiet' });
    const token = await signSatelliteJwt(satellite);
    const first = await replicaB.app.inject({
      method: 'GET',
      url: '/satellite/v1/state',
      headers: bearer(token),
    });
    const started = Date.now();
    const answer = await replicaB.app.inject({
      method: 'GET',
      url: '/satellite/v1/state?wait=1',
      headers: { ...bearer(token), 'if-none-match': String(first.headers['etag']) },
    });
    expect(answer.statusCode).toBe(304);
    expect(Date.now() - started).toBeGreaterThanOrEqual(900);
  });

  it('holds a long poll over real HTTP until the wait ends', async () => {
    const admin = await login(replicaA.app, 'admin', ADMIN_PASSWORD);
    const satellite = await createAndJoin(replicaA.app, admin, { name: 'over-http' });
    const token = await signSatelliteJwt(satellite);
    const address = await replicaA.app.listen({ host: '127.0.0.1', port: 0 });
    const first = await fetch(`${address}/satellite/v1/state`, { headers: bearer(token) });
    await first.arrayBuffer();
    const started = Date.now();
    const answer = await fetch(`${address}/satellite/v1/state?wait=2`, {
      headers: { ...bearer(token), 'if-none-match': first.headers.get('etag') ?? '' },
    });
    await answer.arrayBuffer();
    expect(answer.status).toBe(304);
    expect(Date.now() - started).toBeGreaterThanOrEqual(1_900);

    // A satellite that hangs up mid-poll must not leave its waiter behind.
    const abort = new AbortController();
    const abandoned = fetch(`${address}/satellite/v1/state?wait=30`, {
      headers: { ...bearer(token), 'if-none-match': first.headers.get('etag') ?? '' },
      signal: abort.signal,
    }).catch((error: unknown) => error);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(replicaA.context.waiters.size).toBe(1);
    abort.abort();
    await abandoned;
    let remaining = replicaA.context.waiters.size;
    for (let attempt = 0; attempt < 50 && remaining > 0; attempt += 1) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      remaining = replicaA.context.waiters.size;
    }
    expect(remaining).toBe(0);
  });

  it('refuses a revoked satellite on the other replica', async () => {
    const admin = await login(replicaA.app, 'admin', ADMIN_PASSWORD);
    const satellite = await createAndJoin(replicaA.app, admin, { name: 'revoked-elsewhere' });
    const token = await signSatelliteJwt(satellite);
    const cached = await replicaB.app.inject({
      method: 'GET',
      url: '/satellite/v1/state',
      headers: bearer(token),
    });
    expect(cached.statusCode).toBe(200);
    const revoked = await replicaA.app.inject({
      method: 'POST',
      url: '/api/v1/satellites/revoked-elsewhere/revoke',
      headers: bearer(admin),
    });
    expect(revoked.statusCode).toBe(200);
    // The NOTIFY reaches replica B asynchronously; give it a moment.
    let status = 0;
    for (let attempt = 0; attempt < 50 && status !== 403; attempt += 1) {
      const answer = await replicaB.app.inject({
        method: 'GET',
        url: '/satellite/v1/state',
        headers: bearer(token),
      });
      status = answer.statusCode;
      if (status !== 403) await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect(status).toBe(403);
  });

  it('closes without waiting for an unused connection', async () => {
    const replica = await startApp(databases);
    const admin = await login(replica.app, 'admin', ADMIN_PASSWORD);
    const satellite = await createAndJoin(replica.app, admin, { name: 'shutdown' });
    const token = await signSatelliteJwt(satellite);
    const address = new URL(await replica.app.listen({ host: '127.0.0.1', port: 0 }));
    const first = await fetch(`${address.origin}/satellite/v1/state`, { headers: bearer(token) });
    await first.arrayBuffer();

    // A connection that never sends a request, like the one Node's fetch leaves after an abort.
    const unused = connect(Number(address.port), '127.0.0.1');
    const unusedClosed = new Promise<void>((resolve) => unused.once('close', () => resolve()));
    await new Promise<void>((resolve) => unused.once('connect', () => resolve()));
    const polling = fetch(`${address.origin}/satellite/v1/state?wait=30`, {
      headers: { ...bearer(token), 'if-none-match': first.headers.get('etag') ?? '' },
    });
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(replica.context.waiters.size).toBe(1);

    const started = Date.now();
    await replica.close();
    await unusedClosed;
    // The request in flight still gets a response, because closing ends the long poll with a 304.
    const answer = await polling;
    expect(answer.status).toBe(304);
    expect(Date.now() - started).toBeLessThan(10_000);
  });
});
