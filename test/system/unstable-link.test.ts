// A 200 MiB layer copied over a link to the upstream that drops again and again: the satellite
// must resume each cut download where it stopped, so the bytes it receives stay close to the
// content size. The upstream is the Harbor test double's token-mode docker-registry 2.8,
// reached by the satellite through the testkit fault proxy; Ground Control runs on PostgreSQL.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { buildTestImages, startFaultProxy } from '@edge/testkit';
import type { FaultProxy, RegistryHandle, TestImages } from '@edge/testkit';
import { startHarborDouble } from '@edge/testkit/harbor';
import type { HarborDouble } from '@edge/testkit/harbor';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createDatabase,
  createGroundControlReplica,
  digestOf,
  loginOperator,
  pushImage,
  rawDigest,
  startSatellite,
  waitUntil,
  newEncryptionKey,
} from './harness.js';
import type {
  GroundControlReplica,
  Operator,
  SatelliteProcess,
  TestDatabaseHandle,
} from './harness.js';

/** Size of the large test layer, in MiB. */
const LARGE_LAYER_MIB = 200;
/** Body bytes the proxy forwards on each blob response before it resets the connection. */
const CUT_AFTER_BYTES = 40 * 1024 * 1024;
/** Highest accepted ratio of bytes received over the content size. */
const MAX_DOWNLOAD_RATIO = 1.05;
/** Time allowed for the copy with its cuts and retries (backoff starts at 5 s), in ms. */
const CONVERGE_TIMEOUT_MS = 150_000;

interface ManifestDescriptors {
  config: { size: number };
  layers: { size: number }[];
}

describe('copy over a dropping link', () => {
  let images: TestImages;
  let harbor: HarborDouble;
  let upstream: RegistryHandle;
  let proxy: FaultProxy;
  let database: TestDatabaseHandle;
  let groundControl: GroundControlReplica;
  let operator: Operator;
  let site: SatelliteProcess;
  const cleanups: (() => Promise<void>)[] = [];

  beforeAll(async () => {
    [images, harbor, database] = await Promise.all([
      buildTestImages({ largeLayerMiB: LARGE_LAYER_MIB }),
      startHarborDouble({ projects: ['big'], registry: {} }),
      createDatabase(),
    ]);
    cleanups.push(
      () => harbor.stop(),
      () => database.drop(),
    );
    if (!harbor.registry) throw new Error('the Harbor double started without its registry');
    upstream = harbor.registry;
    await pushImage(images, 'large:1', upstream.host, 'big/large:1', harbor.admin);
    proxy = await startFaultProxy(upstream.url);
    cleanups.push(() => proxy.stop());
    groundControl = await createGroundControlReplica(database.url, newEncryptionKey());
    cleanups.push(() => groundControl.stop());
    await groundControl.start();
    operator = await loginOperator(groundControl.url);
  }, 180_000);

  afterAll(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
  }, 120_000);

  it('resumes a large layer across cuts', async () => {
    const digest = digestOf(images, 'large:1');
    const manifestPath = join(images.layoutDir, 'blobs/sha256', digest.replace('sha256:', ''));
    const manifestBytes = await readFile(manifestPath);
    const manifest = JSON.parse(manifestBytes.toString('utf8')) as ManifestDescriptors;
    const contentBytes =
      manifestBytes.length +
      manifest.config.size +
      manifest.layers.reduce((sum, layer) => sum + layer.size, 0);
    expect(contentBytes).toBeGreaterThan(LARGE_LAYER_MIB * 1024 * 1024);

    // Ground Control resolves tags directly, and the satellite pulls through the proxy.
    await operator.send('POST', '/registries', {
      name: 'harbor',
      kind: 'harbor',
      url: upstream.url,
      apiUrl: harbor.url,
      satelliteUrl: proxy.url,
      credential: harbor.admin,
    });
    await operator.send('POST', '/configs', {
      name: 'fast',
      settings: { pollIntervalSeconds: 2, heartbeatIntervalSeconds: 2 },
    });
    await operator.send('POST', '/groups', {
      name: 'large',
      selections: [{ registry: 'harbor', repository: 'big/large', tag: '1' }],
    });
    const created = await operator.send<{ joinToken: { token: string } }>('POST', '/satellites', {
      name: 'site-remote',
      groups: ['large'],
      config: 'fast',
    });
    proxy.setRules({
      cutAfterBytes: CUT_AFTER_BYTES,
      match: (request) => request.url.includes('/blobs/'),
    });
    proxy.resetCounters();
    site = await startSatellite({
      name: 'site-remote',
      groundControlUrl: groundControl.url,
      joinToken: created.joinToken.token,
    });
    cleanups.push(() => site.stop());

    const { desiredRevision } = await operator.send<{ desiredRevision: number }>(
      'GET',
      '/satellites/site-remote',
    );
    await waitUntil(
      'site-remote in sync',
      async () => {
        const status = await site.status();
        return status.phase === 'in-sync' && status.appliedRevision >= desiredRevision;
      },
      CONVERGE_TIMEOUT_MS,
    );

    expect(await rawDigest(site.registryHost, 'big/large:1')).toBe(digest);
    expect(await rawDigest(upstream.host, 'big/large:1', harbor.admin)).toBe(digest);
    const minimumCuts = Math.floor((LARGE_LAYER_MIB * 1024 * 1024) / CUT_AFTER_BYTES);
    expect(proxy.counters.cuts).toBeGreaterThanOrEqual(minimumCuts);
    // Every body byte through the proxy counts: manifests, blobs and error bodies.
    expect(proxy.counters.responseBytes).toBeLessThan(contentBytes * MAX_DOWNLOAD_RATIO);
  }, 300_000);
});
