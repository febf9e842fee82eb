import { createHash, randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gunzipSync } from 'node:zlib';
import { request } from 'undici';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startFaultProxy, startRegistry, TestkitError } from '../src/index.js';
import type { FaultProxy, RegistryHandle } from '../src/index.js';

const BLOB_BYTES = 1024 * 1024;
const blob = randomBytes(BLOB_BYTES);
const digest = `sha256:${createHash('sha256').update(blob).digest('hex')}`;
const blobPath = `/v2/test/fault/blobs/${digest}`;

let registry: RegistryHandle;
let proxy: FaultProxy;

beforeAll(async () => {
  registry = await startRegistry();
  const start = await request(`${registry.url}/v2/test/fault/blobs/uploads/`, { method: 'POST' });
  await start.body.dump();
  const target = new URL(String(start.headers.location), registry.url);
  target.searchParams.set('digest', digest);
  const put = await request(target, { method: 'PUT', body: blob });
  await put.body.dump();
  if (put.statusCode !== 201) throw new Error(`blob upload returned ${put.statusCode}`);
  proxy = await startFaultProxy(registry.url);
});
afterAll(async () => {
  await proxy.stop();
  await registry.stop();
});
beforeEach(() => {
  proxy.setRules({});
  proxy.resetCounters();
});

/** GETs `path` through the proxy and collects the body, or the bytes received before an error. */
async function fetchThroughProxy(path: string, headers: Record<string, string> = {}) {
  const chunks: Buffer[] = [];
  try {
    const res = await request(`${proxy.url}${path}`, { headers });
    for await (const chunk of res.body) chunks.push(chunk as Buffer);
    return { status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) };
  } catch (error) {
    return { error, body: Buffer.concat(chunks) };
  }
}

describe('startFaultProxy', () => {
  it('forwards requests and counts bytes', async () => {
    const res = await fetchThroughProxy(blobPath);
    expect(res.status).toBe(200);
    expect(res.body.equals(blob)).toBe(true);
    expect(proxy.counters.requests).toBe(1);
    expect(proxy.counters.responseBytes).toBe(BLOB_BYTES);
    expect(proxy.counters.byPath.get(blobPath)).toBe(1);
    expect(proxy.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
  });

  it('cuts once, then a ranged request resumes', async () => {
    const cutAfter = 300_000;
    proxy.setRules({ cutAfterBytes: cutAfter, cutOnce: true });
    const first = await fetchThroughProxy(blobPath);
    expect(first.error).toBeDefined();
    expect(first.body.length).toBeGreaterThan(0);
    expect(first.body.length).toBeLessThanOrEqual(cutAfter);
    expect(proxy.counters.cuts).toBe(1);
    const rest = await fetchThroughProxy(blobPath, { range: `bytes=${first.body.length}-` });
    expect(rest.status).toBe(206);
    expect(Buffer.concat([first.body, rest.body]).equals(blob)).toBe(true);
  });

  it('cuts every response without cutOnce', async () => {
    proxy.setRules({ cutAfterBytes: 1000 });
    const first = await fetchThroughProxy(blobPath);
    const second = await fetchThroughProxy(blobPath);
    expect(first.error).toBeDefined();
    expect(second.error).toBeDefined();
    expect(proxy.counters.cuts).toBe(2);
  });

  it('throttles to the given rate', async () => {
    const bytes = 256 * 1024;
    const rate = 512 * 1024;
    proxy.setRules({ throttleBytesPerSecond: rate });
    const started = performance.now();
    const res = await fetchThroughProxy(blobPath, { range: `bytes=0-${bytes - 1}` });
    const seconds = (performance.now() - started) / 1000;
    expect(res.body.length).toBe(bytes);
    // A lower bound only, so a slow machine cannot make this fail.
    expect(seconds).toBeGreaterThanOrEqual((0.8 * bytes) / rate);
  });

  it('stalls before the headers', async () => {
    proxy.setRules({ stallSeconds: 1 });
    const error = await request(`${proxy.url}${blobPath}`, { headersTimeout: 300 }).catch(
      (err: unknown) => err,
    );
    expect((error as { code?: string }).code).toBe('UND_ERR_HEADERS_TIMEOUT');
    const started = performance.now();
    const res = await fetchThroughProxy(blobPath);
    expect(res.body.equals(blob)).toBe(true);
    expect(performance.now() - started).toBeGreaterThanOrEqual(900);
  });

  it('stalls after the given body bytes', async () => {
    proxy.setRules({ stallSeconds: 1, stallAfterBytes: 1000 });
    const res = await request(`${proxy.url}${blobPath}`, { bodyTimeout: 300 });
    expect(res.statusCode).toBe(200);
    const chunks: Buffer[] = [];
    const error = await (async () => {
      for await (const chunk of res.body) chunks.push(chunk as Buffer);
    })().catch((err: unknown) => err);
    expect((error as { code?: string }).code).toBe('UND_ERR_BODY_TIMEOUT');
    expect(Buffer.concat(chunks).length).toBe(1000);
  });

  it('injects statuses for the nth request', async () => {
    proxy.setRules({
      statusForRequest: [
        { n: 2, status: 429, retryAfter: '3' },
        { n: 3, status: 503, body: '{"errors":[]}', contentType: 'application/json' },
      ],
    });
    const statuses: number[] = [];
    const retryAfter: unknown[] = [];
    for (let i = 0; i < 4; i++) {
      const res = await request(`${proxy.url}${blobPath}`, { method: 'HEAD' });
      await res.body.dump();
      statuses.push(res.statusCode);
      retryAfter.push(res.headers['retry-after']);
    }
    expect(statuses).toEqual([200, 429, 503, 200]);
    expect(retryAfter[1]).toBe('3');
    expect(proxy.counters.requests).toBe(4);
  });

  it('applies rules only to matching requests', async () => {
    proxy.setRules({
      match: (req) => req.url.includes('/blobs/'),
      statusForRequest: [{ n: 1, status: 503 }],
    });
    const base = await request(`${proxy.url}/v2/`);
    await base.body.dump();
    const blobRes = await request(`${proxy.url}${blobPath}`);
    await blobRes.body.dump();
    expect(base.statusCode).toBe(200);
    expect(blobRes.statusCode).toBe(503);
  });

  it('drops and sets request headers', async () => {
    proxy.setRules({ dropRequestHeaders: ['Range'] });
    const ignored = await fetchThroughProxy(blobPath, { range: 'bytes=100-' });
    expect(ignored.status).toBe(200);
    expect(ignored.body.length).toBe(BLOB_BYTES);
    proxy.setRules({ setRequestHeaders: { range: 'bytes=0-9' } });
    const forced = await fetchThroughProxy(blobPath);
    expect(forced.status).toBe(206);
    expect(forced.body.equals(blob.subarray(0, 10))).toBe(true);
  });

  it('drops and sets response headers', async () => {
    proxy.setRules({
      dropResponseHeaders: ['Docker-Content-Digest'],
      setResponseHeaders: { 'x-injected': 'yes' },
    });
    const res = await fetchThroughProxy(blobPath);
    expect(res.headers?.['docker-content-digest']).toBeUndefined();
    expect(res.headers?.['x-injected']).toBe('yes');
  });

  it('shifts the start of a range', async () => {
    proxy.setRules({ shiftRangeStart: 10 });
    const res = await fetchThroughProxy(blobPath, { range: 'bytes=1000-' });
    expect(res.status).toBe(206);
    expect(res.headers?.['content-range']).toBe(`bytes 990-${BLOB_BYTES - 1}/${BLOB_BYTES}`);
    expect(res.body.equals(blob.subarray(990))).toBe(true);
  });

  it('gzips the body on the fly', async () => {
    proxy.setRules({ gzipResponse: true });
    const res = await fetchThroughProxy(blobPath);
    expect(res.headers?.['content-encoding']).toBe('gzip');
    expect(res.headers?.['content-length']).toBeUndefined();
    expect(gunzipSync(res.body).equals(blob)).toBe(true);
  });

  it('counts request body bytes of uploads', async () => {
    const start = await request(`${proxy.url}/v2/test/upload/blobs/uploads/`, { method: 'POST' });
    await start.body.dump();
    const location = String(start.headers.location);
    expect(location.startsWith(proxy.url)).toBe(true);
    const body = randomBytes(5000);
    const patch = await request(location, { method: 'PATCH', body });
    await patch.body.dump();
    expect(patch.statusCode).toBe(202);
    expect(proxy.counters.requestBytes).toBe(5000);
  });

  it('rejects invalid rules', () => {
    expect(() => proxy.setRules({ throttleBytesPerSecond: 0 })).toThrow(TestkitError);
    expect(() => proxy.setRules({ statusForRequest: [{ n: 0, status: 503 }] })).toThrow(
      TestkitError,
    );
  });
});

describe('startFaultProxy Location rewrite', () => {
  it('points Location headers at the proxy', async () => {
    const origin = createServer((_req, res) => {
      const { port } = origin.address() as AddressInfo;
      res.writeHead(307, { location: `http://127.0.0.1:${port}/elsewhere?x=1` });
      res.end();
    });
    await new Promise<void>((resolve) => origin.listen(0, '127.0.0.1', resolve));
    const { port } = origin.address() as AddressInfo;
    const rewriting = await startFaultProxy(`http://127.0.0.1:${port}`);
    try {
      const res = await request(`${rewriting.url}/start`);
      await res.body.dump();
      expect(res.statusCode).toBe(307);
      expect(res.headers.location).toBe(`${rewriting.url}/elsewhere?x=1`);
    } finally {
      await rewriting.stop();
      await new Promise<void>((resolve) => origin.close(() => resolve()));
    }
  });
});
