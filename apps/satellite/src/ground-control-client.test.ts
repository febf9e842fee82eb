// The fastify server here imitates Ground Control's satellite API, speaking the contract's
// wire format, so that the client's parsing and headers are tested in isolation. The
// integration tests under apps/satellite/test run against the real built Ground Control.
import { randomUUID } from 'node:crypto';
import { DEFAULT_SATELLITE_CONFIG, PROTOCOL_VERSION } from '@edge/contract';
import Fastify from 'fastify';
import { importJWK, jwtVerify } from 'jose';
import { Agent } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClockOffset } from './clock.js';
import { isSatelliteError } from './errors.js';
import { GroundControlClient } from './ground-control-client.js';
import { generateKeyPair } from './identity.js';

describe('GroundControlClient', () => {
  const satelliteId = randomUUID();
  const keys = generateKeyPair();
  const app = Fastify();
  const dispatcher = new Agent();
  let revision = 1;
  let revoked = false;
  const seen: { authorization?: string; ifNoneMatch?: string; wait?: string }[] = [];
  const statusBodies: unknown[] = [];
  let client: GroundControlClient;

  const state = () => ({
    protocolVersion: PROTOCOL_VERSION,
    satelliteId,
    revision,
    upstreams: [],
    artifacts: [],
    config: { ...DEFAULT_SATELLITE_CONFIG, futureSetting: 'ignored by old satellites' },
    fieldFromTheFuture: { nested: true },
  });

  beforeAll(async () => {
    app.post('/satellite/v1/join', async (request, reply) => {
      const body = request.body as { token: string };
      if (body.token !== 'good-token') {
        return reply
          .code(401)
          .send({ error: { code: 'JOIN_TOKEN_USED', message: 'token already used' } });
      }
      return { protocolVersion: 1, satelliteId, name: 'site-1', extra: 'x' };
    });
    app.get('/satellite/v1/state', async (request, reply) => {
      const query = request.query as { wait?: string };
      seen.push({
        authorization: request.headers.authorization,
        ifNoneMatch: request.headers['if-none-match'],
        wait: query.wait,
      });
      if (revoked) {
        return reply.code(403).send({ error: { code: 'SATELLITE_REVOKED', message: 'revoked' } });
      }
      const etag = `"r${revision}"`;
      if (request.headers['if-none-match'] === etag)
        return reply.code(304).header('etag', etag).send();
      return reply.header('etag', etag).send(state());
    });
    app.post('/satellite/v1/status', (request) => {
      statusBodies.push(request.body);
      return Promise.resolve({ protocolVersion: 1, desiredRevision: revision });
    });
    const url = await app.listen({ host: '127.0.0.1', port: 0 });
    client = new GroundControlClient({ baseUrl: url, dispatcher, clock: new ClockOffset() });
  });
  afterAll(async () => {
    await app.close();
    await dispatcher.close();
  });

  it('joins and ignores unknown response fields', async () => {
    const joined = await client.join({
      token: 'good-token',
      publicKey: keys.publicJwk,
      hostname: 'edge-host',
      version: '0.1.0',
    });
    expect(joined).toMatchObject({ satelliteId, name: 'site-1' });
  });

  it('reports a consumed join token with its code', async () => {
    const error = await client
      .join({ token: 'used', publicKey: keys.publicJwk, hostname: 'h', version: '1' })
      .catch((caught: unknown) => caught);
    expect(isSatelliteError(error, 'JOIN_REJECTED')).toBe(true);
    expect((error as Error).message).toContain('JOIN_TOKEN_USED');
  });

  it('polls state with If-None-Match and a signed JWT', async () => {
    client.setIdentity(satelliteId, keys.privateKey);
    const first = await client.getState({ waitSeconds: 0 });
    expect(first.changed).toBe(true);
    expect(first.etag).toBe('"r1"');
    const unchanged = await client.getState({ etag: first.etag, waitSeconds: 5 });
    expect(unchanged.changed).toBe(false);
    expect(seen.at(-1)?.ifNoneMatch).toBe('"r1"');
    expect(seen.at(-1)?.wait).toBe('5');

    const jwt = seen.at(-1)?.authorization?.replace(/^Bearer /, '') ?? '';
    const verified = await jwtVerify(jwt, await importJWK(keys.publicJwk, 'EdDSA'), {
      audience: 'ground-control',
      issuer: satelliteId,
    });
    expect(verified.payload.sub).toBe(satelliteId);

    revision = 2;
    const changed = await client.getState({ etag: first.etag, waitSeconds: 0 });
    expect(changed.changed).toBe(true);
    expect(changed.changed).toBe(true);
    expect(changed.changed ? changed.state.revision : undefined).toBe(2);
  });

  it('posts status', async () => {
    const response = await client.postStatus({
      protocolVersion: 1,
      appliedRevision: 2,
      phase: 'in-sync',
      artifacts: [],
      storage: { usedBytes: 1, freeBytes: 2 },
      version: '0.1.0',
      errors: [],
    });
    expect(response.desiredRevision).toBe(2);
    expect(statusBodies).toHaveLength(1);
  });

  it('maps revocation to SATELLITE_REVOKED', async () => {
    revoked = true;
    const error = await client.getState({ waitSeconds: 0 }).catch((caught: unknown) => caught);
    expect(isSatelliteError(error, 'SATELLITE_REVOKED')).toBe(true);
    revoked = false;
  });

  it('reports an unreachable server', async () => {
    const offline = new GroundControlClient({
      baseUrl: 'http://127.0.0.1:9',
      dispatcher,
      clock: new ClockOffset(),
    });
    const error = await offline
      .join({ token: 't', publicKey: keys.publicJwk, hostname: 'h', version: '1' })
      .catch((caught: unknown) => caught);
    expect(isSatelliteError(error, 'GROUND_CONTROL_UNREACHABLE')).toBe(true);
  });
});
