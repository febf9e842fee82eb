import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  buildTestImages,
  pushTestImages,
  startRegistry,
  type RegistryHandle,
  type TestImages,
} from '@edge/testkit';
import { desiredStateSchema } from '@edge/contract';
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

const MANIFEST_ACCEPT =
  'application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json';

let databases: TestDatabaseHandle;
let gc: TestApp;
let admin: string;
let registry: RegistryHandle;
let images: TestImages;
let satellite: SatelliteIdentity;

function basic(): string {
  return `Basic ${Buffer.from(`${registry.username}:${registry.password}`).toString('base64')}`;
}

/** Points `repository:tag` at the manifest of another tag by a raw manifest PUT. */
async function moveTag(repository: string, fromTag: string, toTag: string): Promise<void> {
  const source = await request(`${registry.url}/v2/${repository}/manifests/${fromTag}`, {
    headers: { accept: MANIFEST_ACCEPT, authorization: basic() },
  });
  const bytes = Buffer.from(await source.body.arrayBuffer());
  const mediaType = String(source.headers['content-type']);
  const put = await request(`${registry.url}/v2/${repository}/manifests/${toTag}`, {
    method: 'PUT',
    headers: { 'content-type': mediaType, authorization: basic() },
    body: bytes,
  });
  await put.body.dump();
  if (put.statusCode !== 201) throw new Error(`moving tag failed with ${put.statusCode}`);
}

async function desiredState() {
  const response = await gc.app.inject({
    method: 'GET',
    url: '/satellite/v1/state',
    headers: bearer(await signSatelliteJwt(satellite)),
  });
  return desiredStateSchema.parse(json(response));
}

beforeAll(async () => {
  [databases, registry, images] = await Promise.all([
    provisionDatabase(),
    startRegistry({ auth: 'basic' }),
    buildTestImages({ largeLayerMiB: 1 }),
  ]);
  await pushTestImages(registry, images, { only: ['app-a:1', 'app-a:2', 'app-a:sig', 'multi:1'] });
  gc = await startApp(databases);
  admin = await login(gc.app, 'admin', ADMIN_PASSWORD);
  const created = await gc.app.inject({
    method: 'POST',
    url: '/api/v1/registries',
    headers: bearer(admin),
    payload: {
      name: 'central',
      kind: 'oci',
      url: registry.url,
      satelliteUrl: 'http://registry.site.example:5000',
      localPrefix: 'central',
      credential: { username: registry.username, password: registry.password },
    },
  });
  assertStatus(created, 201);
}, 180_000);

afterAll(async () => {
  await gc?.close();
  await registry?.stop();
  await databases?.close();
});

describe('registry check', () => {
  it('rejects a registry with a wrong password', async () => {
    const response = await gc.app.inject({
      method: 'POST',
      url: '/api/v1/registries',
      headers: bearer(admin),
      payload: {
        name: 'wrong-password',
        kind: 'oci',
        url: registry.url,
        credential: { username: registry.username, password: 'not-the-password' },
      },
    });
    expect(response.statusCode).toBe(400);
    expect(json<{ error: { code: string } }>(response).error.code).toBe('REGISTRY_CHECK_FAILED');
  });
});

describe('tag resolution', () => {
  it('resolves tags, digests and referrers into the desired state', async () => {
    const app1 = images.images['app-a:1']!;
    const multi = images.images['multi:1']!;
    const group = await gc.app.inject({
      method: 'POST',
      url: '/api/v1/groups',
      headers: bearer(admin),
      payload: {
        name: 'apps',
        selections: [
          { registry: 'central', repository: 'test/app-a', tag: '1', includeReferrers: true },
          {
            registry: 'central',
            repository: 'test/multi',
            digest: multi.digest,
            platforms: ['linux/arm64'],
          },
          { registry: 'central', repository: 'test/missing', tag: '1' },
        ],
      },
    });
    expect(group.statusCode).toBe(201);
    const selections = json<{
      selections: { resolved: { digest: string } | null; error: { code: string } | null }[];
    }>(group).selections;
    expect(selections[0]?.resolved?.digest).toBe(app1.digest);
    expect(selections[1]?.resolved?.digest).toBe(multi.digest);
    expect(selections[2]?.resolved).toBeNull();
    expect(selections[2]?.error?.code).toBe('MANIFEST_UNKNOWN');

    satellite = await createAndJoin(gc.app, admin, { name: 'resolver', groups: ['apps'] });
    const state = await desiredState();
    expect(state.upstreams).toHaveLength(1);
    expect(state.upstreams[0]).toMatchObject({
      url: 'http://registry.site.example:5000',
      localPrefix: 'central',
      credential: { username: registry.username, password: registry.password, expiresAt: null },
    });
    const appA = state.artifacts.find((artifact) => artifact.repository === 'test/app-a');
    expect(appA).toMatchObject({
      tag: '1',
      digest: app1.digest,
      mediaType: app1.mediaType,
      size: app1.size,
      platforms: null,
      localRepository: 'central/test/app-a',
    });
    expect(appA?.referrers.map((referrer) => referrer.digest)).toEqual([
      images.images['app-a:sig']!.digest,
    ]);
    const multiArtifact = state.artifacts.find((artifact) => artifact.repository === 'test/multi');
    expect(multiArtifact).toMatchObject({
      tag: null,
      digest: multi.digest,
      platforms: ['linux/arm64'],
    });
    expect(state.artifacts).toHaveLength(2);
  });

  it('follows a moved tag with a new revision', async () => {
    const before = await desiredState();
    await moveTag('test/app-a', '2', '1');
    const resolved = await gc.app.inject({
      method: 'POST',
      url: '/api/v1/groups/apps/resolve',
      headers: bearer(admin),
    });
    expect(resolved.statusCode).toBe(200);
    expect(json<{ changed: boolean }>(resolved).changed).toBe(true);
    const after = await desiredState();
    expect(after.revision).toBeGreaterThan(before.revision);
    const appA = after.artifacts.find((artifact) => artifact.repository === 'test/app-a');
    expect(appA?.digest).toBe(images.images['app-a:2']!.digest);
    expect(appA?.referrers).toEqual([]);

    const again = await gc.app.inject({
      method: 'POST',
      url: '/api/v1/groups/apps/resolve',
      headers: bearer(admin),
    });
    expect(json<{ changed: boolean }>(again).changed).toBe(false);
    expect((await desiredState()).revision).toBe(after.revision);
  });

  it('replaces selections with one new revision', async () => {
    const before = await desiredState();
    const replaced = await gc.app.inject({
      method: 'PUT',
      url: '/api/v1/groups/apps/selections',
      headers: bearer(admin),
      payload: [{ registry: 'central', repository: 'test/app-a', tag: '1' }],
    });
    expect(replaced.statusCode).toBe(200);
    const after = await desiredState();
    // One bump after resolution; a bump before it would give members an interim state.
    expect(after.revision).toBe(before.revision + 1);
    expect(after.artifacts.map((artifact) => artifact.digest)).toEqual([
      images.images['app-a:2']!.digest,
    ]);
  });

  it('keeps the last digest when the upstream is down', async () => {
    const before = await desiredState();
    await gc.app.inject({
      method: 'PATCH',
      url: '/api/v1/registries/central',
      headers: bearer(admin),
      payload: { url: 'http://127.0.0.1:9', skipCheck: true },
    });
    const resolved = await gc.app.inject({
      method: 'POST',
      url: '/api/v1/groups/apps/resolve',
      headers: bearer(admin),
    });
    const group = json<{
      group: {
        selections: { resolved: { digest: string } | null; error: { code: string } | null }[];
      };
    }>(resolved).group;
    expect(group.selections[0]?.error?.code).toBe('UPSTREAM_UNREACHABLE');
    expect(group.selections[0]?.resolved?.digest).toBe(images.images['app-a:2']!.digest);
    const after = await desiredState();
    expect(after.artifacts.map((artifact) => artifact.digest)).toEqual(
      before.artifacts.map((artifact) => artifact.digest),
    );
  });
});
