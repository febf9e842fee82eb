import { createHash } from 'node:crypto';
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MANIFEST_ACCEPT, buildTestImages, getFreePort, runCommand } from '@edge/testkit';
import type { RegistryHandle, TestImages } from '@edge/testkit';
import { startHarborDouble } from '@edge/testkit/harbor';
import type { HarborDouble } from '@edge/testkit/harbor';
import { HarborClient, HarborClientError, createHarborClient } from '../src/harbor/index.js';
import type { HarborClientOptions } from '../src/harbor/index.js';

// The Harbor client against the Harbor test double from @edge/testkit, which imitates
// Harbor v2.0's REST API and grants tokens for a real docker-registry 2.8 in token mode, plus two
// small loopback servers for a hung and a non-Harbor upstream. skopeo does the pulls.

const DAY_MS = 86_400_000;
/** A password seeded so the tests can show that it reaches no message and no log line. */
const CANARY_PASSWORD = 'Canary-Password-4711';
/** Lifetime of the registry tokens issued in these tests, in seconds. */
const TOKEN_TTL_SECONDS = 60;
/**
 * docker-registry 2.8 accepts a token up to 60 s past its `exp` (clock-skew leeway), so a token
 * whose `exp` is 55 s in the past stays valid for about 5 s more.
 */
const REGISTRY_EXP_LEEWAY_SECONDS = 60;
const SHORT_TOKEN_LIFETIME_SECONDS = 5;
/** How long the test waits for the short-lived token to stop working, in milliseconds. */
const TOKEN_EXPIRY_WAIT_MS = 20_000;
/** A small large:1 layer, because these tests only pull app-a:1 and app-b:1. */
const LARGE_LAYER_MIB = 1;

let harbor: HarborDouble;
let registry: RegistryHandle;
let images: TestImages;
let client: HarborClient;
let pullDir: string;
const logLines: string[] = [];
const clients: HarborClient[] = [];
const servers: Server[] = [];

function newClient(overrides: Partial<HarborClientOptions> = {}): HarborClient {
  const created = new HarborClient({
    url: harbor.url,
    username: harbor.admin.username,
    password: harbor.admin.password,
    ...overrides,
  });
  clients.push(created);
  return created;
}

async function expectHarborError(promise: Promise<unknown>, code: string, status?: number) {
  const error: unknown = await promise.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(error).toBeInstanceOf(HarborClientError);
  const harborError = error as HarborClientError;
  expect(harborError.code).toBe(code);
  if (status !== undefined) expect(harborError.status).toBe(status);
  return harborError;
}

async function startLoopbackServer(handler: Parameters<typeof createServer>[1]): Promise<string> {
  const server = createServer(handler);
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string')
    throw new Error('loopback server has no port');
  return `http://127.0.0.1:${address.port}`;
}

/** Pushes a test image from the OCI layout as the Harbor admin. */
async function pushImage(image: string, reference: string): Promise<void> {
  const layoutTag = images.images[image]?.layoutTag;
  if (layoutTag === undefined) throw new Error(`test image ${image} is missing from the build`);
  const { username, password } = harbor.admin;
  await runCommand(
    'skopeo',
    [
      'copy',
      '--quiet',
      '--dest-tls-verify=false',
      '--dest-creds',
      `${username}:${password}`,
      `oci:${images.layoutDir}:${layoutTag}`,
      `docker://${registry.host}/${reference}`,
    ],
    { name: `skopeo copy of ${image}`, secrets: [password] },
  );
}

/** Pulls an image with skopeo as `robot` and returns the SHA-256 digest of its manifest. */
async function pullAs(robot: { name: string; secret: string }, reference: string): Promise<string> {
  const target = join(pullDir, reference.replace(/[/:]/g, '-'));
  await rm(target, { recursive: true, force: true });
  await runCommand(
    'skopeo',
    [
      'copy',
      '--quiet',
      '--src-tls-verify=false',
      '--src-creds',
      `${robot.name}:${robot.secret}`,
      `docker://${registry.host}/${reference}`,
      `dir:${target}`,
    ],
    { name: `skopeo pull of ${reference}`, secrets: [robot.secret] },
  );
  const manifest = await readFile(join(target, 'manifest.json'));
  return `sha256:${createHash('sha256').update(manifest).digest('hex')}`;
}

/** Requests a registry token from the token server with the robot's credentials. */
async function fetchRegistryToken(robot: { name: string; secret: string }, scope: string) {
  const tokenServer = registry.tokenServer;
  if (!tokenServer) throw new Error('the registry runs without a token server');
  const url = new URL(tokenServer.realm);
  url.searchParams.set('service', tokenServer.service);
  url.searchParams.set('scope', scope);
  const response = await fetch(url, {
    headers: {
      authorization: `Basic ${Buffer.from(`${robot.name}:${robot.secret}`).toString('base64')}`,
    },
  });
  const body = (await response.json()) as { token?: string };
  return { status: response.status, token: body.token };
}

/** Reads a manifest straight from the registry with a bearer token. */
async function getManifest(reference: string, token: string) {
  const [repository, tag] = reference.split(':');
  const response = await fetch(`${registry.url}/v2/${repository}/manifests/${tag}`, {
    headers: { authorization: `Bearer ${token}`, accept: MANIFEST_ACCEPT },
  });
  await response.arrayBuffer();
  return { status: response.status, challenge: response.headers.get('www-authenticate') ?? '' };
}

beforeAll(async () => {
  images = await buildTestImages({ largeLayerMiB: LARGE_LAYER_MIB });
  harbor = await startHarborDouble({
    projects: ['alpha', 'beta', 'gamma'],
    registry: { tokenTtlSeconds: TOKEN_TTL_SECONDS },
  });
  if (!harbor.registry) throw new Error('the Harbor double started without its registry');
  registry = harbor.registry;
  pullDir = await mkdtemp(join(tmpdir(), 'harbor-client-pull-'));
  await pushImage('app-a:1', 'alpha/app-a:1');
  await pushImage('app-b:1', 'beta/app-b:1');
  harbor.createUser('viewer', CANARY_PASSWORD);
  const logStream = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      logLines.push(chunk.toString('utf8'));
      callback();
    },
  });
  client = newClient({
    logger: pino({ level: 'trace' }, logStream),
    now: () => harbor.clock.now(),
  });
});

afterAll(async () => {
  for (const created of clients) await created.close();
  for (const server of servers) {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
  await harbor?.stop();
  if (pullDir) await rm(pullDir, { recursive: true, force: true });
});

describe('harbor client connection checks', () => {
  it('ping returns Pong', async () => {
    expect(await client.ping()).toBe('Pong');
  });

  it('health lists components', async () => {
    const health = await client.health();
    expect(health.status).toBe('healthy');
    expect(health.components.map((component) => component.name)).toContain('registry');
  });

  it('checkAccess passes for the admin', async () => {
    await expect(client.checkAccess()).resolves.toBeUndefined();
  });

  it('checkAccess rejects a wrong password', async () => {
    const wrong = newClient({ password: CANARY_PASSWORD });
    const error = await expectHarborError(wrong.checkAccess(), 'HARBOR_UNAUTHORIZED', 401);
    expect(error.harborCode).toBe('UNAUTHORIZED');
    expect(error.message).toContain('admin');
    expect(error.message).not.toContain(CANARY_PASSWORD);
    expect(error.requestId).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('checkAccess rejects an account without admin role', async () => {
    const viewer = newClient({ username: 'viewer', password: CANARY_PASSWORD });
    const error = await expectHarborError(viewer.checkAccess(), 'HARBOR_FORBIDDEN', 403);
    expect(error.message).toContain('system admin');
    expect(error.message).not.toContain(CANARY_PASSWORD);
  });

  it('reports a closed port as unreachable', async () => {
    const port = await getFreePort();
    const closed = newClient({ url: `http://127.0.0.1:${port}` });
    const error = await expectHarborError(closed.ping(), 'HARBOR_UNREACHABLE');
    expect(error.status).toBeUndefined();
    expect(error.message).toContain(`127.0.0.1:${port}`);
  });

  it('times out on a server that never answers', async () => {
    const url = await startLoopbackServer(() => {
      // Never respond, like a Harbor stuck behind a load balancer.
    });
    const hung = newClient({ url, timeoutMs: 300 });
    const error = await expectHarborError(hung.checkAccess(), 'HARBOR_TIMEOUT');
    expect(error.message).toContain('timed out after 300 ms');
  });

  it('rejects a non-Harbor JSON answer', async () => {
    const url = await startLoopbackServer((request, response) => {
      response.setHeader(
        'content-type',
        request.url?.includes('/ping') ? 'text/plain' : 'application/json',
      );
      response.end(request.url?.includes('/ping') ? 'Pong' : '{"hello":"world"}');
    });
    const other = newClient({ url });
    const error = await expectHarborError(other.listProjects(), 'HARBOR_INVALID_RESPONSE', 200);
    expect(error.message).toContain('GET /projects');
  });

  it('maps a 503 envelope to server error', async () => {
    const url = await startLoopbackServer((_request, response) => {
      response.statusCode = 503;
      response.setHeader('content-type', 'application/json');
      response.setHeader('x-request-id', 'upstream-req-7');
      response.end('{"errors":[{"code":"UNKNOWN","message":"internal server error"}]}');
    });
    const failing = newClient({ url });
    const error = await expectHarborError(failing.listProjects(), 'HARBOR_SERVER_ERROR', 503);
    expect(error.harborCode).toBe('UNKNOWN');
    expect(error.requestId).toBe('upstream-req-7');
    expect(error.message).toContain('internal server error');
  });

  it('rejects an oversized response body', async () => {
    const chunk = Buffer.alloc(1024 * 1024, 0x20);
    const url = await startLoopbackServer((_request, response) => {
      response.setHeader('content-type', 'application/json');
      response.write('[');
      for (let index = 0; index < 5; index += 1) response.write(chunk);
      response.end(']');
    });
    const flooding = newClient({ url });
    const error = await expectHarborError(flooding.listProjects(), 'HARBOR_INVALID_RESPONSE');
    expect(error.message).toContain('over 4194304 bytes');
  });

  it('rejects an invalid URL', () => {
    expect(() => newClient({ url: 'ftp://127.0.0.1' })).toThrow(TypeError);
  });
});

describe('harbor client projects', () => {
  it('lists projects across pages', async () => {
    const names = Array.from(
      { length: 105 },
      (_, index) => `bulk-${String(index).padStart(3, '0')}`,
    );
    for (const name of names) harbor.createProject(name);
    const projects = await client.listProjects();
    const listed = projects.map((project) => project.name);
    expect(listed).toHaveLength(108);
    expect(new Set(listed).size).toBe(108);
    expect(listed).toEqual(expect.arrayContaining(['alpha', 'beta', 'gamma', ...names]));
    expect(harbor.counters.requests.get('GET /api/v2.0/projects')).toBeGreaterThanOrEqual(2);
  });

  it('projectExists tells both cases', async () => {
    expect(await client.projectExists('alpha')).toBe(true);
    expect(await client.projectExists('nowhere')).toBe(false);
  });
});

describe('harbor client robot accounts', () => {
  it('creates a robot with pull on its projects', async () => {
    const created = await client.createRobot({
      name: 'sat-create',
      projects: ['beta', 'alpha'],
      durationDays: 30,
    });
    expect(created.name).toBe('robot$sat-create');
    expect(created.secret.length).toBeGreaterThanOrEqual(8);
    expect(created.expiresAt).toBeInstanceOf(Date);
    const expectedExpiry = harbor.clock.now().getTime() + 30 * DAY_MS;
    expect(Math.abs((created.expiresAt?.getTime() ?? 0) - expectedExpiry)).toBeLessThan(5_000);
    const stored = harbor.listRobots().find((robot) => robot.id === created.id);
    expect(stored?.level).toBe('system');
    expect(stored?.permissions.map((permission) => permission.namespace)).toEqual([
      'alpha',
      'beta',
    ]);
  });

  it('creates a robot that never expires', async () => {
    const created = await client.createRobot({
      name: 'sat-forever',
      projects: ['alpha'],
      durationDays: -1,
    });
    expect(created.expiresAt).toBeNull();
  });

  it('reports a taken name as conflict', async () => {
    await client.createRobot({ name: 'sat-taken', projects: ['alpha'], durationDays: 1 });
    const error = await expectHarborError(
      client.createRobot({ name: 'sat-taken', projects: ['beta'], durationDays: 1 }),
      'HARBOR_CONFLICT',
      409,
    );
    expect(error.harborCode).toBe('CONFLICT');
  });

  it('reports an unknown project as not found', async () => {
    const error = await expectHarborError(
      client.createRobot({ name: 'sat-lost', projects: ['nowhere'], durationDays: 1 }),
      'HARBOR_NOT_FOUND',
      404,
    );
    expect(error.message).toContain('nowhere');
  });

  it.each([
    { case: 'no projects', input: { name: 'sat-empty', projects: [], durationDays: 1 } },
    { case: 'prefixed name', input: { name: 'robot$sat', projects: ['alpha'], durationDays: 1 } },
    { case: 'zero duration', input: { name: 'sat-zero', projects: ['alpha'], durationDays: 0 } },
  ])('rejects $case before calling Harbor', async ({ input }) => {
    const before = harbor.counters.requests.get('POST /api/v2.0/robots') ?? 0;
    await expect(client.createRobot(input)).rejects.toThrow(TypeError);
    expect(harbor.counters.requests.get('POST /api/v2.0/robots') ?? 0).toBe(before);
  });

  it('finds a robot by name with or without prefix', async () => {
    const created = await client.createRobot({
      name: 'sat-1',
      projects: ['alpha'],
      durationDays: 1,
    });
    await client.createRobot({ name: 'sat-10', projects: ['alpha'], durationDays: 1 });
    expect((await client.findRobotByName('sat-1'))?.id).toBe(created.id);
    expect((await client.findRobotByName('robot$sat-1'))?.id).toBe(created.id);
    expect(await client.findRobotByName('sat-unknown')).toBeNull();
  });

  it('reads a robot with its projects', async () => {
    const created = await client.createRobot({
      name: 'sat-read',
      projects: ['gamma', 'alpha'],
      durationDays: 5,
    });
    const robot = await client.getRobot(created.id);
    expect(robot).toMatchObject({
      id: created.id,
      name: 'robot$sat-read',
      level: 'system',
      durationDays: 5,
    });
    expect(robot.projects).toEqual(['alpha', 'gamma']);
    expect(robot.disabled).toBe(false);
    expect(robot).not.toHaveProperty('secret');
  });

  it('replaces the projects of a robot', async () => {
    const created = await client.createRobot({
      name: 'sat-update',
      projects: ['alpha'],
      durationDays: 9,
    });
    await client.updateRobotProjects(created.id, ['beta', 'gamma', 'beta']);
    const robot = await client.getRobot(created.id);
    expect(robot.projects).toEqual(['beta', 'gamma']);
    expect(robot.durationDays).toBe(9);
    expect(robot.expiresAt?.getTime()).toBe(created.expiresAt?.getTime());
  });

  it('rejects an update to no projects', async () => {
    const created = await client.createRobot({
      name: 'sat-noproj',
      projects: ['alpha'],
      durationDays: 1,
    });
    await expect(client.updateRobotProjects(created.id, [])).rejects.toThrow(TypeError);
    expect((await client.getRobot(created.id)).projects).toEqual(['alpha']);
  });

  it('refreshes the secret and keeps the expiry', async () => {
    const created = await client.createRobot({
      name: 'sat-refresh',
      projects: ['alpha'],
      durationDays: 30,
    });
    const refreshed = await client.refreshRobotSecret(created.id);
    expect(refreshed.secret).not.toBe(created.secret);
    expect(refreshed.expiresAt?.getTime()).toBe(created.expiresAt?.getTime());
    const scopes = [{ type: 'repository', name: 'alpha/app', actions: ['pull'] }];
    const oldGrant = await harbor.authorizeToken({
      username: created.name,
      password: created.secret,
      scopes,
    });
    expect(oldGrant.ok).toBe(false);
    const newGrant = await harbor.authorizeToken({
      username: created.name,
      password: refreshed.secret,
      scopes,
    });
    expect(newGrant).toMatchObject({ ok: true, access: scopes });
  });

  it('extends the expiry when asked', async () => {
    const created = await client.createRobot({
      name: 'sat-extend',
      projects: ['alpha'],
      durationDays: 10,
    });
    harbor.clock.advance(8 * DAY_MS);
    try {
      const refreshed = await client.refreshRobotSecret(created.id, { extendDays: 30 });
      const minimum = harbor.clock.now().getTime() + 30 * DAY_MS;
      expect(refreshed.expiresAt?.getTime()).toBeGreaterThanOrEqual(minimum - 1_000);
      expect(refreshed.expiresAt?.getTime()).toBeLessThanOrEqual(minimum + DAY_MS);
      // Eight days and a few milliseconds have passed, which rounds up to nine whole days.
      const { durationDays } = await client.getRobot(created.id);
      expect(durationDays).toBeGreaterThanOrEqual(38);
      expect(durationDays).toBeLessThanOrEqual(39);
    } finally {
      harbor.clock.advance(-8 * DAY_MS);
    }
  });

  it('deletes a robot once', async () => {
    const created = await client.createRobot({
      name: 'sat-delete',
      projects: ['alpha'],
      durationDays: 1,
    });
    expect(await client.deleteRobot(created.id)).toBe(true);
    expect(await client.deleteRobot(created.id)).toBe(false);
    await expectHarborError(client.getRobot(created.id), 'HARBOR_NOT_FOUND', 404);
    expect(await client.findRobotByName('sat-delete')).toBeNull();
  });

  it('provisions a new robot', async () => {
    const provisioned = await client.provisionRobot({
      name: 'sat-provision',
      projects: ['alpha'],
      durationDays: 3,
    });
    expect(provisioned.adopted).toBe(false);
    expect((await client.getRobot(provisioned.id)).projects).toEqual(['alpha']);
  });

  it('adopts a robot left by an earlier attempt', async () => {
    const earlier = await client.createRobot({
      name: 'sat-adopt',
      projects: ['alpha'],
      durationDays: 3,
    });
    const disable = await fetch(`${harbor.apiUrl}/robots/${earlier.id}`, {
      method: 'PUT',
      headers: {
        authorization: `Basic ${Buffer.from(`${harbor.admin.username}:${harbor.admin.password}`).toString('base64')}`,
        'content-type': 'application/json',
      },
      body: JSON.stringify({
        name: earlier.name,
        level: 'system',
        disable: true,
        permissions: [
          {
            kind: 'project',
            namespace: 'alpha',
            access: [{ resource: 'repository', action: 'pull' }],
          },
        ],
      }),
    });
    expect(disable.status).toBe(200);

    const adopted = await client.provisionRobot({
      name: 'sat-adopt',
      projects: ['beta'],
      durationDays: 3,
    });
    expect(adopted.adopted).toBe(true);
    expect(adopted.id).toBe(earlier.id);
    expect(adopted.secret).not.toBe(earlier.secret);
    const robot = await client.getRobot(earlier.id);
    expect(robot.projects).toEqual(['beta']);
    expect(robot.disabled).toBe(false);
    const scopes = [{ type: 'repository', name: 'beta/app', actions: ['pull'] }];
    const grant = await harbor.authorizeToken({
      username: adopted.name,
      password: adopted.secret,
      scopes,
    });
    expect(grant).toMatchObject({ ok: true, access: scopes });
  });

  it('logs requests without secrets', async () => {
    const created = await client.createRobot({
      name: 'sat-logs',
      projects: ['alpha'],
      durationDays: 1,
    });
    const refreshed = await client.refreshRobotSecret(created.id);
    const log = logLines.join('');
    expect(log).toContain('"path":"/api/v2.0/robots"');
    expect(log).not.toContain(created.secret);
    expect(log).not.toContain(refreshed.secret);
    expect(log).not.toContain(harbor.admin.password);
    expect(log).not.toContain(Buffer.from(`admin:${harbor.admin.password}`).toString('base64'));
  });
});

describe('harbor client robots against the registry', () => {
  it('robot pulls its projects only', async () => {
    const robot = await client.createRobot({
      name: 'sat-pull',
      projects: ['alpha'],
      durationDays: 1,
    });
    expect(await pullAs(robot, 'alpha/app-a:1')).toBe(images.images['app-a:1']?.digest);
    await expect(pullAs(robot, 'beta/app-b:1')).rejects.toThrow(
      /requested access to the resource is denied/,
    );
  });

  it('robot pulls the union after an update', async () => {
    const robot = await client.createRobot({
      name: 'sat-union',
      projects: ['alpha'],
      durationDays: 1,
    });
    await client.updateRobotProjects(robot.id, ['alpha', 'beta']);
    expect(await pullAs(robot, 'alpha/app-a:1')).toBe(images.images['app-a:1']?.digest);
    expect(await pullAs(robot, 'beta/app-b:1')).toBe(images.images['app-b:1']?.digest);
  });

  it('refreshed secret pulls, old one fails', async () => {
    const robot = await client.createRobot({
      name: 'sat-rotate',
      projects: ['alpha'],
      durationDays: 1,
    });
    const refreshed = await client.refreshRobotSecret(robot.id);
    expect(await pullAs({ name: robot.name, secret: refreshed.secret }, 'alpha/app-a:1')).toBe(
      images.images['app-a:1']?.digest,
    );
    await expect(pullAs(robot, 'alpha/app-a:1')).rejects.toThrow(/invalid username\/password/);
  });

  it('deleted robot keeps an earlier token until expiry', async () => {
    const robot = await client.createRobot({
      name: 'sat-revoke',
      projects: ['alpha'],
      durationDays: 1,
    });
    const tokenServer = registry.tokenServer;
    if (!tokenServer) throw new Error('the registry runs without a token server');

    // Issue one token whose `exp` lies so far in the past that only the registry's leeway keeps
    // it valid, for about SHORT_TOKEN_LIFETIME_SECONDS more.
    tokenServer.setTtlSeconds(SHORT_TOKEN_LIFETIME_SECONDS - REGISTRY_EXP_LEEWAY_SECONDS);
    let earlier: { status: number; token?: string | undefined };
    try {
      earlier = await fetchRegistryToken(robot, 'repository:alpha/app-a:pull');
    } finally {
      tokenServer.setTtlSeconds(TOKEN_TTL_SECONDS);
    }
    expect(earlier.status).toBe(200);
    const token = earlier.token ?? '';

    expect(await client.deleteRobot(robot.id)).toBe(true);
    expect((await getManifest('alpha/app-a:1', token)).status).toBe(200);
    expect((await fetchRegistryToken(robot, 'repository:alpha/app-a:pull')).status).toBe(401);
    await expect(pullAs(robot, 'alpha/app-a:1')).rejects.toThrow(/invalid username\/password/);

    const deadline = Date.now() + TOKEN_EXPIRY_WAIT_MS;
    let last = await getManifest('alpha/app-a:1', token);
    while (last.status === 200 && Date.now() < deadline) {
      await sleep(500);
      last = await getManifest('alpha/app-a:1', token);
    }
    expect(last.status).toBe(401);
    expect(last.challenge).toContain('invalid_token');
  });
});

describe('harbor client over TLS', () => {
  let tlsHarbor: HarborDouble;
  let certPem: string;
  let certDir: string;

  const settings = (caBundle: string | null, insecure: boolean) => ({
    url: tlsHarbor.url,
    username: tlsHarbor.admin.username,
    password: tlsHarbor.admin.password,
    caBundle,
    insecure,
  });

  beforeAll(async () => {
    certDir = await mkdtemp(join(tmpdir(), 'harbor-client-tls-'));
    const keyPath = join(certDir, 'key.pem');
    const certPath = join(certDir, 'cert.pem');
    await runCommand('openssl', [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      keyPath,
      '-out',
      certPath,
      '-days',
      '1',
      '-subj',
      '/CN=127.0.0.1',
      '-addext',
      'subjectAltName=IP:127.0.0.1',
    ]);
    certPem = await readFile(certPath, 'utf8');
    tlsHarbor = await startHarborDouble({
      tls: { key: await readFile(keyPath, 'utf8'), cert: certPem },
    });
  });

  afterAll(async () => {
    await tlsHarbor?.stop();
    if (certDir) await rm(certDir, { recursive: true, force: true });
  });

  it('rejects an untrusted certificate', async () => {
    const untrusted = createHarborClient(settings(null, false));
    clients.push(untrusted);
    const error = await expectHarborError(untrusted.ping(), 'HARBOR_UNREACHABLE');
    expect(error.message).toMatch(/self[- ]signed certificate/);
  });

  it('trusts a given CA bundle', async () => {
    const trusted = createHarborClient(settings(certPem, false));
    clients.push(trusted);
    await expect(trusted.checkAccess()).resolves.toBeUndefined();
  });

  it('skips verification when insecure', async () => {
    const insecure = createHarborClient(settings(null, true));
    clients.push(insecure);
    expect(await insecure.ping()).toBe('Pong');
  });
});
