import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarborDouble } from '@edge/testkit/harbor';
import type { HarborDouble, RobotJson } from '@edge/testkit/harbor';

// The Harbor double alone, spoken to over HTTP the way a Harbor client would.

interface Credentials {
  username: string;
  password: string;
}

interface CallResult {
  status: number;
  headers: Headers;
  body: unknown;
}

const DAY_SECONDS = 86_400;

let harbor: HarborDouble;
let admin: Credentials;

async function call(
  method: string,
  path: string,
  options: { auth?: Credentials; body?: unknown; headers?: Record<string, string> } = {},
): Promise<CallResult> {
  const headers: Record<string, string> = { ...options.headers };
  if (options.auth) {
    const token = Buffer.from(`${options.auth.username}:${options.auth.password}`).toString(
      'base64',
    );
    headers.authorization = `Basic ${token}`;
  }
  if (options.body !== undefined) headers['content-type'] = 'application/json';
  const response = await fetch(`${harbor.apiUrl}${path}`, {
    method,
    headers,
    ...(options.body === undefined ? {} : { body: JSON.stringify(options.body) }),
  });
  const text = await response.text();
  const isJson = response.headers.get('content-type')?.includes('application/json') ?? false;
  return {
    status: response.status,
    headers: response.headers,
    body: isJson && text !== '' ? JSON.parse(text) : text,
  };
}

function pullPermissions(...projects: string[]) {
  return projects.map((namespace) => ({
    kind: 'project',
    namespace,
    access: [{ resource: 'repository', action: 'pull' }],
  }));
}

async function createRobot(name: string, projects: string[], duration = 30) {
  const result = await call('POST', '/robots', {
    auth: admin,
    body: { name, level: 'system', duration, permissions: pullPermissions(...projects) },
  });
  expect(result.status).toBe(201);
  return result.body as {
    id: number;
    name: string;
    secret: string;
    expires_at: number;
    creation_time: string;
  };
}

function firstErrorCode(result: CallResult): string | undefined {
  return (result.body as { errors?: { code: string }[] }).errors?.[0]?.code;
}

beforeAll(async () => {
  harbor = await startHarborDouble({
    projects: ['alpha', 'beta', { name: 'library', public: true }],
  });
  admin = harbor.admin;
  harbor.createUser('dev', 'DevPass123');
});

afterAll(async () => {
  await harbor?.stop();
});

describe('harbor double system endpoints', () => {
  it('ping answers Pong as plain text', async () => {
    const result = await call('GET', '/ping');
    expect(result.status).toBe(200);
    expect(result.body).toBe('Pong');
    expect(result.headers.get('content-type')).toContain('text/plain');
  });

  it('health reports an unhealthy component', async () => {
    const healthy = await call('GET', '/health');
    expect(healthy.body).toMatchObject({ status: 'healthy' });
    harbor.setComponentHealth('database', 'connection refused');
    const unhealthy = await call('GET', '/health');
    harbor.setComponentHealth('database', undefined);
    expect(unhealthy.body).toMatchObject({ status: 'unhealthy' });
    const components = (
      unhealthy.body as { components: { name: string; status: string; error?: string }[] }
    ).components;
    expect(components).toContainEqual({
      name: 'database',
      status: 'unhealthy',
      error: 'connection refused',
    });
    expect(components).toContainEqual({ name: 'core', status: 'healthy' });
  });

  it('request id is echoed or generated', async () => {
    const echoed = await call('GET', '/ping', { headers: { 'x-request-id': 'req-42' } });
    expect(echoed.headers.get('x-request-id')).toBe('req-42');
    const generated = await call('GET', '/ping');
    expect(generated.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('systeminfo hides details from anonymous callers', async () => {
    const anonymous = await call('GET', '/systeminfo');
    expect(anonymous.body).not.toHaveProperty('harbor_version');
    const signedIn = await call('GET', '/systeminfo', { auth: admin });
    expect(signedIn.body).toHaveProperty('harbor_version');
    expect(signedIn.body).toMatchObject({ auth_mode: 'db_auth', external_url: harbor.url });
  });

  it('unknown route gets the error envelope', async () => {
    const result = await call('GET', '/no-such-thing', { auth: admin });
    expect(result.status).toBe(404);
    expect(firstErrorCode(result)).toBe('NOT_FOUND');
  });
});

describe('harbor double credentials', () => {
  it.each([
    { who: 'anonymous', auth: undefined, status: 401, code: 'UNAUTHORIZED' },
    {
      who: 'wrong password',
      auth: { username: 'admin', password: 'nope' },
      status: 401,
      code: 'UNAUTHORIZED',
    },
    {
      who: 'unknown robot',
      auth: { username: 'robot$ghost', password: 'Secret123' },
      status: 401,
      code: 'UNAUTHORIZED',
    },
    {
      who: 'user without admin role',
      auth: { username: 'dev', password: 'DevPass123' },
      status: 403,
      code: 'FORBIDDEN',
    },
  ])('robot list rejects $who', async ({ auth, status, code }) => {
    const result = await call('GET', '/robots', auth ? { auth } : {});
    expect(result.status).toBe(status);
    expect(firstErrorCode(result)).toBe(code);
  });

  it('admin lists robots', async () => {
    const result = await call('GET', '/robots', { auth: admin });
    expect(result.status).toBe(200);
    expect(Array.isArray(result.body)).toBe(true);
  });
});

describe('harbor double robot accounts', () => {
  it('creates a system robot with prefix and expiry', async () => {
    const created = await createRobot('sat-create', ['alpha'], 7);
    expect(created.name).toBe('robot$sat-create');
    expect(created.secret).toMatch(/^(?=.*[A-Z])(?=.*[a-z])(?=.*[0-9]).{8,128}$/);
    const createdAt = Math.floor(Date.parse(created.creation_time) / 1000);
    expect(created.expires_at).toBe(createdAt + 7 * DAY_SECONDS);
    const read = await call('GET', `/robots/${created.id}`, { auth: admin });
    expect(read.status).toBe(200);
    const robot = read.body as RobotJson;
    expect(robot).toMatchObject({
      name: 'robot$sat-create',
      level: 'system',
      duration: 7,
      disable: false,
    });
    expect(robot).not.toHaveProperty('secret');
    expect(robot.permissions).toEqual(pullPermissions('alpha'));
  });

  it('answers the Location of a new robot', async () => {
    const result = await call('POST', '/robots', {
      auth: admin,
      body: {
        name: 'sat-location',
        level: 'system',
        duration: -1,
        permissions: pullPermissions('alpha'),
      },
    });
    expect(result.status).toBe(201);
    const id = (result.body as { id: number }).id;
    expect(result.headers.get('location')).toBe(`/api/v2.0/robots/${id}`);
    expect((result.body as { expires_at: number }).expires_at).toBe(-1);
  });

  it('rejects a duplicate robot name with 409', async () => {
    await createRobot('sat-dup', ['alpha']);
    const again = await call('POST', '/robots', {
      auth: admin,
      body: {
        name: 'sat-dup',
        level: 'system',
        duration: 30,
        permissions: pullPermissions('beta'),
      },
    });
    expect(again.status).toBe(409);
    expect(firstErrorCode(again)).toBe('CONFLICT');
  });

  it.each([
    {
      case: 'uppercase name',
      body: { name: 'Sat', duration: 1, permissions: pullPermissions('alpha') },
      status: 400,
    },
    {
      case: 'plus in name',
      body: { name: 'a+b', duration: 1, permissions: pullPermissions('alpha') },
      status: 400,
    },
    {
      case: 'zero duration',
      body: { name: 'zero', duration: 0, permissions: pullPermissions('alpha') },
      status: 400,
    },
    { case: 'no permissions', body: { name: 'none', duration: 1, permissions: [] }, status: 400 },
    {
      case: 'unknown action',
      body: {
        name: 'fly',
        duration: 1,
        permissions: [
          {
            kind: 'project',
            namespace: 'alpha',
            access: [{ resource: 'repository', action: 'fly' }],
          },
        ],
      },
      status: 400,
    },
    {
      case: 'unknown project',
      body: { name: 'lost', duration: 1, permissions: pullPermissions('nowhere') },
      status: 404,
    },
    {
      case: 'wrong type',
      body: { name: 42, duration: 1, permissions: pullPermissions('alpha') },
      status: 400,
    },
  ])('rejects a robot with $case', async ({ body, status }) => {
    const result = await call('POST', '/robots', {
      auth: admin,
      body: { level: 'system', ...body },
    });
    expect(result.status).toBe(status);
    expect(firstErrorCode(result)).toBeDefined();
  });

  it('answers malformed JSON with 400', async () => {
    const response = await fetch(`${harbor.apiUrl}/robots`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"name": ',
    });
    expect(response.status).toBe(400);
    expect(await response.json()).toMatchObject({ errors: [{ code: 'BAD_REQUEST' }] });
  });

  it('answers a non-JSON body with 415', async () => {
    const response = await fetch(`${harbor.apiUrl}/robots`, {
      method: 'POST',
      headers: { 'content-type': 'text/plain' },
      body: 'name=sat',
    });
    expect(response.status).toBe(415);
    expect(await response.json()).toMatchObject({ errors: [{ code: 'UNSUPPORTED_MEDIA_TYPE' }] });
  });

  it('answers a missing body with 422', async () => {
    const created = await createRobot('sat-nobody', ['alpha']);
    const result = await call('PATCH', `/robots/${created.id}`, { auth: admin });
    expect(result.status).toBe(422);
    expect(firstErrorCode(result)).toBe('UNPROCESSABLE_ENTITY');
  });

  it('validates the body before the credentials', async () => {
    const result = await call('POST', '/robots', {
      body: { name: 'BAD', level: 'system', duration: 1 },
    });
    expect(result.status).toBe(400);
  });

  it('creates a project robot named project+name', async () => {
    const result = await call('POST', '/robots', {
      auth: admin,
      body: { name: 'ci', level: 'project', duration: 1, permissions: pullPermissions('beta') },
    });
    expect(result.status).toBe(201);
    expect((result.body as { name: string }).name).toBe('robot$beta+ci');
    const twoProjects = await call('POST', '/robots', {
      auth: admin,
      body: {
        name: 'ci2',
        level: 'project',
        duration: 1,
        permissions: pullPermissions('alpha', 'beta'),
      },
    });
    expect(twoProjects.status).toBe(400);
  });

  it('finds a robot by exact stored name', async () => {
    const created = await createRobot('sat-find', ['alpha']);
    await createRobot('sat-find-other', ['alpha']);
    const exact = await call('GET', '/robots?q=name=sat-find', { auth: admin });
    expect(exact.status).toBe(200);
    expect((exact.body as RobotJson[]).map((robot) => robot.id)).toEqual([created.id]);
    const fuzzy = await call('GET', '/robots?q=name=~sat-find', { auth: admin });
    expect((fuzzy.body as RobotJson[]).length).toBe(2);
  });

  it('paginates with X-Total-Count and Link', async () => {
    for (let index = 0; index < 12; index += 1) await createRobot(`page-${index}`, ['alpha']);
    const first = await call('GET', '/robots?q=name=~page-&page_size=5', { auth: admin });
    expect(first.headers.get('x-total-count')).toBe('12');
    expect((first.body as RobotJson[]).length).toBe(5);
    expect(first.headers.get('link')).toBe(
      '</api/v2.0/robots?q=name=~page-&page_size=5&page=2>; rel="next"',
    );
    const middle = await call('GET', '/robots?q=name=~page-&page_size=5&page=2', { auth: admin });
    expect(middle.headers.get('link')).toContain('rel="prev" , <');
    const last = await call('GET', '/robots?q=name=~page-&page_size=5&page=3', { auth: admin });
    expect((last.body as RobotJson[]).length).toBe(2);
    expect(last.headers.get('link')).not.toContain('rel="next"');
    const tooLarge = await call('GET', '/robots?page_size=101', { auth: admin });
    expect(tooLarge.status).toBe(422);
  });

  it('returns 404 for an unknown robot id', async () => {
    const result = await call('GET', '/robots/999999', { auth: admin });
    expect(result.status).toBe(404);
    expect(firstErrorCode(result)).toBe('NOT_FOUND');
  });

  it('replaces permissions with PUT', async () => {
    const created = await createRobot('sat-put', ['alpha']);
    const update = await call('PUT', `/robots/${created.id}`, {
      auth: admin,
      body: {
        name: 'robot$sat-put',
        level: 'system',
        duration: 30,
        permissions: pullPermissions('alpha', 'beta'),
      },
    });
    expect(update.status).toBe(200);
    const read = await call('GET', `/robots/${created.id}`, { auth: admin });
    expect((read.body as RobotJson).permissions).toEqual(pullPermissions('alpha', 'beta'));
  });

  it('rejects a PUT that renames the robot', async () => {
    const created = await createRobot('sat-rename', ['alpha']);
    const update = await call('PUT', `/robots/${created.id}`, {
      auth: admin,
      body: { name: 'robot$other', level: 'system', permissions: pullPermissions('alpha') },
    });
    expect(update.status).toBe(400);
  });

  it('counts a new duration from creation time', async () => {
    const created = await createRobot('sat-duration', ['alpha'], 1);
    const update = await call('PUT', `/robots/${created.id}`, {
      auth: admin,
      body: {
        name: created.name,
        level: 'system',
        duration: 10,
        permissions: pullPermissions('alpha'),
      },
    });
    expect(update.status).toBe(200);
    const read = await call('GET', `/robots/${created.id}`, { auth: admin });
    const createdAt = Math.floor(Date.parse(created.creation_time) / 1000);
    expect((read.body as RobotJson).expires_at).toBe(createdAt + 10 * DAY_SECONDS);
  });

  it('refreshes the secret and voids the old one', async () => {
    const created = await createRobot('sat-refresh', ['alpha']);
    const oldAuth = { username: created.name, password: created.secret };
    expect((await call('HEAD', '/projects?project_name=alpha', { auth: oldAuth })).status).toBe(
      200,
    );
    const refreshed = await call('PATCH', `/robots/${created.id}`, { auth: admin, body: {} });
    expect(refreshed.status).toBe(200);
    const secret = (refreshed.body as { secret: string }).secret;
    expect(secret).not.toBe(created.secret);
    expect((await call('HEAD', '/projects?project_name=alpha', { auth: oldAuth })).status).toBe(
      401,
    );
    const newAuth = { username: created.name, password: secret };
    expect((await call('HEAD', '/projects?project_name=alpha', { auth: newAuth })).status).toBe(
      200,
    );
    const read = await call('GET', `/robots/${created.id}`, { auth: admin });
    expect((read.body as RobotJson).expires_at).toBe(created.expires_at);
  });

  it('accepts a valid chosen secret only', async () => {
    const created = await createRobot('sat-chosen', ['alpha']);
    const weak = await call('PATCH', `/robots/${created.id}`, {
      auth: admin,
      body: { secret: 'short' },
    });
    expect(weak.status).toBe(400);
    const chosen = await call('PATCH', `/robots/${created.id}`, {
      auth: admin,
      body: { secret: 'Chosen1234' },
    });
    expect(chosen.status).toBe(200);
    expect(chosen.body).toEqual({});
    const auth = { username: created.name, password: 'Chosen1234' };
    expect((await call('HEAD', '/projects?project_name=alpha', { auth })).status).toBe(200);
  });

  it('deletes a robot, then answers 404', async () => {
    const created = await createRobot('sat-delete', ['alpha']);
    expect((await call('DELETE', `/robots/${created.id}`, { auth: admin })).status).toBe(200);
    expect((await call('GET', `/robots/${created.id}`, { auth: admin })).status).toBe(404);
    expect((await call('DELETE', `/robots/${created.id}`, { auth: admin })).status).toBe(404);
    expect(harbor.listRobots().some((robot) => robot.id === created.id)).toBe(false);
  });

  it('treats an expired robot as anonymous', async () => {
    const created = await createRobot('sat-expire', ['alpha'], 1);
    const auth = { username: created.name, password: created.secret };
    expect((await call('HEAD', '/projects?project_name=alpha', { auth })).status).toBe(200);
    harbor.clock.advance(2 * DAY_SECONDS * 1000);
    try {
      expect((await call('HEAD', '/projects?project_name=alpha', { auth })).status).toBe(401);
    } finally {
      harbor.clock.advance(-2 * DAY_SECONDS * 1000);
    }
  });
});

describe('harbor double projects', () => {
  it('shows each caller the projects it may see', async () => {
    const robot = await createRobot('sat-projects', ['beta']);
    const names = async (auth?: Credentials) =>
      ((await call('GET', '/projects', auth ? { auth } : {})).body as { name: string }[]).map(
        (p) => p.name,
      );
    expect(await names()).toEqual(['library']);
    expect(await names(admin)).toEqual(['alpha', 'beta', 'library']);
    expect(await names({ username: robot.name, password: robot.secret })).toEqual([
      'beta',
      'library',
    ]);
  });

  it('renders the Project model fields', async () => {
    const result = await call('GET', '/projects?name=alp', { auth: admin });
    expect(result.headers.get('x-total-count')).toBe('1');
    expect((result.body as unknown[])[0]).toMatchObject({
      name: 'alpha',
      owner_name: 'admin',
      deleted: false,
      metadata: { public: 'false' },
    });
  });

  it('HEAD tells whether a project exists', async () => {
    expect((await call('HEAD', '/projects?project_name=alpha', { auth: admin })).status).toBe(200);
    expect((await call('HEAD', '/projects?project_name=gamma', { auth: admin })).status).toBe(404);
    expect((await call('HEAD', '/projects?project_name=alpha')).status).toBe(401);
  });

  it('creates a project and rejects a duplicate', async () => {
    const created = await call('POST', '/projects', {
      auth: admin,
      body: { project_name: 'delta' },
    });
    expect(created.status).toBe(201);
    expect(created.headers.get('location')).toMatch(/^\/api\/v2\.0\/projects\/[0-9]+$/);
    const duplicate = await call('POST', '/projects', {
      auth: admin,
      body: { project_name: 'delta' },
    });
    expect(duplicate.status).toBe(409);
    expect(firstErrorCode(duplicate)).toBe('CONFLICT');
    const byName = await call('GET', '/projects/delta', { auth: admin });
    expect(byName.body).toMatchObject({ name: 'delta' });
  });

  it('hides permissions on a deleted project', async () => {
    harbor.createProject('epsilon');
    const robot = await createRobot('sat-epsilon', ['alpha', 'epsilon']);
    expect((await call('DELETE', '/projects/epsilon', { auth: admin })).status).toBe(200);
    const read = await call('GET', `/robots/${robot.id}`, { auth: admin });
    expect((read.body as RobotJson).permissions).toEqual(pullPermissions('alpha'));
    expect((await call('HEAD', '/projects?project_name=epsilon', { auth: admin })).status).toBe(
      404,
    );
  });

  it('private project is 401 anonymous, 404 unknown', async () => {
    expect((await call('GET', '/projects/alpha')).status).toBe(401);
    expect((await call('GET', '/projects/nowhere', { auth: admin })).status).toBe(404);
  });
});

describe('harbor double token grants', () => {
  const scope = (name: string, actions = ['pull']) => ({ type: 'repository', name, actions });

  it('grants pull only on the robot projects', async () => {
    const robot = await createRobot('sat-token', ['alpha']);
    const grant = await harbor.authorizeToken({
      username: robot.name,
      password: robot.secret,
      scopes: [scope('alpha/app', ['pull', 'push']), scope('beta/app'), scope('library/base')],
    });
    expect(grant).toEqual({
      ok: true,
      subject: 'robot$sat-token',
      access: [
        scope('alpha/app', ['pull']),
        scope('beta/app', []),
        scope('library/base', ['pull']),
      ],
    });
  });

  it('grants push where the permission holds it', async () => {
    const created = await call('POST', '/robots', {
      auth: admin,
      body: {
        name: 'sat-push',
        level: 'system',
        duration: 1,
        permissions: [
          {
            kind: 'project',
            namespace: 'beta',
            access: [
              { resource: 'repository', action: 'pull' },
              { resource: 'repository', action: 'push' },
            ],
          },
        ],
      },
    });
    const robot = created.body as { name: string; secret: string };
    const grant = await harbor.authorizeToken({
      username: robot.name,
      password: robot.secret,
      scopes: [scope('beta/app', ['pull', 'push'])],
    });
    expect(grant).toMatchObject({ ok: true, access: [scope('beta/app', ['pull', 'push'])] });
  });

  it('rejects wrong, disabled, expired and deleted robots', async () => {
    const robot = await createRobot('sat-reject', ['alpha'], 1);
    const request = { username: robot.name, password: robot.secret, scopes: [scope('alpha/app')] };
    expect(await harbor.authorizeToken(request)).toMatchObject({ ok: true });
    expect(await harbor.authorizeToken({ ...request, password: 'Wrong1234' })).toEqual({
      ok: false,
    });

    const disable = await call('PUT', `/robots/${robot.id}`, {
      auth: admin,
      body: {
        name: robot.name,
        level: 'system',
        disable: true,
        permissions: pullPermissions('alpha'),
      },
    });
    expect(disable.status).toBe(200);
    expect(await harbor.authorizeToken(request)).toEqual({ ok: false });
    await call('PUT', `/robots/${robot.id}`, {
      auth: admin,
      body: {
        name: robot.name,
        level: 'system',
        disable: false,
        permissions: pullPermissions('alpha'),
      },
    });
    expect(await harbor.authorizeToken(request)).toMatchObject({ ok: true });

    harbor.clock.advance(2 * DAY_SECONDS * 1000);
    try {
      expect(await harbor.authorizeToken(request)).toEqual({ ok: false });
    } finally {
      harbor.clock.advance(-2 * DAY_SECONDS * 1000);
    }

    await call('DELETE', `/robots/${robot.id}`, { auth: admin });
    expect(await harbor.authorizeToken(request)).toEqual({ ok: false });
  });

  it('gives anonymous callers public pulls only', async () => {
    const grant = await harbor.authorizeToken({
      scopes: [scope('library/base'), scope('alpha/app')],
    });
    expect(grant).toEqual({
      ok: true,
      subject: '',
      access: [scope('library/base'), scope('alpha/app', [])],
    });
  });

  it('gives the admin every requested action', async () => {
    const grant = await harbor.authorizeToken({
      username: admin.username,
      password: admin.password,
      scopes: [scope('beta/app', ['pull', 'push', 'delete'])],
    });
    expect(grant).toMatchObject({
      ok: true,
      access: [scope('beta/app', ['pull', 'push', 'delete'])],
    });
  });

  it('counts token requests and rejections', () => {
    expect(harbor.counters.tokenRequests).toBeGreaterThan(0);
    expect(harbor.counters.tokenRejections).toBeGreaterThan(0);
    expect(harbor.counters.requests.get('POST /api/v2.0/robots')).toBeGreaterThan(0);
  });
});
