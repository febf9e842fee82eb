import SwaggerParser from '@apidevtools/swagger-parser';
import type { OpenAPIV3_1 } from 'openapi-types';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ADMIN_PASSWORD,
  assertStatus,
  bearer,
  createAndJoin,
  json,
  login,
  provisionDatabase,
  signSatelliteJwt,
  startApp,
  statusReport,
  type SatelliteIdentity,
  type TestApp,
  type TestDatabaseHandle,
} from './helpers.js';

// Canary secrets: each is sent to Ground Control once and must never show up in a log line.
const CANARY = {
  registryPassword: 'canary-registry-password-4b1d',
  pullPassword: 'canary-pull-password-77aa',
  userPassword: 'canary-user-password-9e0f',
  wrongPassword: 'canary-wrong-password-c3c3',
};

let databases: TestDatabaseHandle;
let gc: TestApp;
let admin: string;
let viewer: string;
let satelliteA: SatelliteIdentity;
let satelliteB: SatelliteIdentity;
let revoked: SatelliteIdentity;
const issuedSecrets: string[] = [];

type Method = 'GET' | 'POST' | 'PATCH' | 'PUT' | 'DELETE';
interface RouteCase {
  method: Method;
  url: string;
  /** Read routes are open to viewers; the others need admin. */
  read: boolean;
  body?: unknown;
}

// Every operator route, aimed at fixtures created in beforeAll.
const OPERATOR_ROUTES: RouteCase[] = [
  { method: 'GET', url: '/api/v1/auth/me', read: true },
  { method: 'GET', url: '/api/v1/users', read: false },
  { method: 'POST', url: '/api/v1/users', read: false, body: {} },
  { method: 'PATCH', url: '/api/v1/users/fixture-user', read: false, body: {} },
  { method: 'DELETE', url: '/api/v1/users/fixture-user', read: false },
  { method: 'GET', url: '/api/v1/tokens', read: false },
  { method: 'POST', url: '/api/v1/tokens', read: false, body: {} },
  { method: 'DELETE', url: '/api/v1/tokens/none', read: false },
  { method: 'GET', url: '/api/v1/registries', read: true },
  { method: 'GET', url: '/api/v1/registries/fixture-registry', read: true },
  { method: 'POST', url: '/api/v1/registries', read: false, body: {} },
  { method: 'PATCH', url: '/api/v1/registries/fixture-registry', read: false, body: {} },
  { method: 'DELETE', url: '/api/v1/registries/fixture-registry', read: false },
  { method: 'GET', url: '/api/v1/groups', read: true },
  { method: 'GET', url: '/api/v1/groups/fixture-group', read: true },
  { method: 'POST', url: '/api/v1/groups', read: false, body: {} },
  { method: 'PATCH', url: '/api/v1/groups/fixture-group', read: false, body: {} },
  { method: 'PUT', url: '/api/v1/groups/fixture-group/selections', read: false, body: {} },
  { method: 'POST', url: '/api/v1/groups/fixture-group/resolve', read: false },
  { method: 'DELETE', url: '/api/v1/groups/fixture-group', read: false },
  { method: 'GET', url: '/api/v1/configs', read: true },
  { method: 'GET', url: '/api/v1/configs/fixture-config', read: true },
  { method: 'POST', url: '/api/v1/configs', read: false, body: {} },
  { method: 'PATCH', url: '/api/v1/configs/fixture-config', read: false, body: {} },
  { method: 'DELETE', url: '/api/v1/configs/fixture-config', read: false },
  { method: 'GET', url: '/api/v1/satellites', read: true },
  { method: 'GET', url: '/api/v1/satellites/sat-a', read: true },
  { method: 'POST', url: '/api/v1/satellites', read: false, body: {} },
  { method: 'PATCH', url: '/api/v1/satellites/sat-a', read: false, body: {} },
  { method: 'POST', url: '/api/v1/satellites/sat-a/join-token', read: false, body: {} },
  { method: 'POST', url: '/api/v1/satellites/sat-a/revoke', read: false },
  { method: 'DELETE', url: '/api/v1/satellites/sat-a', read: false },
  { method: 'GET', url: '/api/v1/satellites/sat-a/status', read: true },
  { method: 'GET', url: '/api/v1/fleet', read: true },
  { method: 'GET', url: '/api/v1/audit', read: false },
];

async function call(
  route: Pick<RouteCase, 'method' | 'url' | 'body'>,
  headers: Record<string, string> = {},
) {
  return gc.app.inject({
    method: route.method,
    url: route.url,
    headers,
    ...(route.body !== undefined ? { payload: route.body as Record<string, unknown> } : {}),
  });
}

function code(response: { body: string }): string {
  return json<{ error: { code: string } }>(response).error.code;
}

beforeAll(async () => {
  databases = await provisionDatabase();
  gc = await startApp(databases);
  admin = await login(gc.app, 'admin', ADMIN_PASSWORD);
  issuedSecrets.push(admin);
  const createViewer = await call(
    {
      method: 'POST',
      url: '/api/v1/users',
      body: { username: 'viewer', password: CANARY.userPassword, role: 'viewer' },
    },
    bearer(admin),
  );
  assertStatus(createViewer, 201);
  viewer = await login(gc.app, 'viewer', CANARY.userPassword);
  issuedSecrets.push(viewer);
  await call(
    {
      method: 'POST',
      url: '/api/v1/users',
      body: { username: 'fixture-user', password: 'fixture-password', role: 'viewer' },
    },
    bearer(admin),
  );
  const registry = await call(
    {
      method: 'POST',
      url: '/api/v1/registries',
      body: {
        name: 'fixture-registry',
        kind: 'oci',
        url: 'http://127.0.0.1:9',
        credential: { username: 'gc', password: CANARY.registryPassword },
        pullCredential: { username: 'pull', password: CANARY.pullPassword },
        skipCheck: true,
      },
    },
    bearer(admin),
  );
  assertStatus(registry, 201);
  await call(
    { method: 'POST', url: '/api/v1/configs', body: { name: 'fixture-config', settings: {} } },
    bearer(admin),
  );
  await call(
    { method: 'POST', url: '/api/v1/groups', body: { name: 'fixture-group' } },
    bearer(admin),
  );
  satelliteA = await createAndJoin(gc.app, admin, { name: 'sat-a', labels: { region: 'north' } });
  satelliteB = await createAndJoin(gc.app, admin, { name: 'sat-b', labels: { region: 'south' } });
  revoked = await createAndJoin(gc.app, admin, { name: 'sat-revoked' });
  const revoke = await call(
    { method: 'POST', url: '/api/v1/satellites/sat-revoked/revoke' },
    bearer(admin),
  );
  assertStatus(revoke, 200);
});

afterAll(async () => {
  await gc?.close();
  await databases?.close();
});

describe('authorization matrix', () => {
  it('rejects anonymous callers on every operator route', async () => {
    for (const route of OPERATOR_ROUTES) {
      const response = await call(route);
      const label = `${route.method} ${route.url}`;
      expect({ route: label, status: response.statusCode }).toEqual({ route: label, status: 401 });
      expect(code(response)).toBe('UNAUTHENTICATED');
    }
  });

  it('lets viewers read and rejects their writes', async () => {
    for (const route of OPERATOR_ROUTES) {
      const response = await call(route, bearer(viewer));
      const label = `${route.method} ${route.url}`;
      const expected = route.read ? 200 : 403;
      expect({ route: label, status: response.statusCode }).toEqual({
        route: label,
        status: expected,
      });
    }
  });

  it('lets admins past authentication on every route', async () => {
    for (const route of OPERATOR_ROUTES) {
      // Bodiless writes (deletes, revoke, resolve) aim at a missing name, so nothing changes.
      const probe =
        route.body === undefined && route.method !== 'GET'
          ? { ...route, url: route.url.replace(/sat-a|fixture-[a-z]+|none/, 'missing-name') }
          : route;
      const response = await call(
        probe.body !== undefined ? { ...probe, body: { unknownField: 1 } } : probe,
        bearer(admin),
      );
      const label = `${probe.method} ${probe.url}`;
      // GETs succeed; writes with an invalid body stop at validation, the rest at a missing name.
      let expected = 404;
      if (route.method === 'GET') expected = 200;
      else if (probe.body !== undefined) expected = 400;
      expect({ route: label, status: response.statusCode }).toEqual({
        route: label,
        status: expected,
      });
    }
  });

  it('rejects satellite tokens on operator routes', async () => {
    const token = await signSatelliteJwt(satelliteA);
    for (const route of OPERATOR_ROUTES.filter((entry) => entry.read)) {
      const response = await call(route, bearer(token));
      const label = `${route.method} ${route.url}`;
      expect({ route: label, status: response.statusCode }).toEqual({ route: label, status: 401 });
    }
  });

  it('gives each satellite only its own state', async () => {
    for (const satellite of [satelliteA, satelliteB]) {
      const response = await call(
        { method: 'GET', url: '/satellite/v1/state' },
        bearer(await signSatelliteJwt(satellite)),
      );
      expect(response.statusCode).toBe(200);
      expect(json<{ satelliteId: string }>(response).satelliteId).toBe(satellite.id);
    }
  });

  it('writes status only for the calling satellite', async () => {
    const response = await call(
      { method: 'POST', url: '/satellite/v1/status', body: statusReport({ phase: 'failed' }) },
      bearer(await signSatelliteJwt(satelliteB)),
    );
    expect(response.statusCode).toBe(200);
    const statusA = await call(
      { method: 'GET', url: '/api/v1/satellites/sat-a/status' },
      bearer(admin),
    );
    const statusB = await call(
      { method: 'GET', url: '/api/v1/satellites/sat-b/status' },
      bearer(admin),
    );
    expect(json<{ report: unknown }>(statusA).report).toBeNull();
    expect(json<{ report: { phase: string } }>(statusB).report.phase).toBe('failed');
  });

  it('rejects anonymous, operator and revoked callers on satellite routes', async () => {
    const routes: RouteCase[] = [
      { method: 'GET', url: '/satellite/v1/state', read: true },
      { method: 'POST', url: '/satellite/v1/status', read: false, body: statusReport() },
    ];
    for (const route of routes) {
      const anonymous = await call(route);
      expect(anonymous.statusCode).toBe(401);
      expect(code(anonymous)).toBe('SATELLITE_TOKEN_INVALID');
      const operator = await call(route, bearer(admin));
      expect(operator.statusCode).toBe(401);
      const revokedAnswer = await call(route, bearer(await signSatelliteJwt(revoked)));
      expect(revokedAnswer.statusCode).toBe(403);
      expect(code(revokedAnswer)).toBe('SATELLITE_REVOKED');
    }
  });
});

describe('bad input', () => {
  const writes: { method: Method; url: string; valid: Record<string, unknown> }[] = [
    {
      method: 'POST',
      url: '/api/v1/users',
      valid: { username: 'new-user', password: 'long-enough-password', role: 'viewer' },
    },
    { method: 'PATCH', url: '/api/v1/users/fixture-user', valid: { role: 'viewer' } },
    { method: 'POST', url: '/api/v1/tokens', valid: { name: 'ci' } },
    {
      method: 'POST',
      url: '/api/v1/registries',
      valid: { name: 'r2', kind: 'oci', url: 'http://127.0.0.1:9', skipCheck: true },
    },
    { method: 'PATCH', url: '/api/v1/registries/fixture-registry', valid: { skipCheck: true } },
    { method: 'POST', url: '/api/v1/groups', valid: { name: 'g2' } },
    { method: 'PATCH', url: '/api/v1/groups/fixture-group', valid: { description: 'd' } },
    { method: 'POST', url: '/api/v1/configs', valid: { name: 'c2', settings: {} } },
    { method: 'PATCH', url: '/api/v1/configs/fixture-config', valid: { description: 'd' } },
    { method: 'POST', url: '/api/v1/satellites', valid: { name: 's2' } },
    { method: 'PATCH', url: '/api/v1/satellites/sat-b', valid: { labels: {} } },
    { method: 'POST', url: '/api/v1/satellites/sat-b/join-token', valid: { ttlSeconds: 600 } },
    { method: 'POST', url: '/api/v1/auth/login', valid: { username: 'admin', password: 'x' } },
  ];

  it('rejects unknown fields on every operator write', async () => {
    for (const route of writes) {
      const response = await call(
        { ...route, body: { ...route.valid, unexpected: true } },
        bearer(admin),
      );
      const label = `${route.method} ${route.url}`;
      expect({ route: label, status: response.statusCode }).toEqual({ route: label, status: 400 });
      expect(code(response)).toBe('VALIDATION_FAILED');
    }
  });

  it('rejects wrong types on every operator write', async () => {
    for (const route of writes) {
      const [field] = Object.keys(route.valid);
      const response = await call(
        { ...route, body: { ...route.valid, [field!]: [42] } },
        bearer(admin),
      );
      const label = `${route.method} ${route.url}`;
      expect({ route: label, status: response.statusCode }).toEqual({ route: label, status: 400 });
      expect(code(response)).toBe('VALIDATION_FAILED');
      expect(
        json<{ error: { details: { issues: unknown[] } } }>(response).error.details.issues.length,
      ).toBeGreaterThan(0);
    }
  });

  it('rejects invalid names in paths and bodies', async () => {
    const bad = await call({ method: 'GET', url: '/api/v1/satellites/Not_A_Name' }, bearer(admin));
    expect(bad.statusCode).toBe(400);
    expect(code(bad)).toBe('VALIDATION_FAILED');
    const body = await call(
      { method: 'POST', url: '/api/v1/satellites', body: { name: 'UPPER' } },
      bearer(admin),
    );
    expect(body.statusCode).toBe(400);
    const selection = await call(
      {
        method: 'PUT',
        url: '/api/v1/groups/fixture-group/selections',
        body: [{ registry: 'fixture-registry', repository: 'Bad//Repo', tag: '1' }],
      },
      bearer(admin),
    );
    expect(selection.statusCode).toBe(400);
  });

  it('rejects oversized bodies with the envelope', async () => {
    const response = await call(
      {
        method: 'POST',
        url: '/api/v1/groups',
        body: { name: 'big', description: 'x'.repeat(2 * 1024 * 1024) },
      },
      bearer(admin),
    );
    expect(response.statusCode).toBe(400);
    expect(code(response)).toBe('BODY_TOO_LARGE');
  });

  it('rejects bad satellite bodies and malformed JSON', async () => {
    const token = await signSatelliteJwt(satelliteA);
    const wrong = await call(
      {
        method: 'POST',
        url: '/satellite/v1/status',
        body: { ...statusReport(), phase: 'dancing' },
      },
      bearer(token),
    );
    expect(wrong.statusCode).toBe(400);
    expect(code(wrong)).toBe('VALIDATION_FAILED');
    const malformed = await gc.app.inject({
      method: 'POST',
      url: '/satellite/v1/join',
      headers: { 'content-type': 'application/json' },
      payload: '{"protocolVersion":',
    });
    expect(malformed.statusCode).toBe(400);
    expect(code(malformed)).toBe('VALIDATION_FAILED');
    const query = await call(
      { method: 'GET', url: '/satellite/v1/state?wait=soon' },
      bearer(token),
    );
    expect(query.statusCode).toBe(400);
  });

  it('answers unknown routes with the envelope', async () => {
    const response = await call({ method: 'GET', url: '/api/v1/nothing-here' });
    expect(response.statusCode).toBe(404);
    expect(code(response)).toBe('ROUTE_NOT_FOUND');
  });
});

describe('operator flows', () => {
  it('never returns registry secrets', async () => {
    const response = await call(
      { method: 'GET', url: '/api/v1/registries/fixture-registry' },
      bearer(admin),
    );
    expect(response.statusCode).toBe(200);
    expect(response.body).not.toContain(CANARY.registryPassword);
    expect(json(response)).toMatchObject({
      hasCredential: true,
      credentialUsername: 'gc',
      hasPullCredential: true,
    });
  });

  it('filters and pages the satellite list', async () => {
    const north = await call(
      { method: 'GET', url: '/api/v1/satellites?label=region%3Dnorth' },
      bearer(viewer),
    );
    expect(json<{ items: { name: string }[] }>(north).items.map((item) => item.name)).toEqual([
      'sat-a',
    ]);
    const revokedOnly = await call(
      { method: 'GET', url: '/api/v1/satellites?state=revoked' },
      bearer(viewer),
    );
    expect(json<{ items: { name: string }[] }>(revokedOnly).items.map((item) => item.name)).toEqual(
      ['sat-revoked'],
    );
    const names: string[] = [];
    let cursor: string | null = null;
    do {
      const page = await call(
        {
          method: 'GET',
          url: `/api/v1/satellites?limit=1${cursor === null ? '' : `&cursor=${cursor}`}`,
        },
        bearer(viewer),
      );
      const body = json<{ items: { name: string }[]; nextCursor: string | null }>(page);
      expect(body.items.length).toBeLessThanOrEqual(1);
      names.push(...body.items.map((item) => item.name));
      cursor = body.nextCursor;
    } while (cursor !== null);
    expect(names).toEqual(['sat-a', 'sat-b', 'sat-revoked']);
  });

  it('counts the fleet by category', async () => {
    const response = await call({ method: 'GET', url: '/api/v1/fleet' }, bearer(viewer));
    const fleet = json<{
      counts: Record<string, number>;
      items: { name: string; category: string }[];
    }>(response);
    expect(fleet.counts['revoked']).toBe(1);
    expect(fleet.counts['failed']).toBe(1);
    expect(fleet.items.find((item) => item.name === 'sat-b')?.category).toBe('failed');
  });

  it('records mutating calls in the audit log', async () => {
    const response = await call({ method: 'GET', url: '/api/v1/audit?limit=500' }, bearer(admin));
    const actions = json<{ items: { action: string; actor: string }[] }>(response).items.map(
      (item) => item.action,
    );
    for (const action of [
      'user.create',
      'registry.create',
      'group.create',
      'satellite.create',
      'satellite.join',
      'satellite.revoke',
    ]) {
      expect(actions).toContain(action);
    }
  });

  it('keeps the last admin', async () => {
    const response = await call(
      { method: 'PATCH', url: '/api/v1/users/admin', body: { role: 'viewer' } },
      bearer(admin),
    );
    expect(response.statusCode).toBe(409);
  });
});

describe('login limits', () => {
  it('locks an account after repeated failures', async () => {
    await call(
      {
        method: 'POST',
        url: '/api/v1/users',
        body: { username: 'lockme', password: 'lockme-password', role: 'viewer' },
      },
      bearer(admin),
    );
    for (let attempt = 0; attempt < 5; attempt += 1) {
      const wrong = await gc.app.inject({
        method: 'POST',
        url: '/api/v1/auth/login',
        remoteAddress: '10.0.0.5',
        payload: { username: 'lockme', password: CANARY.wrongPassword },
      });
      expect(wrong.statusCode).toBe(401);
    }
    const locked = await gc.app.inject({
      method: 'POST',
      url: '/api/v1/auth/login',
      remoteAddress: '10.0.0.6',
      payload: { username: 'lockme', password: 'lockme-password' },
    });
    expect(locked.statusCode).toBe(429);
    expect(code(locked)).toBe('ACCOUNT_LOCKED');
    expect(locked.headers['retry-after']).toBeDefined();
  });

  it('rate-limits one address', async () => {
    const codes: string[] = [];
    for (let attempt = 0; attempt < 25; attempt += 1) {
      const response = await gc.app.inject({
        method: 'POST',
        url: '/api/v1/auth/login',
        remoteAddress: '10.0.0.9',
        payload: { username: 'nobody', password: 'x' },
      });
      codes.push(code(response));
    }
    // The default limit is 20 attempts a minute, so the last 5 are rejected.
    expect(codes.slice(0, 20).every((entry) => entry === 'INVALID_CREDENTIALS')).toBe(true);
    expect(codes.slice(20)).toEqual(Array.from({ length: 5 }, () => 'RATE_LIMITED'));
  });
});

describe('OpenAPI document', () => {
  it('passes swagger-parser validation', async () => {
    const response = await gc.app.inject({ method: 'GET', url: '/openapi.json' });
    expect(response.statusCode).toBe(200);
    const document = json<OpenAPIV3_1.Document>(response);
    expect(document.openapi).toBe('3.1.0');
    await expect(SwaggerParser.validate(structuredClone(document) as never)).resolves.toBeDefined();
    expect(Object.keys(document.paths ?? {})).toContain('/satellite/v1/state');
    expect(Object.keys(document.paths ?? {})).toContain('/api/v1/groups/{name}/resolve');
  });

  it('serves the browsable UI', async () => {
    const response = await gc.app.inject({ method: 'GET', url: '/docs/' });
    expect(response.statusCode).toBe(200);
    expect(response.headers['content-type']).toContain('text/html');
  });
});

describe('logs', () => {
  it('contain no secret', () => {
    const all = gc.logs.join('\n');
    expect(gc.logs.length).toBeGreaterThan(10);
    for (const secret of [...Object.values(CANARY), ...issuedSecrets]) {
      expect(all).not.toContain(secret);
    }
    expect(all).not.toMatch(/gcj_[A-Za-z0-9_-]{20,}/);
    expect(all).not.toMatch(/eyJ[A-Za-z0-9_-]+\.eyJ/);
  });
});
