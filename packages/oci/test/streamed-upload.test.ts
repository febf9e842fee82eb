// A blob download that streams into an upload to a second registry, as in the satellite's
// one-pass copy. The source and the target are real docker-registry 2.8 processes. Each is
// behind the test kit's fault proxy, which cuts the source and counts the requests to the target.
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  buildTestImages,
  pushTestImages,
  startFaultProxy,
  startRegistry,
  type FaultProxy,
  type RegistryHandle,
  type TestImages,
} from '@edge/testkit';
import { RegistryClient, type RepositoryRef } from '../src/index.js';
import { largestLayer } from './largest-layer.js';

const TEST_LARGE_LAYER_MIB = 8;
/** Short backoff so retried requests do not slow the suite. */
const FAST_RETRY = { baseDelayMs: 5, maxDelayMs: 20 };
/**
 * Source rate during the cut test, in bytes/s. The proxy then writes 1/20 of it at a time, so
 * at most about that much sits in socket buffers when its RST discards them. Unthrottled on
 * loopback, those buffers held 3.3 MB of the 8 MiB layer in one run on a loaded 2-core machine.
 */
const CUT_TEST_RATE = 8 * 1024 * 1024;
/** Share of the layer that may cross the source proxy twice after one cut (see above). */
const CUT_EXCESS_ALLOWANCE = 0.1;

let images: TestImages;
let source: RegistryHandle;
let target: RegistryHandle;
let sourceProxy: FaultProxy;
let targetProxy: FaultProxy;
let work: string;
let layer: { digest: string; size: number };
let repositoryCounter = 0;

const clients: RegistryClient[] = [];
function newClient(): RegistryClient {
  const client = new RegistryClient({ plainHttp: true, retry: FAST_RETRY });
  clients.push(client);
  return client;
}

const fromSource: RepositoryRef = { registry: '', repository: 'test/large' };
/** A new repository in the target for every test, so no blob is there before the test. */
function newTargetRepository(): RepositoryRef {
  repositoryCounter += 1;
  return { registry: targetProxy.host, repository: `copy/streamed-${repositoryCounter}` };
}

/**
 * Upload sessions of a repository that still hold bytes in the target. docker-registry 2.8
 * handles a session DELETE by removing the session's `data` and `startedat` files but keeps
 * its empty `hashstates` folder, so a session counts while one of those two files exists.
 */
async function liveSessions(repository: string): Promise<string[]> {
  const folder = join(target.dataDir, 'docker/registry/v2/repositories', repository, '_uploads');
  let sessions: string[];
  try {
    sessions = await readdir(folder);
  } catch {
    return [];
  }
  const live: string[] = [];
  for (const session of sessions) {
    const files = await readdir(join(folder, session));
    if (files.includes('data') || files.includes('startedat')) live.push(session);
  }
  return live;
}

function postsTo(repository: string): number {
  return targetProxy.counters.byPath.get(`/v2/${repository}/blobs/uploads/`) ?? 0;
}

beforeAll(async () => {
  images = await buildTestImages({ largeLayerMiB: TEST_LARGE_LAYER_MIB });
  source = await startRegistry({ auth: 'none' });
  await pushTestImages(source, images, { only: ['large:1'] });
  target = await startRegistry({ auth: 'none' });
  sourceProxy = await startFaultProxy(source.url);
  targetProxy = await startFaultProxy(target.url);
  fromSource.registry = sourceProxy.host;
  work = await mkdtemp(join(tmpdir(), 'oci-streamed-upload-test-'));
  layer = await largestLayer(newClient(), source.host);
});

afterEach(() => {
  sourceProxy.setRules({});
  sourceProxy.resetCounters();
  targetProxy.setRules({});
  targetProxy.resetCounters();
});

afterAll(async () => {
  await Promise.all(clients.map((client) => client.close()));
  await sourceProxy?.stop();
  await targetProxy?.stop();
  await source?.stop();
  await target?.stop();
  if (work !== undefined) await rm(work, { recursive: true, force: true });
});

describe('streamed upload', () => {
  it('places the blob in one pass', async () => {
    const to = newTargetRepository();
    const sink = newClient().openStreamedUpload(to, layer.digest);
    const folder = join(work, 'one-pass');
    await newClient().downloadBlob(fromSource, layer.digest, {
      partialDirectory: folder,
      size: layer.size,
      sink,
    });
    expect(sink.committed).toBe(true);
    expect(await newClient().headBlob(to, layer.digest)).toMatchObject({ size: layer.size });
    expect(sourceProxy.counters.responseBytes).toBe(layer.size);
    // One session, fed by one PATCH and closed by one PUT.
    expect(postsTo(to.repository)).toBe(1);
    expect(await liveSessions(to.repository)).toEqual([]);
    expect((await readdir(folder)).filter((name) => name.endsWith('.partial'))).toEqual([]);
  });

  it('keeps a mismatched blob invisible', async () => {
    // The source registry serves corrupt bytes under the layer's digest, as after disk damage.
    const dataFile = join(
      source.dataDir,
      'docker/registry/v2/blobs/sha256',
      layer.digest.slice(7, 9),
      layer.digest.slice(7),
      'data',
    );
    const original = await readFile(dataFile);
    const corrupt = Buffer.from(original);
    corrupt[corrupt.length >> 1] = (corrupt[corrupt.length >> 1] ?? 0) ^ 0xff;
    await writeFile(dataFile, corrupt);
    try {
      const to = newTargetRepository();
      const sink = newClient().openStreamedUpload(to, layer.digest);
      await expect(
        newClient().downloadBlob(fromSource, layer.digest, {
          partialDirectory: join(work, 'mismatch'),
          size: layer.size,
          sink,
        }),
      ).rejects.toMatchObject({ code: 'DIGEST_MISMATCH' });
      expect(sink.committed).toBe(false);
      expect(await newClient().headBlob(to, layer.digest)).toBeUndefined();
      // The downloader fetched twice (a bad partial file gets one more try), streaming both.
      expect(postsTo(to.repository)).toBe(2);
      // Both sessions were deleted, not left to expire.
      expect(await liveSessions(to.repository)).toEqual([]);
    } finally {
      await writeFile(dataFile, original);
    }
  });

  it('continues the session after a cut', async () => {
    sourceProxy.setRules({
      match: (request) => request.method === 'GET' && request.url.includes('/blobs/sha256:'),
      cutAfterBytes: Math.floor(layer.size / 2),
      cutOnce: true,
      throttleBytesPerSecond: CUT_TEST_RATE,
    });
    const to = newTargetRepository();
    const sink = newClient().openStreamedUpload(to, layer.digest);
    let received = 0;
    await newClient().downloadBlob(fromSource, layer.digest, {
      partialDirectory: join(work, 'cut'),
      size: layer.size,
      sink,
      onProgress: (bytes) => (received += bytes),
    });
    expect(sourceProxy.counters.cuts).toBe(1);
    expect(sink.committed).toBe(true);
    expect(await newClient().headBlob(to, layer.digest)).toMatchObject({ size: layer.size });
    // The download resumed with Range into the same upload session.
    expect(postsTo(to.repository)).toBe(1);
    expect(received).toBeLessThan(layer.size * 1.05);
    expect(sourceProxy.counters.responseBytes).toBeLessThan(
      layer.size * (1 + CUT_EXCESS_ALLOWANCE),
    );
  });

  it('replays the partial file into a new session', async () => {
    // An interrupted first copy leaves a partial file, as a crash of the process would.
    const folder = join(work, 'replay');
    const abort = new AbortController();
    const to = newTargetRepository();
    const first = newClient().openStreamedUpload(to, layer.digest, abort.signal);
    let received = 0;
    await expect(
      newClient().downloadBlob(fromSource, layer.digest, {
        partialDirectory: folder,
        size: layer.size,
        sink: first,
        signal: abort.signal,
        onProgress: (bytes) => {
          received += bytes;
          if (received >= layer.size / 2) abort.abort();
        },
      }),
    ).rejects.toMatchObject({ code: 'ABORTED' });
    const partial = join(folder, `sha256-${layer.digest.slice(7)}.partial`);
    const kept = (await stat(partial)).size;
    expect(kept).toBeGreaterThan(0);
    expect(kept).toBeLessThan(layer.size);
    sourceProxy.resetCounters();
    // docker-registry 2.8 drops a session whose PATCH was cut, and the first session's bytes stay
    // until the registry purges old uploads. So only the second copy's sessions are checked.
    const abandoned = await liveSessions(to.repository);

    const second = newClient().openStreamedUpload(to, layer.digest);
    await newClient().downloadBlob(fromSource, layer.digest, {
      partialDirectory: folder,
      size: layer.size,
      sink: second,
    });
    expect(second.committed).toBe(true);
    expect(await newClient().headBlob(to, layer.digest)).toMatchObject({ size: layer.size });
    // Only the bytes that the partial file lacked came from the source again.
    expect(sourceProxy.counters.responseBytes).toBe(layer.size - kept);
    expect(await liveSessions(to.repository)).toEqual(abandoned);
  });

  it('falls back when the target fails', async () => {
    // The target returns 500 to the PATCH, so the sink is dropped and the file remains.
    targetProxy.setRules({
      match: (request) => request.method === 'PATCH',
      statusForRequest: [{ n: 1, status: 500 }],
    });
    const to = newTargetRepository();
    const sink = newClient().openStreamedUpload(to, layer.digest);
    const path = await newClient().downloadBlob(fromSource, layer.digest, {
      partialDirectory: join(work, 'fallback'),
      size: layer.size,
      sink,
    });
    expect(sink.committed).toBe(false);
    expect((await stat(path)).size).toBe(layer.size);
    expect(await newClient().headBlob(to, layer.digest)).toBeUndefined();
  });
});
