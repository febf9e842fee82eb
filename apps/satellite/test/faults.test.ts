// The built satellite under faults: kill -9 in the middle of a 200 MiB layer, an upstream that
// returns 429 and 503, and one artifact whose layer the upstream does not serve. The upstream
// is a real docker-registry behind testkit's fault proxy; Ground Control is the built one.
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { OciStore } from '@edge/registry';
import { buildTestImages, pushTestImages, startFaultProxy, startRegistry } from '@edge/testkit';
import type { FaultProxy, RegistryHandle, TestImages } from '@edge/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RegistryClient } from '@edge/oci';
import { closeStore } from '../src/reconcile/embedded-registry.js';
import {
  blobsOf,
  newDataDir,
  rawDigest,
  startGroundControl,
  startSatellite,
  waitFor,
} from './harness.js';
import type { GroundControlHandle, SatelliteHandle } from './harness.js';

/** Throttle during the kill test, in bytes/s: 200 MiB take about 5 s, long enough to aim at. */
const KILL_TEST_RATE = 40 * 1024 * 1024;
/** Partial-file size at which the satellite is killed, in bytes. */
const KILL_AT_BYTES = 60 * 1024 * 1024;
/** Bytes the resumed download adds before the SIGTERM, in bytes. */
const SIGTERM_AFTER_BYTES = 20 * 1024 * 1024;
/** Shutdown timeout given to the satellite by the harness default (25 s), plus 5 s, in ms. */
const SHUTDOWN_LIMIT_MS = 30_000;
/** Allowance for bytes in flight (socket buffers, proxy chunks) at the kill, in bytes. */
const IN_FLIGHT_ALLOWANCE = 16 * 1024 * 1024;

describe('satellite under faults', () => {
  let images: TestImages;
  let upstream: RegistryHandle;
  let proxy: FaultProxy;
  let gc: GroundControlHandle;
  let satellite: SatelliteHandle;
  let dataDir: string;
  const cleanups: (() => Promise<void>)[] = [];

  const selection = (name: string) => {
    const image = images.images[name];
    if (!image) throw new Error(`test image ${name} missing`);
    return { registry: 'up', repository: image.repository, tag: image.tag };
  };
  const lastReportTime = async (): Promise<string | null> =>
    (await gc.api<{ receivedAt: string | null }>('GET', '/api/v1/satellites/site-faults/status'))
      .receivedAt;
  const artifactState = async (repository: string) =>
    (await satellite.status()).artifacts.find(
      (artifact) => artifact.localRepository === repository,
    );

  beforeAll(async () => {
    images = await buildTestImages();
    upstream = await startRegistry({ auth: 'basic' });
    cleanups.push(() => upstream.stop());
    await pushTestImages(upstream, images, { only: ['large:1', 'base:1', 'app-a:1', 'app-b:1'] });
    proxy = await startFaultProxy(upstream.url);
    cleanups.push(() => proxy.stop());
    gc = await startGroundControl();
    cleanups.push(() => gc.cleanup());
    // Ground Control resolves tags directly; satellites reach the upstream through the proxy.
    await gc.api('POST', '/api/v1/registries', {
      name: 'up',
      kind: 'oci',
      url: upstream.url,
      satelliteUrl: proxy.url,
      credential: { username: upstream.username, password: upstream.password },
    });
    await gc.api('POST', '/api/v1/configs', {
      name: 'fast',
      settings: { pollIntervalSeconds: 5, heartbeatIntervalSeconds: 5 },
    });
    await gc.api('POST', '/api/v1/groups', { name: 'faults', selections: [selection('large:1')] });
    const created = await gc.api<{ joinToken: { token: string } }>('POST', '/api/v1/satellites', {
      name: 'site-faults',
      groups: ['faults'],
      config: 'fast',
    });
    proxy.setRules({ throttleBytesPerSecond: KILL_TEST_RATE });
    dataDir = await newDataDir();
    satellite = await startSatellite({
      dataDir,
      groundControlUrl: gc.url,
      token: created.joinToken.token,
    });
    cleanups.push(() => satellite.process.stop('SIGKILL'));
  });

  afterAll(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
  });

  it('resumes a 200 MiB layer after kill -9 and SIGTERM', async () => {
    const layerSizes = new Map(images.blobs.map((blob) => [blob.digest, blob.size]));
    const largeBlobs = await blobsOf(images, 'large:1');
    const totalBytes = largeBlobs.reduce((sum, digest) => sum + (layerSizes.get(digest) ?? 0), 0);
    expect(totalBytes).toBeGreaterThan(200 * 1024 * 1024);

    const partialDir = join(dataDir, 'partial');
    const partialSize = async (): Promise<number> => {
      const names = (await readdir(partialDir)).filter((name) => name.endsWith('.partial'));
      const sizes = await Promise.all(
        names.map(async (name) => (await stat(join(partialDir, name))).size),
      );
      return Math.max(0, ...sizes);
    };

    // 1. kill -9 in the middle of the layer.
    await waitFor(
      'a partial file past the kill point',
      async () => (await partialSize()) >= KILL_AT_BYTES,
    );
    satellite.process.kill9();
    await satellite.process.exited;
    const bytesBeforeKill = proxy.counters.responseBytes;
    const keptAtKill = await partialSize();
    expect(keptAtKill).toBeGreaterThanOrEqual(KILL_AT_BYTES);
    expect(keptAtKill).toBeLessThan(totalBytes);

    // After the crash the store is consistent and serves no manifest of large:1.
    const store = await OciStore.open(join(dataDir, 'store'));
    expect(await store.check()).toEqual([]);
    expect(store.statManifest('test/large', '1')).toBeNull();
    await closeStore(store);

    // 2. SIGTERM in the middle of the resumed download: a clean exit that keeps the partial file
    // and sends a last status.
    proxy.resetCounters();
    satellite = await startSatellite({ dataDir, groundControlUrl: gc.url });
    cleanups.push(() => satellite.process.stop('SIGKILL'));
    await waitFor(
      'the resumed partial file growing',
      async () => (await partialSize()) >= keptAtKill + SIGTERM_AFTER_BYTES,
    );
    const reportsBefore = await lastReportTime();
    const stopStarted = Date.now();
    await satellite.process.stop('SIGTERM', SHUTDOWN_LIMIT_MS);
    const exit = await satellite.process.exited;
    expect(exit.code).toBe(0);
    expect(Date.now() - stopStarted).toBeLessThan(SHUTDOWN_LIMIT_MS);
    const bytesBeforeStop = proxy.counters.responseBytes;
    const keptAtStop = await partialSize();
    expect(keptAtStop).toBeGreaterThan(keptAtKill);
    expect(await lastReportTime()).not.toBe(reportsBefore);

    // 3. The last start completes the layer from the partial file.
    proxy.setRules({});
    proxy.resetCounters();
    satellite = await startSatellite({ dataDir, groundControlUrl: gc.url });
    cleanups.push(() => satellite.process.stop('SIGKILL'));
    await waitFor(
      'large:1 present after restart',
      async () => (await artifactState('test/large'))?.state === 'present',
    );
    const bytesAfterRestart = proxy.counters.responseBytes;

    // Each start fetched only what the partial file lacked (plus manifests), so the layer
    // crossed the proxy once, apart from the bytes in flight at the kill.
    expect(bytesAfterRestart).toBeLessThan(totalBytes - keptAtStop + 1024 * 1024);
    expect(bytesBeforeKill + bytesBeforeStop + bytesAfterRestart).toBeLessThan(
      totalBytes + IN_FLIGHT_ALLOWANCE,
    );
    expect(await rawDigest(satellite.registryHost, 'test/large:1')).toBe(
      images.images['large:1']?.digest,
    );
  });

  it('rides out 429 and 503 from the upstream', async () => {
    const manifestsAndBlobs = (request: { url: string }) =>
      /\/v2\/test\/base\/(manifests|blobs)\//.test(request.url);
    proxy.setRules({
      match: manifestsAndBlobs,
      statusForRequest: [
        { n: 1, status: 429, retryAfter: '1', body: 'slow down', contentType: 'text/plain' },
        { n: 2, status: 503 },
        { n: 3, status: 503 },
      ],
    });
    proxy.resetCounters();
    await gc.api('PUT', '/api/v1/groups/faults/selections', [
      selection('large:1'),
      selection('base:1'),
    ]);
    await waitFor(
      'base:1 present',
      async () => (await artifactState('test/base'))?.state === 'present',
    );
    const baseRequests = [...proxy.counters.byPath.entries()]
      .filter(([path]) => path.startsWith('/v2/test/base/'))
      .reduce((sum, [, count]) => sum + count, 0);
    // The three faulted responses plus at least the successful manifest request reached the proxy.
    expect(baseRequests).toBeGreaterThan(3);
    expect(await rawDigest(satellite.registryHost, 'test/base:1')).toBe(
      images.images['base:1']?.digest,
    );
  });

  it('isolates one failing artifact and retries it', async () => {
    const shared = new Set(
      (await blobsOf(images, 'app-a:1')).concat(await blobsOf(images, 'base:1')),
    );
    const appBOnly = (await blobsOf(images, 'app-b:1')).filter((digest) => !shared.has(digest));
    expect(appBOnly.length).toBeGreaterThan(0);
    const missingLayer = appBOnly[0] ?? '';
    // The upstream returns 404 BLOB_UNKNOWN for one layer of app-b:1, as after a broken GC.
    proxy.setRules({
      match: (request) => request.url.includes(missingLayer),
      statusForRequest: Array.from({ length: 200 }, (_, index) => ({
        n: index + 1,
        status: 404,
        body: JSON.stringify({
          errors: [{ code: 'BLOB_UNKNOWN', message: 'blob unknown to registry' }],
        }),
        contentType: 'application/json',
      })),
    });
    await gc.api('PUT', '/api/v1/groups/faults/selections', [
      selection('large:1'),
      selection('base:1'),
      selection('app-a:1'),
      selection('app-b:1'),
    ]);
    const failed = await waitFor('app-b:1 failed', async () => {
      const entry = await artifactState('test/app-b');
      return entry?.state === 'failed' ? entry : undefined;
    });
    expect(failed.reason).toMatch(/BLOB_UNKNOWN|not found/i);
    await waitFor(
      'app-a:1 present beside the failure',
      async () => (await artifactState('test/app-a'))?.state === 'present',
    );
    expect((await satellite.status()).phase).toBe('failed');
    const report = await waitFor('the failure in Ground Control', async () => {
      const current = await gc.api<{
        report: {
          phase: string;
          artifacts: { localRepository: string; state: string; reason?: string }[];
        } | null;
      }>('GET', '/api/v1/satellites/site-faults/status');
      return current.report?.phase === 'failed' ? current.report : undefined;
    });
    expect(
      report.artifacts.find((artifact) => artifact.localRepository === 'test/app-b')?.state,
    ).toBe('failed');

    // Once the upstream serves the layer again, the retry with backoff completes the artifact.
    proxy.setRules({});
    await waitFor(
      'app-b:1 present after the retry',
      async () => (await artifactState('test/app-b'))?.state === 'present',
      30_000,
    );
    expect(await rawDigest(satellite.registryHost, 'test/app-b:1')).toBe(
      images.images['app-b:1']?.digest,
    );
  });

  it('completes a streamed external copy after kill -9', async () => {
    // The layer streams from the upstream into an external docker-registry while it downloads.
    // A kill in the middle must leave nothing of it visible there, and the restart must finish
    // the layer from the partial file without fetching it again.
    const site = await startRegistry({ auth: 'none' });
    cleanups.push(() => site.stop());
    await gc.api('POST', '/api/v1/groups', {
      name: 'faults-external',
      selections: [selection('large:1')],
    });
    const created = await gc.api<{ joinToken: { token: string } }>('POST', '/api/v1/satellites', {
      name: 'site-faults-external',
      groups: ['faults-external'],
      config: 'fast',
    });
    const largeBlobs = await blobsOf(images, 'large:1');
    const layerSizes = new Map(images.blobs.map((blob) => [blob.digest, blob.size]));
    const largest = [...largeBlobs].sort(
      (a, b) => (layerSizes.get(b) ?? 0) - (layerSizes.get(a) ?? 0),
    )[0];
    if (largest === undefined) throw new Error('large:1 has no blobs');
    const totalBytes = largeBlobs.reduce((sum, digest) => sum + (layerSizes.get(digest) ?? 0), 0);
    const externalDir = await newDataDir();
    const partialFile = join(externalDir, 'partial', `sha256-${largest.slice(7)}.partial`);
    const partialSize = async (): Promise<number> => {
      try {
        return (await stat(partialFile)).size;
      } catch {
        return 0;
      }
    };
    const siteClient = new RegistryClient({ plainHttp: true });
    cleanups.push(() => siteClient.close());
    const siteRepository = { registry: site.host, repository: 'test/large' };

    proxy.setRules({ throttleBytesPerSecond: KILL_TEST_RATE });
    proxy.resetCounters();
    const start = (token?: string) =>
      startSatellite({
        dataDir: externalDir,
        groundControlUrl: gc.url,
        registry: 'external',
        registryUrl: site.url,
        ...(token !== undefined ? { token } : {}),
      });
    let external = await start(created.joinToken.token);
    cleanups.push(() => external.process.stop('SIGKILL'));
    await waitFor('a partial file past the kill point', async () => {
      return (await partialSize()) >= KILL_AT_BYTES;
    });
    external.process.kill9();
    await external.process.exited;
    const bytesBeforeKill = proxy.counters.responseBytes;
    const keptAtKill = await partialSize();
    expect(keptAtKill).toBeLessThan(layerSizes.get(largest) ?? 0);
    // The upload session of the killed process never got its closing PUT.
    expect(await siteClient.headBlob(siteRepository, largest)).toBeUndefined();
    expect(await siteClient.headManifest(siteRepository, '1')).toBeUndefined();

    proxy.setRules({});
    proxy.resetCounters();
    external = await start();
    cleanups.push(() => external.process.stop('SIGKILL'));
    await waitFor(
      'large:1 present in the external registry after restart',
      async () =>
        (await external.status()).artifacts.find(
          (artifact) => artifact.localRepository === 'test/large',
        )?.state === 'present',
    );
    const bytesAfterRestart = proxy.counters.responseBytes;
    expect(bytesAfterRestart).toBeLessThan(totalBytes - keptAtKill + 1024 * 1024);
    expect(bytesBeforeKill + bytesAfterRestart).toBeLessThan(totalBytes + IN_FLIGHT_ALLOWANCE);
    expect(await rawDigest(site.host, 'test/large:1')).toBe(images.images['large:1']?.digest);
    const copied = external
      .logLines()
      .find((line) => line.msg === 'blob copied' && line.blobDigest === largest);
    expect(copied?.streamed).toBe(true);
  });
});
