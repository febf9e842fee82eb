import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTestImages, runCommand, type RegistryHandle, type TestImages } from '@edge/testkit';
import { startHarborDouble, type HarborDouble } from '@edge/testkit/harbor';
import { desiredStateSchema, type DesiredState, type UpstreamCredential } from '@edge/contract';
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
  type SatelliteIdentity,
  type TestApp,
  type TestDatabaseHandle,
} from './helpers.js';

// Harbor cannot run here, so the Harbor test double from @edge/testkit/harbor imitates Harbor's
// robot and project API. Its token service issues tokens for a real docker-registry in token mode.

const MANIFEST_ACCEPT =
  'application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json';
const DAY_MS = 86_400_000;

let databases: TestDatabaseHandle;
let gc: TestApp;
let admin: string;
let harbor: HarborDouble;
let registry: RegistryHandle;
let images: TestImages;
let satellite: SatelliteIdentity;
let clockOffsetMs = 0;

async function push(image: string, reference: string): Promise<void> {
  const layoutTag = images.images[image]!.layoutTag;
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

/** Pulls a manifest the way a satellite does: token from the realm, then the manifest GET. */
async function pullStatus(
  credential: { username: string; password: string },
  repository: string,
  tag: string,
): Promise<number> {
  const tokenServer = registry.tokenServer!;
  const url = new URL(tokenServer.realm);
  url.searchParams.set('service', tokenServer.service);
  url.searchParams.set('scope', `repository:${repository}:pull`);
  const tokenResponse = await fetch(url, {
    headers: {
      authorization: `Basic ${Buffer.from(`${credential.username}:${credential.password}`).toString('base64')}`,
    },
  });
  const body = (await tokenResponse.json()) as { token?: string };
  if (tokenResponse.status !== 200 || body.token === undefined) return tokenResponse.status;
  const manifest = await fetch(`${registry.url}/v2/${repository}/manifests/${tag}`, {
    headers: { authorization: `Bearer ${body.token}`, accept: MANIFEST_ACCEPT },
  });
  await manifest.arrayBuffer();
  return manifest.status;
}

async function desiredState(): Promise<DesiredState> {
  const response = await gc.app.inject({
    method: 'GET',
    url: '/satellite/v1/state',
    headers: bearer(
      await signSatelliteJwt(satellite, {
        nowSeconds: Math.floor((Date.now() + clockOffsetMs) / 1_000),
      }),
    ),
  });
  return desiredStateSchema.parse(json(response));
}

function credentialOf(state: DesiredState): UpstreamCredential {
  const credential = state.upstreams[0]?.credential;
  if (credential === null || credential === undefined)
    throw new Error('desired state has no credential');
  return credential;
}

beforeAll(async () => {
  [databases, images, harbor] = await Promise.all([
    provisionDatabase(),
    buildTestImages({ largeLayerMiB: 1 }),
    startHarborDouble({ projects: ['alpha', 'beta', 'gamma'], registry: { tokenTtlSeconds: 60 } }),
  ]);
  registry = harbor.registry!;
  await push('app-a:1', 'alpha/app-a:1');
  await push('app-b:1', 'beta/app-b:1');
  await push('base:1', 'gamma/base:1');
  gc = await startApp(databases, { build: { now: () => Date.now() + clockOffsetMs } });
  admin = await login(gc.app, 'admin', ADMIN_PASSWORD);
  const created = await gc.app.inject({
    method: 'POST',
    url: '/api/v1/registries',
    headers: bearer(admin),
    payload: {
      name: 'harbor',
      kind: 'harbor',
      url: registry.url,
      apiUrl: harbor.url,
      credential: harbor.admin,
    },
  });
  assertStatus(created, 201);
  for (const [name, repository, tag] of [
    ['team-alpha', 'alpha/app-a', '1'],
    ['team-beta', 'beta/app-b', '1'],
  ] as const) {
    const group = await gc.app.inject({
      method: 'POST',
      url: '/api/v1/groups',
      headers: bearer(admin),
      payload: { name, selections: [{ registry: 'harbor', repository, tag }] },
    });
    assertStatus(group, 201);
  }
}, 180_000);

afterAll(async () => {
  await gc?.close();
  await harbor?.stop();
  await databases?.close();
});

describe('harbor robot accounts', () => {
  it('grants the union of the groups projects and nothing else', async () => {
    satellite = await createAndJoin(gc.app, admin, {
      name: 'site-1',
      groups: ['team-alpha', 'team-beta'],
    });
    const state = await desiredState();
    expect(state.artifacts.map((artifact) => artifact.repository).sort()).toEqual([
      'alpha/app-a',
      'beta/app-b',
    ]);
    const credential = credentialOf(state);
    expect(credential.username).toBe(`robot$sat-${satellite.id}`);
    expect(state.upstreams[0]?.credential?.expiresAt).not.toBeNull();
    expect(await pullStatus(credential, 'alpha/app-a', '1')).toBe(200);
    expect(await pullStatus(credential, 'beta/app-b', '1')).toBe(200);
    expect(await pullStatus(credential, 'gamma/base', '1')).toBe(401);
  });

  it('narrows the robot when a group is removed', async () => {
    const patched = await gc.app.inject({
      method: 'PATCH',
      url: '/api/v1/satellites/site-1',
      headers: bearer(admin),
      payload: { groups: ['team-alpha'] },
    });
    expect(patched.statusCode).toBe(200);
    const credential = credentialOf(await desiredState());
    expect(await pullStatus(credential, 'alpha/app-a', '1')).toBe(200);
    expect(await pullStatus(credential, 'beta/app-b', '1')).toBe(401);
  });

  it('rotates a secret before it expires', async () => {
    const before = await desiredState();
    const oldCredential = credentialOf(before);
    // 25 days on, the 30-day robot is inside the 7-day refresh margin.
    clockOffsetMs = 25 * DAY_MS;
    try {
      expect(await gc.context.harbor.rotateExpiring()).toBe(1);
      const after = await desiredState();
      expect(after.revision).toBeGreaterThan(before.revision);
      const newCredential = credentialOf(after);
      expect(newCredential.password).not.toBe(oldCredential.password);
      expect(Date.parse(newCredential.expiresAt ?? '')).toBeGreaterThan(
        Date.parse(oldCredential.expiresAt ?? ''),
      );
      expect(await pullStatus(newCredential, 'alpha/app-a', '1')).toBe(200);
      expect(await pullStatus(oldCredential, 'alpha/app-a', '1')).toBe(401);
    } finally {
      clockOffsetMs = 0;
    }
  });

  it('deletes the robot on revoke', async () => {
    const credential = credentialOf(await desiredState());
    const revoked = await gc.app.inject({
      method: 'POST',
      url: '/api/v1/satellites/site-1/revoke',
      headers: bearer(admin),
    });
    expect(revoked.statusCode).toBe(200);
    expect(harbor.listRobots().map((robot) => robot.name)).not.toContain(credential.username);
    expect(await pullStatus(credential, 'alpha/app-a', '1')).toBe(401);
    const audit = await gc.app.inject({
      method: 'GET',
      url: '/api/v1/audit?limit=500',
      headers: bearer(admin),
    });
    const actions = json<{ items: { action: string }[] }>(audit).items.map((item) => item.action);
    expect(actions).toEqual(
      expect.arrayContaining([
        'credential.create',
        'credential.rotate',
        'credential.delete',
        'satellite.revoke',
      ]),
    );
  });
});
