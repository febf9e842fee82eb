import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTestImages, pushTestImages, startRegistry } from '../src/index.js';
import type { RegistryHandle, TestImages } from '../src/index.js';
import { skopeoPullDigest } from './registry-push.helpers.js';

let images: TestImages;
beforeAll(async () => {
  images = await buildTestImages({ largeLayerMiB: 1 });
});

/** Finds the top layer of app-a:1, the only blob between 5 and 6 MiB. */
function appALayer(): { digest: string; size: number } {
  const layers = images.blobs.filter((b) => b.size > 1024 * 1024);
  const layer = layers.find((b) => b.size > 5 * 1024 * 1024 && b.size < 6 * 1024 * 1024);
  if (!layer) throw new Error('app-a:1 layer not found');
  return layer;
}

describe.each(['none', 'basic'] as const)('startRegistry redirectBlobs (auth %s)', (auth) => {
  let registry: RegistryHandle;
  let authorization: Record<string, string>;
  beforeAll(async () => {
    registry = await startRegistry({ auth, redirectBlobs: true });
    authorization =
      auth === 'basic'
        ? {
            authorization: `Basic ${Buffer.from(`${registry.username}:${registry.password}`).toString('base64')}`,
          }
        : {};
    await pushTestImages(registry, images, { only: ['app-a:1'] });
  });
  afterAll(async () => {
    await registry.stop();
  });

  async function redirectLocation(method: 'GET' | 'HEAD'): Promise<string> {
    const res = await request(`${registry.url}/v2/test/app-a/blobs/${appALayer().digest}`, {
      method,
      headers: authorization,
    });
    await res.body.dump();
    expect(res.statusCode).toBe(307);
    return String(res.headers.location);
  }

  it('redirects blob GET and HEAD to the origin', async () => {
    const origin = registry.blobOrigin!;
    expect(await redirectLocation('GET')).toMatch(
      new RegExp(`^${origin.url}/docker/registry/v2/blobs/sha256/`),
    );
    expect(await redirectLocation('HEAD')).toMatch(new RegExp(`^${origin.url}/`));
  });

  it('serves whole blobs and ranges', async () => {
    const location = await redirectLocation('GET');
    const layer = appALayer();
    const whole = await request(location);
    const bytes = Buffer.from(await whole.body.arrayBuffer());
    expect(whole.statusCode).toBe(200);
    expect(bytes.length).toBe(layer.size);
    const ranged = await request(location, { headers: { range: 'bytes=1000-1999' } });
    const part = Buffer.from(await ranged.body.arrayBuffer());
    expect(ranged.statusCode).toBe(206);
    expect(ranged.headers['content-range']).toBe(`bytes 1000-1999/${layer.size}`);
    expect(part.equals(bytes.subarray(1000, 2000))).toBe(true);
    const suffix = await request(location, { headers: { range: 'bytes=-10' } });
    expect(Buffer.from(await suffix.body.arrayBuffer()).equals(bytes.subarray(-10))).toBe(true);
    const beyond = await request(location, { headers: { range: `bytes=${layer.size}-` } });
    await beyond.body.dump();
    expect(beyond.statusCode).toBe(416);
    expect(beyond.headers['content-range']).toBe(`bytes */${layer.size}`);
  });

  it('rejects requests that carry Authorization', async () => {
    const location = await redirectLocation('GET');
    const before = registry.blobOrigin!.rejectedWithAuthorization;
    const res = await request(location, { headers: { authorization: 'Bearer leaked' } });
    await res.body.dump();
    expect(res.statusCode).toBe(400);
    expect(registry.blobOrigin!.rejectedWithAuthorization).toBe(before + 1);
  });

  it('serves a skopeo pull through the redirect', async () => {
    const before = registry.blobOrigin!.requests;
    const rejected = registry.blobOrigin!.rejectedWithAuthorization;
    expect(await skopeoPullDigest(registry, 'test/app-a:1')).toBe(images.images['app-a:1']!.digest);
    expect(registry.blobOrigin!.requests).toBeGreaterThan(before);
    expect(registry.blobOrigin!.rejectedWithAuthorization).toBe(rejected);
  });

  it('rejects methods other than GET and HEAD', async () => {
    const location = await redirectLocation('GET');
    const res = await request(location, { method: 'DELETE' });
    await res.body.dump();
    expect(res.statusCode).toBe(405);
  });
});
