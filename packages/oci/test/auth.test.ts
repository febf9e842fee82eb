import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  buildTestImages,
  pushTestImages,
  skopeoInspectRawDigest,
  startFaultProxy,
  startRegistry,
  type FaultProxy,
  type RegistryAuth,
  type RegistryHandle,
  type TestImages,
} from '@edge/testkit';
import {
  copyArtifact,
  RegistryClient,
  type RegistryClientOptions,
  type RepositoryRef,
} from '../src/index.js';

// Real docker-registry 2.8 processes in every auth mode, with and without blob redirects to a
// second origin that rejects Authorization, as pre-signed object storage does.
const TEST_LARGE_LAYER_MIB = 8;
const FAST_RETRY = { baseDelayMs: 5, maxDelayMs: 20 };

let images: TestImages;
let work: string;
let destination: RegistryHandle;
const stops: (() => Promise<void>)[] = [];

function credentialsFor(registry: RegistryHandle): RegistryClientOptions['credentials'] {
  if (registry.username === undefined || registry.password === undefined) return undefined;
  return { [registry.host]: { username: registry.username, password: registry.password } };
}

function clientFor(registry: RegistryHandle, options: RegistryClientOptions = {}): RegistryClient {
  const credentials = credentialsFor(registry);
  const client = new RegistryClient({
    plainHttp: true,
    retry: FAST_RETRY,
    ...(credentials ? { credentials } : {}),
    ...options,
  });
  stops.push(() => client.close());
  return client;
}

function image(name: string) {
  const found = images.images[name];
  if (found === undefined) throw new Error(`test image ${name} missing from the test kit`);
  return found;
}

async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path) as AsyncIterable<Buffer>) hash.update(chunk);
  return `sha256:${hash.digest('hex')}`;
}

async function largeLayer(
  client: RegistryClient,
  repo: RepositoryRef,
): Promise<{ digest: string; size: number }> {
  const manifest = await client.getManifest(repo, '1');
  if (manifest.manifest.kind !== 'image') throw new Error('large:1 is not an image');
  const layer = [...manifest.manifest.layers].sort((a, b) => b.size - a.size)[0];
  if (layer === undefined) throw new Error('large:1 has no layers');
  return { digest: layer.digest, size: layer.size };
}

beforeAll(async () => {
  images = await buildTestImages({ largeLayerMiB: TEST_LARGE_LAYER_MIB });
  work = await mkdtemp(join(tmpdir(), 'oci-auth-test-'));
  destination = await startRegistry({ auth: 'none' });
  stops.push(() => destination.stop());
});

afterAll(async () => {
  for (const stop of stops.reverse()) await stop();
  if (work !== undefined) await rm(work, { recursive: true, force: true });
});

const modes: [RegistryAuth, boolean][] = [
  ['none', false],
  ['basic', false],
  ['token', false],
  ['none', true],
  ['basic', true],
  ['token', true],
];

describe.each(modes)('auth %s, redirects %s', (auth, redirectBlobs) => {
  let registry: RegistryHandle;
  let proxy: FaultProxy;

  beforeAll(async () => {
    registry = await startRegistry({ auth, redirectBlobs });
    stops.push(() => registry.stop());
    await pushTestImages(registry, images, {
      only: ['app-a:1', 'app-a:sig', 'multi:1', 'large:1'],
    });
    proxy = await startFaultProxy(registry.url);
    stops.push(() => proxy.stop());
  });

  it('pings with the configured credentials', async () => {
    const result = await clientFor(registry).ping(registry.host);
    const schemes: Record<RegistryAuth, string | undefined> = {
      none: undefined,
      basic: 'basic',
      token: 'bearer',
    };
    expect(result.authScheme).toBe(schemes[auth]);
  });

  it('copies an index and referrers byte-identical', async () => {
    const client = clientFor(registry);
    const target = clientFor(destination);
    const prefix = `${auth}-${redirectBlobs ? 'redirect' : 'direct'}`;
    for (const [repository, tag, referrers] of [
      ['test/multi', '1', false],
      ['test/app-a', '1', true],
    ] as const) {
      await copyArtifact(
        { client, repo: { registry: registry.host, repository } },
        {
          client: target,
          repo: { registry: destination.host, repository: `${prefix}/${repository}` },
        },
        tag,
        { spoolDirectory: join(work, 'spool'), referrers },
      );
      await expect(
        skopeoInspectRawDigest(destination, `${prefix}/${repository}:${tag}`),
      ).resolves.toBe(await skopeoInspectRawDigest(registry, `${repository}:${tag}`));
    }
    await expect(
      skopeoInspectRawDigest(destination, `${prefix}/test/app-a@${image('app-a:sig').digest}`),
    ).resolves.toBe(image('app-a:sig').digest);
    // Without redirects there is no blob origin and both counts read as zero.
    expect((registry.blobOrigin?.requests ?? 0) > 0).toBe(redirectBlobs);
    expect(registry.blobOrigin?.rejectedWithAuthorization ?? 0).toBe(0);
  });

  it('resumes a cut download through the proxy', async () => {
    const client = clientFor(registry, {
      credentials:
        credentialsFor(registry) === undefined
          ? {}
          : {
              [proxy.host]: {
                username: registry.username ?? '',
                password: registry.password ?? '',
              },
            },
    });
    const repo = { registry: proxy.host, repository: 'test/large' };
    const layer = await largeLayer(client, repo);
    proxy.setRules({
      match: (request) => request.method === 'GET' && request.url.includes('/blobs/'),
      cutAfterBytes: 3 * 1024 * 1024,
      cutOnce: true,
    });
    proxy.resetCounters();
    const path = await client.downloadBlob(repo, layer.digest, {
      partialDirectory: join(work, `resume-${auth}-${String(redirectBlobs)}`),
      size: layer.size,
    });
    await expect(sha256File(path)).resolves.toBe(layer.digest);
    // With redirects the bytes come from the blob origin, which the proxy does not sit in front of.
    expect(proxy.counters.cuts).toBe(redirectBlobs ? 0 : 1);
    expect(registry.blobOrigin?.rejectedWithAuthorization ?? 0).toBe(0);
  });
});

describe('token auth', () => {
  let registry: RegistryHandle;

  beforeAll(async () => {
    registry = await startRegistry({ auth: 'token' });
    stops.push(() => registry.stop());
    await pushTestImages(registry, images, { only: ['large:1', 'app-a:1'] });
  });

  it('pushes and mounts with two scopes', async () => {
    const client = clientFor(registry);
    const repo = { registry: registry.host, repository: 'test/large' };
    const layer = await largeLayer(client, repo);
    const issuedBefore = registry.tokenServer?.issued ?? 0;
    await expect(
      client.mountBlob(
        { registry: registry.host, repository: 'test/mounted' },
        layer.digest,
        'test/large',
      ),
    ).resolves.toEqual({ mounted: true });
    expect(registry.tokenServer?.issued).toBeGreaterThan(issuedBefore);
    await expect(
      client.headBlob({ registry: registry.host, repository: 'test/mounted' }, layer.digest),
    ).resolves.toMatchObject({ size: layer.size });
  });

  it('caches tokens per scope', async () => {
    const client = clientFor(registry);
    const repo = { registry: registry.host, repository: 'test/app-a' };
    await client.headManifest(repo, '1');
    const issued = registry.tokenServer?.issued ?? 0;
    await client.headManifest(repo, '1');
    await client.getManifest(repo, '1');
    expect(registry.tokenServer?.issued).toBe(issued);
  });

  it('rejects bad credentials with UNAUTHORIZED', async () => {
    const client = clientFor(registry, {
      credentials: { [registry.host]: { username: registry.username ?? '', password: 'wrong' } },
    });
    const error = await client
      .headManifest({ registry: registry.host, repository: 'test/app-a' }, '1')
      .catch((caught: unknown) => caught);
    expect(error).toMatchObject({ code: 'UNAUTHORIZED' });
    expect((error as Error).message).not.toContain('wrong');
  });

  it('denies anonymous pulls', async () => {
    const client = clientFor(registry, { credentials: {} });
    await expect(
      client.getManifest({ registry: registry.host, repository: 'test/app-a' }, '1'),
    ).rejects.toMatchObject({ code: 'UNAUTHORIZED', status: 401 });
  });
});

describe('token expiry mid-download', () => {
  let registry: RegistryHandle;
  let proxy: FaultProxy;
  const TOKEN_TTL_SECONDS = 1;

  beforeAll(async () => {
    registry = await startRegistry({ auth: 'token', tokenTtlSeconds: TOKEN_TTL_SECONDS });
    stops.push(() => registry.stop());
    await pushTestImages(registry, images, { only: ['large:1'] });
    proxy = await startFaultProxy(registry.url);
    stops.push(() => proxy.stop());
  });

  // The transfer outlives the token and a cut forces a new request after it expired.
  // NOTE: docker-registry 2.8 still accepted a token 2 s past its exp in this test. So the
  // registry's 401 for an expired token is not reached here, and the unit tests of AuthManager
  // cover the 401 path with a scripted token endpoint.
  it('renews an expired token after a cut', async () => {
    const client = clientFor(registry, {
      credentials: {
        [proxy.host]: { username: registry.username ?? '', password: registry.password ?? '' },
      },
    });
    const repo = { registry: proxy.host, repository: 'test/large' };
    const layer = await largeLayer(client, repo);
    proxy.setRules({
      match: (request) => request.method === 'GET' && request.url.includes('/blobs/'),
      throttleBytesPerSecond: 3 * 1024 * 1024,
      cutAfterBytes: 6 * 1024 * 1024 + 1,
      cutOnce: true,
    });
    const issued = registry.tokenServer?.issued ?? 0;
    const path = await client.downloadBlob(repo, layer.digest, {
      partialDirectory: join(work, 'expiry'),
      size: layer.size,
    });
    proxy.setRules({});
    await expect(sha256File(path)).resolves.toBe(layer.digest);
    expect(proxy.counters.cuts).toBeGreaterThanOrEqual(1);
    expect(registry.tokenServer?.issued).toBeGreaterThan(issued);
  });
});

describe('expired redirect target', () => {
  let registry: RegistryHandle;
  let proxy: FaultProxy;
  let expired: Server;
  let expiredRequests = 0;

  beforeAll(async () => {
    registry = await startRegistry({ auth: 'basic', redirectBlobs: true });
    stops.push(() => registry.stop());
    await pushTestImages(registry, images, { only: ['large:1'] });
    proxy = await startFaultProxy(registry.url);
    stops.push(() => proxy.stop());
    // Imitates an object store (S3 and compatible) rejecting a pre-signed URL past its expiry.
    expired = createServer((_request, response) => {
      expiredRequests++;
      response.writeHead(403, { 'content-type': 'application/xml' });
      response.end(
        '<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>',
      );
    });
    await new Promise<void>((resolve) => expired.listen(0, '127.0.0.1', resolve));
    stops.push(() => new Promise<void>((resolve) => expired.close(() => resolve())));
  });

  it('asks the registry for a new redirect', async () => {
    const client = clientFor(registry, {
      credentials: {
        [proxy.host]: { username: registry.username ?? '', password: registry.password ?? '' },
      },
    });
    const repo = { registry: proxy.host, repository: 'test/large' };
    const layer = await largeLayer(client, repo);
    const { port } = expired.address() as AddressInfo;
    let blobGets = 0;
    proxy.setRules({
      match: (request) =>
        request.method === 'GET' && request.url.includes('/blobs/') && ++blobGets === 1,
      setResponseHeaders: { location: `http://127.0.0.1:${port}/expired?X-Amz-Signature=abc` },
    });
    const path = await client.downloadBlob(repo, layer.digest, {
      partialDirectory: join(work, 'expired-target'),
      size: layer.size,
    });
    proxy.setRules({});
    await expect(sha256File(path)).resolves.toBe(layer.digest);
    expect(expiredRequests).toBe(1);
    expect(registry.blobOrigin?.rejectedWithAuthorization).toBe(0);
  });
});
