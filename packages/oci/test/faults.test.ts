import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  buildTestImages,
  pushTestImages,
  startFaultProxy,
  startRegistry,
  type FaultProxy,
  type FaultRules,
  type RegistryHandle,
  type TestImages,
} from '@edge/testkit';
import {
  digestOf,
  MediaType,
  RegistryClient,
  type Clock,
  type RegistryClientOptions,
  type RepositoryRef,
} from '../src/index.js';
import { largestLayer } from './largest-layer.js';

// A real docker-registry 2.8 behind the test kit's fault proxy, which cuts, stalls, rewrites
// headers and injects statuses the way broken links and proxies do.
let images: TestImages;
let registry: RegistryHandle;
let proxy: FaultProxy;
let work: string;
let layer: { digest: string; size: number };

const TEST_LARGE_LAYER_MIB = 8;
/** Short backoff so retried requests do not slow the suite. */
const FAST_RETRY = { baseDelayMs: 5, maxDelayMs: 20 };

const clients: RegistryClient[] = [];
function newClient(options: RegistryClientOptions = {}): RegistryClient {
  const client = new RegistryClient({ plainHttp: true, retry: FAST_RETRY, ...options });
  clients.push(client);
  return client;
}

function viaProxy(repository: string): RepositoryRef {
  return { registry: proxy.host, repository };
}

function isBlobGet(request: { method: string; url: string }): boolean {
  return request.method === 'GET' && request.url.includes('/blobs/sha256:');
}

async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path) as AsyncIterable<Buffer>) hash.update(chunk);
  return `sha256:${hash.digest('hex')}`;
}

/** Fake clock: real time, but sleeps are recorded and return at once. */
function recordingClock(): Clock & { sleeps: number[] } {
  const sleeps: number[] = [];
  return {
    sleeps,
    now: () => Date.now(),
    sleep: (ms) => {
      sleeps.push(ms);
      return Promise.resolve();
    },
  };
}

function setBlobRules(rules: FaultRules): void {
  proxy.setRules({ match: isBlobGet, ...rules });
  proxy.resetCounters();
}

beforeAll(async () => {
  images = await buildTestImages({ largeLayerMiB: TEST_LARGE_LAYER_MIB });
  registry = await startRegistry({ auth: 'none' });
  await pushTestImages(registry, images, { only: ['large:1', 'app-a:1', 'app-a:sig'] });
  proxy = await startFaultProxy(registry.url);
  work = await mkdtemp(join(tmpdir(), 'oci-faults-test-'));
  layer = await largestLayer(newClient(), registry.host);
});

afterEach(() => {
  proxy.setRules({});
});

afterAll(async () => {
  await Promise.all(clients.map((client) => client.close()));
  await proxy?.stop();
  await registry?.stop();
  if (work !== undefined) await rm(work, { recursive: true, force: true });
});

describe('download resume', () => {
  const offsets = [1, 65_543, 3 * 1024 * 1024 + 17];
  it.each(offsets)('resumes after a cut at %d bytes', async (offset) => {
    setBlobRules({ cutAfterBytes: offset, cutOnce: true });
    const folder = join(work, `cut-${offset}`);
    let received = 0;
    const path = await newClient().downloadBlob(viaProxy('test/large'), layer.digest, {
      partialDirectory: folder,
      size: layer.size,
      onProgress: (bytes) => (received += bytes),
    });
    await expect(sha256File(path)).resolves.toBe(layer.digest);
    expect(proxy.counters.cuts).toBe(1);
    // Resuming with Range receives each byte about once. The client's count is compared, because
    // the proxy also counts what it wrote into socket buffers before the RST, and on a loaded
    // machine that alone can pass 5 % of this 8 MiB layer.
    expect(received).toBeLessThan(layer.size * 1.05);
  });

  it('resumes the last byte', async () => {
    setBlobRules({ cutAfterBytes: layer.size - 1, cutOnce: true });
    const path = await newClient().downloadBlob(viaProxy('test/large'), layer.digest, {
      partialDirectory: join(work, 'cut-last'),
      size: layer.size,
    });
    await expect(sha256File(path)).resolves.toBe(layer.digest);
    expect(proxy.counters.cuts).toBe(1);
  });

  it('survives a cut on every response', async () => {
    setBlobRules({ cutAfterBytes: 1024 * 1024 });
    let received = 0;
    const path = await newClient().downloadBlob(viaProxy('test/large'), layer.digest, {
      partialDirectory: join(work, 'cut-every'),
      size: layer.size,
      onProgress: (bytes) => (received += bytes),
    });
    await expect(sha256File(path)).resolves.toBe(layer.digest);
    expect(proxy.counters.cuts).toBeGreaterThanOrEqual(TEST_LARGE_LAYER_MIB - 1);
    // The proxy counts bytes it wrote before each RST, and some of them never arrive, so the
    // client's own count is the one compared with the blob size.
    expect(received).toBe(layer.size);
  });

  it('continues in a new client instance', async () => {
    const folder = join(work, 'new-instance');
    const abort = new AbortController();
    let received = 0;
    setBlobRules({ throttleBytesPerSecond: 16 * 1024 * 1024 });
    const first = newClient().downloadBlob(viaProxy('test/large'), layer.digest, {
      partialDirectory: folder,
      signal: abort.signal,
      onProgress: (bytes) => {
        received += bytes;
        if (received > layer.size / 3) abort.abort();
      },
    });
    await expect(first).rejects.toMatchObject({ code: 'ABORTED' });
    const partial = await stat(join(folder, `sha256-${layer.digest.slice(7)}.partial`));
    expect(partial.size).toBeGreaterThan(layer.size / 3 - 1024 * 1024);

    setBlobRules({});
    const path = await newClient().downloadBlob(viaProxy('test/large'), layer.digest, {
      partialDirectory: folder,
    });
    await expect(sha256File(path)).resolves.toBe(layer.digest);
    // The second instance fetched only what was missing.
    expect(proxy.counters.responseBytes).toBeLessThanOrEqual(layer.size - partial.size + 64 * 1024);
  });

  it('starts over when Range is ignored', async () => {
    setBlobRules({ cutAfterBytes: 2 * 1024 * 1024, cutOnce: true, dropRequestHeaders: ['range'] });
    const path = await newClient().downloadBlob(viaProxy('test/large'), layer.digest, {
      partialDirectory: join(work, 'no-range'),
      size: layer.size,
    });
    await expect(sha256File(path)).resolves.toBe(layer.digest);
    expect(proxy.counters.cuts).toBe(1);
  });

  it('realigns a 206 that starts early', async () => {
    setBlobRules({ cutAfterBytes: 2 * 1024 * 1024, cutOnce: true, shiftRangeStart: 1000 });
    const path = await newClient().downloadBlob(viaProxy('test/large'), layer.digest, {
      partialDirectory: join(work, 'shifted'),
      size: layer.size,
    });
    await expect(sha256File(path)).resolves.toBe(layer.digest);
  });

  it('realigns a shifted 206 in a stream', async () => {
    setBlobRules({ cutAfterBytes: 2 * 1024 * 1024, cutOnce: true, shiftRangeStart: 1000 });
    const hash = createHash('sha256');
    for await (const chunk of newClient().getBlob(viaProxy('test/large'), layer.digest, {
      size: layer.size,
    }) as AsyncIterable<Buffer>) {
      hash.update(chunk);
    }
    expect(`sha256:${hash.digest('hex')}`).toBe(layer.digest);
  });

  it('verifies a complete partial file after 416', async () => {
    const folder = join(work, 'complete-partial');
    const first = await newClient().downloadBlob(viaProxy('test/large'), layer.digest, {
      partialDirectory: folder,
      destination: join(folder, 'first'),
    });
    const { rename } = await import('node:fs/promises');
    await rename(first, join(folder, `sha256-${layer.digest.slice(7)}.partial`));
    proxy.resetCounters();
    // No size given: the client asks for the bytes after the end and gets 416.
    const path = await newClient().downloadBlob(viaProxy('test/large'), layer.digest, {
      partialDirectory: folder,
    });
    await expect(sha256File(path)).resolves.toBe(layer.digest);
    expect(proxy.counters.responseBytes).toBeLessThan(1024);
  });

  it('refetches a corrupt partial file once', async () => {
    const folder = join(work, 'corrupt-partial');
    const { mkdir } = await import('node:fs/promises');
    await mkdir(folder, { recursive: true });
    await writeFile(join(folder, `sha256-${layer.digest.slice(7)}.partial`), Buffer.alloc(4096, 7));
    const path = await newClient().downloadBlob(viaProxy('test/large'), layer.digest, {
      partialDirectory: folder,
      size: layer.size,
    });
    await expect(sha256File(path)).resolves.toBe(layer.digest);
  });

  it('resumes after a stalled body', async () => {
    let first = true;
    proxy.setRules({
      match: (request) => {
        if (!isBlobGet(request) || !first) return false;
        first = false;
        return true;
      },
      stallSeconds: 3,
      stallAfterBytes: 1024 * 1024,
    });
    const client = newClient({ timeouts: { bodyIdleMs: 500 } });
    const path = await client.downloadBlob(viaProxy('test/large'), layer.digest, {
      partialDirectory: join(work, 'stall'),
      size: layer.size,
    });
    await expect(sha256File(path)).resolves.toBe(layer.digest);
  });
});

describe('content coding', () => {
  it('keeps raw bytes labelled gzip', async () => {
    setBlobRules({ setResponseHeaders: { 'content-encoding': 'gzip' } });
    const path = await newClient().downloadBlob(viaProxy('test/large'), layer.digest, {
      partialDirectory: join(work, 'labelled'),
      size: layer.size,
    });
    await expect(sha256File(path)).resolves.toBe(layer.digest);
  });

  it('decodes a body gzipped on the fly', async () => {
    setBlobRules({ gzipResponse: true });
    const path = await newClient().downloadBlob(viaProxy('test/large'), layer.digest, {
      partialDirectory: join(work, 'gzipped'),
      size: layer.size,
    });
    await expect(sha256File(path)).resolves.toBe(layer.digest);
  });

  it('streams a body gzipped on the fly', async () => {
    setBlobRules({ gzipResponse: true });
    const hash = createHash('sha256');
    const stream = newClient().getBlob(viaProxy('test/large'), layer.digest, {
      size: layer.size,
      spoolDirectory: join(work, 'spool'),
    });
    for await (const chunk of stream as AsyncIterable<Buffer>) hash.update(chunk);
    expect(`sha256:${hash.digest('hex')}`).toBe(layer.digest);
  });
});

describe('manifest digests', () => {
  it('computes a missing Docker-Content-Digest', async () => {
    proxy.setRules({ dropResponseHeaders: ['docker-content-digest'] });
    const client = newClient();
    const fetched = await client.getManifest(viaProxy('test/app-a'), '1');
    expect(fetched.digest).toBe(images.images['app-a:1']?.digest);
    const head = await client.headManifest(viaProxy('test/app-a'), '1');
    expect(head?.digest).toBeUndefined();
  });

  it('rejects a digest header that does not match', async () => {
    proxy.setRules({ setResponseHeaders: { 'docker-content-digest': digestOf('other') } });
    await expect(newClient().getManifest(viaProxy('test/app-a'), '1')).rejects.toMatchObject({
      code: 'DIGEST_MISMATCH',
    });
  });
});

describe('retries', () => {
  it('retries a 429 with a text body', async () => {
    proxy.setRules({
      statusForRequest: [
        { n: 1, status: 429, retryAfter: '7', body: 'slow down', contentType: 'text/plain' },
      ],
    });
    const clock = recordingClock();
    const fetched = await newClient({ clock }).getManifest(viaProxy('test/app-a'), '1');
    expect(fetched.digest).toBe(images.images['app-a:1']?.digest);
    expect(clock.sleeps).toEqual([7000]);
  });

  it('honours Retry-After as an HTTP date', async () => {
    const at = new Date(Date.now() + 30_000).toUTCString();
    proxy.setRules({ statusForRequest: [{ n: 1, status: 503, retryAfter: at }] });
    const clock = recordingClock();
    await newClient({ clock }).getManifest(viaProxy('test/app-a'), '1');
    expect(clock.sleeps).toHaveLength(1);
    expect(clock.sleeps[0]).toBeGreaterThan(25_000);
    expect(clock.sleeps[0]).toBeLessThanOrEqual(31_000);
  });

  it('caps Retry-After', async () => {
    proxy.setRules({ statusForRequest: [{ n: 1, status: 429, retryAfter: '86400' }] });
    const clock = recordingClock();
    await newClient({ clock, retry: { maxRetryAfterMs: 2000 } }).getManifest(
      viaProxy('test/app-a'),
      '1',
    );
    expect(clock.sleeps).toEqual([2000]);
  });

  it('reports TOO_MANY_REQUESTS when retries run out', async () => {
    proxy.setRules({
      statusForRequest: [1, 2].map((n) => ({
        n,
        status: 429,
        body: 'rate limited, go away',
        contentType: 'text/plain',
      })),
    });
    const clock = recordingClock();
    const error = await newClient({ clock, retry: { maxAttempts: 2 } })
      .getManifest(viaProxy('test/app-a'), '1')
      .catch((caught: unknown) => caught);
    expect(error).toMatchObject({ code: 'TOO_MANY_REQUESTS', status: 429, method: 'GET' });
    expect((error as Error).message).toContain('rate limited');
    expect(clock.sleeps).toHaveLength(1);
  });

  it('uses capped exponential backoff', async () => {
    proxy.setRules({ statusForRequest: [1, 2, 3].map((n) => ({ n, status: 502 })) });
    const clock = recordingClock();
    await newClient({
      clock,
      random: () => 0.999,
      retry: { baseDelayMs: 100, maxDelayMs: 250 },
    }).getManifest(viaProxy('test/app-a'), '1');
    expect(clock.sleeps).toEqual([99, 199, 249]);
  });

  it('retries the upload POST', async () => {
    const fetched = await newClient().getManifest(viaProxy('test/app-a'), '1');
    proxy.setRules({
      match: (request) => request.method === 'POST',
      statusForRequest: [{ n: 1, status: 500 }],
    });
    const clock = recordingClock();
    // Starting an upload session has no side effect worth guarding, so a 500 is retried.
    const file = join(work, 'retry-upload');
    const bytes = Buffer.from('retry upload');
    await writeFile(file, bytes);
    await newClient({ clock }).uploadBlob(viaProxy('test/retry'), digestOf(bytes), { file });
    expect(clock.sleeps).toHaveLength(1);
    expect(fetched.digest).toBe(images.images['app-a:1']?.digest);
  });

  it('stops at the overall deadline', async () => {
    proxy.setRules({
      statusForRequest: [1, 2, 3, 4, 5].map((n) => ({ n, status: 503, retryAfter: '10' })),
    });
    const clock = recordingClock();
    const error = await newClient({ clock, retry: { deadlineMs: 5000 } })
      .getManifest(viaProxy('test/app-a'), '1')
      .catch((caught: unknown) => caught);
    expect(error).toMatchObject({ code: 'DEADLINE_EXCEEDED', status: 503 });
    expect((error as Error).cause).toMatchObject({ code: 'SERVER_ERROR' });
    expect(clock.sleeps).toEqual([]);
  });

  it('names the host that timed out', async () => {
    proxy.setRules({ stallSeconds: 2 });
    const error = await newClient({ timeouts: { headersMs: 300 }, retry: { maxAttempts: 1 } })
      .getManifest(viaProxy('test/app-a'), '1')
      .catch((caught: unknown) => caught);
    expect(error).toMatchObject({ code: 'TIMEOUT' });
    expect((error as Error).message).toContain(proxy.host);
  });
});

describe('referrers API', () => {
  const subject = () => images.images['app-a:1']?.digest ?? '';
  const referrer = {
    mediaType: MediaType.OciManifest,
    digest: digestOf('referrer'),
    size: 100,
    artifactType: 'application/vnd.example.sbom',
  };
  const other = {
    ...referrer,
    digest: digestOf('other'),
    artifactType: 'application/vnd.example.sig',
  };
  const index = JSON.stringify({
    schemaVersion: 2,
    mediaType: MediaType.OciIndex,
    manifests: [referrer, other],
  });
  const isReferrers = (request: { url: string }) => request.url.includes('/referrers/');

  it('uses an OCI index from the API', async () => {
    // Imitates a registry that implements the referrers API (docker-registry 2.8 does not).
    proxy.setRules({
      match: isReferrers,
      statusForRequest: [{ n: 1, status: 200, body: index, contentType: MediaType.OciIndex }],
    });
    const result = await newClient().referrers(viaProxy('test/app-a'), subject());
    expect(result.source).toBe('api');
    expect(result.descriptors.map((item) => item.digest)).toEqual([referrer.digest, other.digest]);
  });

  it('filters when the server did not', async () => {
    proxy.setRules({
      match: isReferrers,
      statusForRequest: [{ n: 1, status: 200, body: index, contentType: MediaType.OciIndex }],
    });
    const result = await newClient().referrers(viaProxy('test/app-a'), subject(), {
      artifactType: 'application/vnd.example.sig',
    });
    expect(result.descriptors.map((item) => item.digest)).toEqual([other.digest]);
  });

  it('ignores a body with another content type', async () => {
    proxy.setRules({
      match: isReferrers,
      statusForRequest: [{ n: 1, status: 200, body: index, contentType: 'application/json' }],
    });
    const result = await newClient().referrers(viaProxy('test/app-a'), subject());
    expect(result.source).toBe('tag');
    expect(result.descriptors.map((item) => item.digest)).toEqual([
      images.images['app-a:sig']?.digest,
    ]);
  });
});

describe('listings through faults', () => {
  it('stops a pagination loop', async () => {
    // Every page points back at the first one.
    proxy.setRules({ setResponseHeaders: { link: '</v2/_catalog?n=1>; rel="next"' } });
    await expect(newClient().catalog(proxy.host, { pageSize: 1 })).rejects.toMatchObject({
      code: 'PAGINATION_LOOP',
    });
  });

  it('follows an absolute next link', async () => {
    let pages = 0;
    proxy.setRules({
      match: (request) => request.url.includes('/tags/list') && ++pages === 1,
      setResponseHeaders: {
        link: `<${proxy.url}/v2/test/large/tags/list?n=5&cursor=opaque%2Fvalue>; rel="next"`,
      },
    });
    const tags = await newClient().listTags(viaProxy('test/large'), { pageSize: 5 });
    expect(tags).toEqual(['1', '1']);
    expect(pages).toBe(2);
  });
});

describe('uploads through faults', () => {
  it('restarts a chunked upload after a 5xx PATCH', async () => {
    const bytes = Buffer.from('chunked upload with a failing patch '.repeat(30_000));
    const file = join(work, 'patch-fail');
    await writeFile(file, bytes);
    proxy.setRules({
      match: (request) => request.method === 'PATCH',
      statusForRequest: [{ n: 2, status: 503 }],
    });
    const client = newClient({
      uploadStrategy: 'chunked',
      uploadChunkBytes: 256 * 1024,
      clock: recordingClock(),
    });
    await client.uploadBlob(viaProxy('test/patch-fail'), digestOf(bytes), { file });
    await expect(
      client.headBlob(viaProxy('test/patch-fail'), digestOf(bytes)),
    ).resolves.toMatchObject({ size: bytes.length });
  });

  it('downgrades to chunked after 413', async () => {
    const bytes = Buffer.from('too large for one put '.repeat(20_000));
    const file = join(work, 'too-large');
    await writeFile(file, bytes);
    proxy.setRules({
      match: (request) => request.method === 'PUT',
      statusForRequest: [
        { n: 1, status: 413, body: 'Request Entity Too Large', contentType: 'text/html' },
      ],
    });
    const client = newClient({ uploadChunkBytes: 128 * 1024 });
    await client.uploadBlob(viaProxy('test/too-large'), digestOf(bytes), { file });
    expect(client.uploadStrategy(proxy.host)).toBe('chunked');
    await expect(
      client.headBlob(viaProxy('test/too-large'), digestOf(bytes)),
    ).resolves.toMatchObject({ size: bytes.length });
  });
});
