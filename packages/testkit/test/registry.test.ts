import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  buildTestImages,
  pushTestImages,
  skopeoInspectRawDigest,
  startRegistry,
  TestkitError,
} from '../src/index.js';
import type { RegistryHandle, TestImages } from '../src/index.js';
import { skopeoPullDigest } from './registry-push.helpers.js';

let images: TestImages;
beforeAll(async () => {
  images = await buildTestImages({ largeLayerMiB: 1 });
});

/** Pushes app-a:1 with skopeo and returns the digests that inspect and a pull see. */
async function skopeoRoundTrip(registry: RegistryHandle) {
  await pushTestImages(registry, images, { only: ['app-a:1'] });
  return {
    inspected: await skopeoInspectRawDigest(registry, 'test/app-a:1'),
    pulled: await skopeoPullDigest(registry, 'test/app-a:1'),
  };
}

function appA1Digests() {
  const digest = images.images['app-a:1']!.digest;
  return { inspected: digest, pulled: digest };
}

function basicAuth(username: string, password: string): string {
  return `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`;
}

/** Uploads one blob with POST + PUT and returns its digest. */
async function uploadBlob(registry: RegistryHandle, bytes: Buffer, authorization?: string) {
  const headers: Record<string, string> = authorization ? { authorization } : {};
  const start = await request(`${registry.url}/v2/test/blob/blobs/uploads/`, {
    method: 'POST',
    headers,
  });
  await start.body.dump();
  expect(start.statusCode).toBe(202);
  const location = start.headers.location;
  if (typeof location !== 'string') throw new Error('upload without Location');
  const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
  const target = new URL(location, registry.url);
  target.searchParams.set('digest', digest);
  const put = await request(target, {
    method: 'PUT',
    headers: { ...headers, 'content-type': 'application/octet-stream' },
    body: bytes,
  });
  await put.body.dump();
  expect(put.statusCode).toBe(201);
  return digest;
}

describe('startRegistry auth none', () => {
  let registry: RegistryHandle;
  beforeAll(async () => {
    registry = await startRegistry();
  });
  afterAll(async () => {
    await registry.stop();
  });

  it('serves /v2/ on loopback', async () => {
    expect(registry.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(registry.host).toBe(registry.url.replace('http://', ''));
    expect(registry.username).toBeUndefined();
    const res = await request(`${registry.url}/v2/`);
    await res.body.dump();
    expect(res.statusCode).toBe(200);
  });

  it('accepts a skopeo push and pull', async () => {
    expect(await skopeoRoundTrip(registry)).toEqual(appA1Digests());
  });

  it('stores an uploaded blob', async () => {
    const bytes = Buffer.from('blob stored by the registry test');
    const digest = await uploadBlob(registry, bytes);
    const res = await request(`${registry.url}/v2/test/blob/blobs/${digest}`);
    expect(res.statusCode).toBe(200);
    expect(Buffer.from(await res.body.arrayBuffer())).toEqual(bytes);
    expect(existsSync(`${registry.dataDir}/docker/registry/v2/blobs`)).toBe(true);
  });
});

describe('startRegistry auth basic', () => {
  let registry: RegistryHandle;
  beforeAll(async () => {
    registry = await startRegistry({
      auth: 'basic',
      users: { alice: { password: 'alice-pass' }, bob: { password: 'bob-pass' } },
    });
  });
  afterAll(async () => {
    await registry.stop();
  });

  it('rejects anonymous and wrong credentials', async () => {
    const anonymous = await request(`${registry.url}/v2/`);
    await anonymous.body.dump();
    expect(anonymous.statusCode).toBe(401);
    expect(anonymous.headers['www-authenticate']).toMatch(/^Basic /);
    const wrong = await request(`${registry.url}/v2/`, {
      headers: { authorization: basicAuth('alice', 'not-her-password') },
    });
    await wrong.body.dump();
    expect(wrong.statusCode).toBe(401);
  });

  it('accepts every configured user', async () => {
    expect(registry.username).toBe('alice');
    expect(registry.password).toBe('alice-pass');
    for (const [username, password] of [
      ['alice', 'alice-pass'],
      ['bob', 'bob-pass'],
    ] as const) {
      const res = await request(`${registry.url}/v2/`, {
        headers: { authorization: basicAuth(username, password) },
      });
      await res.body.dump();
      expect(res.statusCode).toBe(200);
    }
  });

  it('accepts a skopeo push and pull', async () => {
    expect(await skopeoRoundTrip(registry)).toEqual(appA1Digests());
  });

  it('stores a blob for an authenticated user', async () => {
    const auth = basicAuth('bob', 'bob-pass');
    const digest = await uploadBlob(registry, Buffer.from('basic auth blob'), auth);
    const res = await request(`${registry.url}/v2/test/blob/blobs/${digest}`, {
      method: 'HEAD',
      headers: { authorization: auth },
    });
    await res.body.dump();
    expect(res.statusCode).toBe(200);
  });
});

describe('startRegistry lifecycle', () => {
  it('stop ends the process and removes its folder', async () => {
    const registry = await startRegistry({ auth: 'basic' });
    expect(registry.username).toBe('tester');
    expect(registry.password).toMatch(/^[0-9a-f]{24}$/);
    const dir = registry.dataDir.replace(/\/data$/, '');
    await registry.stop();
    const exit = await registry.process.exited;
    expect(exit.signal ?? exit.code).not.toBeNull();
    expect(existsSync(dir)).toBe(false);
    expect(() => process.kill(registry.process.pid, 0)).toThrow();
  });

  it('restart keeps the port and the data', async () => {
    const registry = await startRegistry();
    try {
      const digest = await uploadBlob(registry, Buffer.from('kept across a restart'));
      const firstPid = registry.process.pid;
      await registry.restart();
      expect(registry.process.pid).not.toBe(firstPid);
      expect(() => process.kill(firstPid, 0)).toThrow();
      expect(() => process.kill(registry.process.pid, 0)).not.toThrow();
      const res = await request(`${registry.url}/v2/test/blob/blobs/${digest}`, { method: 'HEAD' });
      await res.body.dump();
      expect(res.statusCode).toBe(200);
    } finally {
      await registry.stop();
    }
  });

  it('starts several registries side by side', async () => {
    const registries = await Promise.all([startRegistry(), startRegistry(), startRegistry()]);
    try {
      expect(new Set(registries.map((r) => r.url)).size).toBe(3);
      expect(new Set(registries.map((r) => r.dataDir)).size).toBe(3);
    } finally {
      await Promise.all(registries.map((r) => r.stop()));
    }
  });

  it('rejects invalid options with INVALID_OPTIONS', async () => {
    const error = await startRegistry({ users: { 'bad:name': { password: 'x' } } }).catch(
      (err: unknown) => err,
    );
    expect(error).toBeInstanceOf(TestkitError);
    expect((error as TestkitError).code).toBe('INVALID_OPTIONS');
  });
});
