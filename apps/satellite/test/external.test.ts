// The built satellite copying into an external docker-registry (CNCF Distribution 2.8) over the
// OCI API, from a real upstream docker-registry, driven by the built Ground Control on PGlite.
import { buildTestImages, pushTestImages, runCommand, startRegistry } from '@edge/testkit';
import type { RegistryHandle, TestImages } from '@edge/testkit';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newDataDir, rawDigest, startGroundControl, startSatellite, waitFor } from './harness.js';
import type { GroundControlHandle, SatelliteHandle } from './harness.js';

/** Small large:1 layer: the 200 MiB case runs against the embedded registry. */
const LARGE_LAYER_MIB = 4;

describe('satellite with an external registry', () => {
  let images: TestImages;
  let upstream: RegistryHandle;
  let local: RegistryHandle;
  let gc: GroundControlHandle;
  let satellite: SatelliteHandle;
  const cleanups: (() => Promise<void>)[] = [];

  const names = [
    'base:1',
    'app-a:1',
    'app-a:2',
    'app-b:1',
    'arm64:1',
    'multi:1',
    'docker:1',
    'large:1',
  ];
  const selections = () =>
    names.map((name) => {
      const image = images.images[name];
      if (!image) throw new Error(`test image ${name} missing`);
      return {
        registry: 'up',
        repository: image.repository,
        tag: image.tag,
        ...(name === 'app-a:1' ? { includeReferrers: true } : {}),
      };
    });
  const filtered = {
    registry: 'up-filtered',
    repository: 'test/multi',
    tag: '1',
    platforms: ['linux/arm64'],
  };
  const localCredentials = () => ({
    username: local.username ?? '',
    password: local.password ?? '',
  });

  beforeAll(async () => {
    images = await buildTestImages({ largeLayerMiB: LARGE_LAYER_MIB });
    upstream = await startRegistry({ auth: 'basic' });
    cleanups.push(() => upstream.stop());
    local = await startRegistry({ auth: 'basic' });
    cleanups.push(() => local.stop());
    await pushTestImages(upstream, images);
    gc = await startGroundControl();
    cleanups.push(() => gc.cleanup());
    const credential = { username: upstream.username, password: upstream.password };
    await gc.api('POST', '/api/v1/registries', {
      name: 'up',
      kind: 'oci',
      url: upstream.url,
      credential,
    });
    await gc.api('POST', '/api/v1/registries', {
      name: 'up-filtered',
      kind: 'oci',
      url: upstream.url,
      localPrefix: 'filtered',
      credential,
    });
    await gc.api('POST', '/api/v1/configs', {
      name: 'fast',
      settings: {
        pollIntervalSeconds: 5,
        heartbeatIntervalSeconds: 5,
        removalGracePeriodSeconds: 0,
      },
    });
    await gc.api('POST', '/api/v1/groups', {
      name: 'all',
      selections: [...selections(), filtered],
    });
    const created = await gc.api<{ joinToken: { token: string } }>('POST', '/api/v1/satellites', {
      name: 'site-ext',
      groups: ['all'],
      config: 'fast',
    });
    satellite = await startSatellite({
      dataDir: await newDataDir(),
      groundControlUrl: gc.url,
      token: created.joinToken.token,
      registry: 'external',
      registryUrl: local.url,
      env: {
        SATELLITE_REGISTRY_USERNAME: local.username ?? '',
        SATELLITE_REGISTRY_PASSWORD: local.password ?? '',
      },
    });
    cleanups.push(() => satellite.process.stop('SIGKILL'));
  });

  afterAll(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
  });

  it('replicates every test image with identical digests', async () => {
    const desired = (
      await gc.api<{ desiredRevision: number }>('GET', '/api/v1/satellites/site-ext')
    ).desiredRevision;
    await waitFor('the satellite in sync', async () => {
      const status = await satellite.status().catch(() => undefined);
      return status?.phase === 'in-sync' && status.appliedRevision >= desired;
    });
    for (const name of names) {
      const image = images.images[name];
      if (!image) throw new Error(`test image ${name} missing`);
      const ref = `${image.repository}:${image.tag}`;
      expect({ ref, digest: await rawDigest(local.host, ref, localCredentials()) }).toEqual({
        ref,
        digest: image.digest,
      });
    }
    const signature = images.images['app-a:sig']?.digest ?? '';
    expect(await rawDigest(local.host, `test/app-a@${signature}`, localCredentials())).toBe(
      signature,
    );
  });

  it('publishes referrers through the tag fallback', async () => {
    // Distribution 2.8 has no referrers API, so the signature must be listed in the
    // sha256-<hex> index of its subject.
    const subject = images.images['app-a:1']?.digest ?? '';
    const signature = images.images['app-a:sig']?.digest ?? '';
    const { username, password } = localCredentials();
    const response = await request(
      `${local.url}/v2/test/app-a/manifests/${subject.replace(':', '-')}`,
      {
        headers: {
          accept: 'application/vnd.oci.image.index.v1+json',
          authorization: `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`,
        },
      },
    );
    expect(response.statusCode).toBe(200);
    const index = (await response.body.json()) as {
      manifests: { digest: string; artifactType?: string }[];
    };
    expect(index.manifests.map((entry) => entry.digest)).toContain(signature);
    expect(index.manifests.find((entry) => entry.digest === signature)?.artifactType).toBe(
      'application/vnd.example.signature.v1+json',
    );
  });

  it('copies only the filtered platform and says so', async () => {
    const arm64 = images.images['arm64:1']?.digest ?? '';
    const index = images.images['multi:1']?.digest ?? '';
    // The tag points at the one matching child; the index itself is not stored.
    expect(await rawDigest(local.host, 'filtered/test/multi:1', localCredentials())).toBe(arm64);
    await expect(
      rawDigest(local.host, `filtered/test/multi@${index}`, localCredentials()),
    ).rejects.toThrow();
    const status = await satellite.status();
    const entry = status.artifacts.find(
      (artifact) => artifact.localRepository === 'filtered/test/multi',
    );
    expect(entry?.state).toBe('present');
    expect(entry?.reason).toMatch(/reduced by the platform filter linux\/arm64/);
  });

  it('removes placed artifacts but keeps foreign tags', async () => {
    const credentials = `${localCredentials().username}:${localCredentials().password}`;
    // A tag the satellite did not set, on the digest of app-b:1: deleting that manifest on
    // Distribution would remove the foreign tag too, so the satellite must keep it.
    await runCommand('skopeo', [
      'copy',
      '--preserve-digests',
      '--src-tls-verify=false',
      '--dest-tls-verify=false',
      '--src-creds',
      credentials,
      '--dest-creds',
      credentials,
      `docker://${local.host}/test/app-b:1`,
      `docker://${local.host}/test/app-b:kept-by-operator`,
    ]);
    const remaining = selections().filter(
      (selection) => selection.repository !== 'test/app-b' && selection.repository !== 'test/base',
    );
    await gc.api('PUT', '/api/v1/groups/all/selections', [...remaining, filtered]);
    const base = images.images['base:1']?.digest ?? '';
    await waitFor('base:1 deleted from the external registry', async () => {
      const digest = await rawDigest(local.host, `test/base@${base}`, localCredentials()).catch(
        () => 'gone',
      );
      return digest === 'gone';
    });
    await waitFor('the kept artifact logged', () =>
      satellite.logLines().some((line) => String(line.msg).startsWith('artifact kept')),
    );
    const appB = images.images['app-b:1']?.digest ?? '';
    expect(await rawDigest(local.host, 'test/app-b:kept-by-operator', localCredentials())).toBe(
      appB,
    );
  });
});
