// Blob bodies are copied from the file with pooled buffers (server/file-body.ts), not piped from a
// read stream. These tests cover what that copy must get right: chunk boundaries under ranges,
// buffer reuse without stale bytes, concurrent responses, aborted clients and short files.
import { randomBytes } from 'node:crypto';
import { open, readlink, readdir, writeFile } from 'node:fs/promises';
import { createServer, request, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BLOB_COPY_CHUNK_BYTES, BufferPool, writeFileRange } from '../src/server/file-body.js';
import { seededBytes, sha256 } from './fixtures.js';
import { startTestServer, type TestServer } from './http-helpers.js';

/** Three full chunks and a partial fourth, so ranges can start, end or cross at chunk boundaries. */
const LARGE_BYTES = 3 * BLOB_COPY_CHUNK_BYTES + 12_345;
const large = seededBytes('blob-body-large', LARGE_BYTES);
const small = seededBytes('blob-body-small', 777);
/** Larger than loopback socket buffers can take (a few MiB), so an early abort cuts the copy. */
const huge = randomBytes(64 * 1024 * 1024);
const largeDigest = sha256(large);
const smallDigest = sha256(small);
const hugeDigest = sha256(huge);

let server: TestServer;
const logLines: { level: number; msg: string }[] = [];

beforeAll(async () => {
  const logStream = new PassThrough();
  logStream.on('data', (line: Buffer) => {
    logLines.push(JSON.parse(line.toString('utf8')) as { level: number; msg: string });
  });
  server = await startTestServer({ logger: pino({ level: 'info' }, logStream) });
  await server.store.putBlob(Readable.from([large]), { digest: largeDigest });
  await server.store.putBlob(Readable.from([small]), { digest: smallDigest });
  await server.store.putBlob(Readable.from([huge]), { digest: hugeDigest });
});

afterAll(async () => {
  await server.close();
});

function blobUrl(digest: string): string {
  return `${server.url}/v2/test/body/blobs/${digest}`;
}

/** Counts this process's open file descriptors on `path` (Linux /proc). */
async function openDescriptors(path: string): Promise<number> {
  let count = 0;
  for (const fd of await readdir('/proc/self/fd')) {
    const target = await readlink(`/proc/self/fd/${fd}`).catch(() => '');
    if (target === path) count += 1;
  }
  return count;
}

/** Starts a GET, reads at least `bytes` of the body, then destroys the connection. */
function abortAfter(url: string, bytes: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(url, (response) => {
      let received = 0;
      response.on('data', (chunk: Buffer) => {
        received += chunk.length;
        if (received >= bytes) {
          req.destroy();
          resolve(received);
        }
      });
      response.on('error', () => undefined);
    });
    req.on('error', (error) => {
      if (!req.destroyed) reject(error);
    });
    req.end();
  });
}

async function waitFor(check: () => Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return true;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return check();
}

describe('blob body copy', () => {
  it('full GET across chunks', async () => {
    const response = await fetch(blobUrl(largeDigest));
    expect(response.status).toBe(200);
    expect(response.headers.get('content-length')).toBe(String(LARGE_BYTES));
    const body = Buffer.from(await response.arrayBuffer());
    expect(body.length).toBe(LARGE_BYTES);
    expect(sha256(body)).toBe(largeDigest);
  });

  const chunk = BLOB_COPY_CHUNK_BYTES;
  it.each([
    [`bytes=${chunk - 10}-${chunk + 9}`, chunk - 10, chunk + 9],
    [`bytes=${chunk}-`, chunk, LARGE_BYTES - 1],
    [`bytes=100-${2 * chunk + 99}`, 100, 2 * chunk + 99],
    [`bytes=0-${chunk - 1}`, 0, chunk - 1],
    [`bytes=-${chunk + 1}`, LARGE_BYTES - chunk - 1, LARGE_BYTES - 1],
  ])('range %s across chunks', async (range, start, end) => {
    const response = await fetch(blobUrl(largeDigest), { headers: { Range: range } });
    expect(response.status).toBe(206);
    expect(response.headers.get('content-range')).toBe(`bytes ${start}-${end}/${LARGE_BYTES}`);
    const body = Buffer.from(await response.arrayBuffer());
    expect(body.length).toBe(end - start + 1);
    expect(body.equals(large.subarray(start, end + 1))).toBe(true);
  });

  it('small blob after large has no stale bytes', async () => {
    const first = await fetch(blobUrl(largeDigest));
    await first.arrayBuffer();
    const response = await fetch(blobUrl(smallDigest));
    expect(response.status).toBe(200);
    expect(Buffer.from(await response.arrayBuffer())).toEqual(small);
  });

  it('concurrent GETs beyond the pool', async () => {
    // Twelve responses need 24 buffers, more than the pool keeps free.
    const bodies = await Promise.all(
      Array.from({ length: 12 }, async (_, i) => {
        const digest = i % 2 === 0 ? largeDigest : smallDigest;
        const response = await fetch(blobUrl(digest));
        return { digest, body: Buffer.from(await response.arrayBuffer()) };
      }),
    );
    for (const { digest, body } of bodies) expect(sha256(body)).toBe(digest);
  });

  it('aborted GET closes the file', async () => {
    const path = server.store.blobPath(hugeDigest);
    expect(await openDescriptors(path)).toBe(0);
    const received = await abortAfter(blobUrl(hugeDigest), 64 * 1024);
    expect(received).toBeGreaterThanOrEqual(64 * 1024);
    expect(await waitFor(async () => (await openDescriptors(path)) === 0, 5_000)).toBe(true);
    const closed = logLines.filter((line) => line.msg.startsWith('blob response aborted'));
    expect(closed).toHaveLength(1);
    expect(logLines.filter((line) => line.level >= 50)).toEqual([]);
    const after = await fetch(blobUrl(hugeDigest), { headers: { Range: 'bytes=0-99' } });
    expect(after.status).toBe(206);
    expect(Buffer.from(await after.arrayBuffer())).toEqual(huge.subarray(0, 100));
  });

  it('metrics count the served blob bytes', async () => {
    const read = async (): Promise<number> => {
      const text = await (await fetch(`${server.url}/metrics`)).text();
      return Number(/edge_registry_served_bytes_total\{kind="blob"\} (\d+)/.exec(text)?.[1] ?? -1);
    };
    const before = await read();
    const response = await fetch(blobUrl(largeDigest), { headers: { Range: 'bytes=5-1004' } });
    await response.arrayBuffer();
    expect((await read()) - before).toBe(1000);
  });
});

describe('writeFileRange', () => {
  let http: Server;
  let base: string;
  let handler: (response: ServerResponse) => Promise<void>;

  beforeAll(async () => {
    http = createServer((_request, response) => {
      void handler(response);
    });
    await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    await new Promise((resolve) => http.close(resolve));
  });

  it('reuses the pooled buffers', async () => {
    const pool = new BufferPool(64 * 1024, 4);
    const first = pool.acquire();
    const second = pool.acquire();
    pool.release(second);
    pool.release(first);
    const file = await open(server.store.blobPath(largeDigest), 'r');
    const progress = { bytes: 0 };
    handler = async (response) => {
      response.writeHead(200, { 'Content-Length': 300_000 });
      await writeFileRange(file, 0, 300_000, response, pool, progress);
      response.end();
    };
    try {
      const body = Buffer.from(await (await fetch(base)).arrayBuffer());
      expect(body.equals(large.subarray(0, 300_000))).toBe(true);
    } finally {
      await file.close();
    }
    expect(progress.bytes).toBe(300_000);
    expect(pool.freeCount).toBe(2);
    const reused = [pool.acquire(), pool.acquire()];
    expect(reused).toContain(first);
    expect(reused).toContain(second);
  });

  it('pool keeps at most its limit', () => {
    const pool = new BufferPool(16, 2);
    for (const buffer of [pool.acquire(), pool.acquire(), pool.acquire()]) pool.release(buffer);
    expect(pool.freeCount).toBe(2);
  });

  it('short file is STORE_CORRUPT', async () => {
    const path = join(server.store.tempDir(), 'short-blob');
    await writeFile(path, small);
    const file = await open(path, 'r');
    let failure: unknown;
    const progress = { bytes: 0 };
    handler = async (response) => {
      response.writeHead(200, { 'Content-Length': small.length + 100 });
      try {
        await writeFileRange(file, 0, small.length + 100, response, new BufferPool(), progress);
      } catch (error) {
        failure = error;
      }
      response.destroy();
    };
    try {
      await expect(fetch(base).then((response) => response.arrayBuffer())).rejects.toThrow();
    } finally {
      await file.close();
    }
    expect(failure).toMatchObject({ code: 'STORE_CORRUPT' });
    expect(progress.bytes).toBe(small.length);
  });
});
