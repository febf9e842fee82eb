import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildFixtures, seededBytes, sha256 } from './fixtures.js';
import {
  errorCode,
  MANIFEST_ACCEPT,
  pushFixture,
  rawGet,
  startTestServer,
  type TestServer,
} from './http-helpers.js';

const fixtures = buildFixtures(32 * 1024);
let server: TestServer;
let url: string;

beforeAll(async () => {
  server = await startTestServer({ push: true });
  url = server.url;
  for (const manifest of [
    fixtures.base,
    fixtures.multi,
    fixtures.docker,
    fixtures.signature,
    fixtures.sbom,
  ]) {
    const response = await pushFixture(url, manifest);
    if (response.status !== 201)
      throw new Error(`push of ${manifest.name} returned ${response.status}`);
  }
});

afterAll(async () => {
  await server.close();
});

describe('registry HTTP pull', () => {
  it('GET /v2/ answers 200', async () => {
    const response = await fetch(`${url}/v2/`);
    expect(response.status).toBe(200);
    expect(response.headers.get('docker-distribution-api-version')).toBe('registry/2.0');
    expect(await response.json()).toEqual({});
  });

  it('manifest GET by tag and digest', async () => {
    for (const reference of ['multi', fixtures.multi.digest]) {
      const response = await fetch(`${url}/v2/test/app/manifests/${reference}`, {
        headers: { Accept: MANIFEST_ACCEPT },
      });
      expect(response.status).toBe(200);
      expect(response.headers.get('content-type')).toBe(fixtures.multi.mediaType);
      expect(response.headers.get('docker-content-digest')).toBe(fixtures.multi.digest);
      expect(response.headers.get('etag')).toBe(`"${fixtures.multi.digest}"`);
      expect(Buffer.from(await response.arrayBuffer())).toEqual(fixtures.multi.bytes);
    }
  });

  it('manifest HEAD has headers and no body', async () => {
    const response = await fetch(`${url}/v2/test/docker/manifests/1`, {
      method: 'HEAD',
      headers: { Accept: MANIFEST_ACCEPT },
    });
    expect(response.status).toBe(200);
    expect(response.headers.get('content-length')).toBe(String(fixtures.docker.size));
    expect(response.headers.get('content-type')).toBe(fixtures.docker.mediaType);
    expect(response.headers.get('docker-content-digest')).toBe(fixtures.docker.digest);
    expect((await response.arrayBuffer()).byteLength).toBe(0);
  });

  it('manifest content negotiation', async () => {
    const dockerOnly = 'application/vnd.docker.distribution.manifest.v2+json';
    const rejected = await fetch(`${url}/v2/test/app/manifests/multi`, {
      headers: { Accept: dockerOnly },
    });
    expect(rejected.status).toBe(404);
    expect(await errorCode(rejected)).toBe('MANIFEST_UNKNOWN');
    const accepted = await fetch(`${url}/v2/test/docker/manifests/1`, {
      headers: { Accept: `${dockerOnly};q=0.9` },
    });
    expect(accepted.status).toBe(200);
    await accepted.arrayBuffer();
    const wildcard = await fetch(`${url}/v2/test/app/manifests/multi`, {
      headers: { Accept: '*/*' },
    });
    expect(wildcard.status).toBe(200);
    await wildcard.arrayBuffer();
  });

  it('manifest If-None-Match gives 304', async () => {
    const response = await fetch(`${url}/v2/test/base/manifests/1`, {
      headers: { Accept: MANIFEST_ACCEPT, 'If-None-Match': `"${fixtures.base.digest}"` },
    });
    expect(response.status).toBe(304);
  });

  it('unknown manifest is MANIFEST_UNKNOWN', async () => {
    const response = await fetch(`${url}/v2/test/base/manifests/nope`, {
      headers: { Accept: MANIFEST_ACCEPT },
    });
    expect(response.status).toBe(404);
    expect(await errorCode(response)).toBe('MANIFEST_UNKNOWN');
  });

  it('blob GET, HEAD and ETag', async () => {
    const layer = fixtures.base.blobs[1]!;
    const head = await fetch(`${url}/v2/test/base/blobs/${layer.digest}`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(head.headers.get('content-length')).toBe(String(layer.size));
    expect(head.headers.get('accept-ranges')).toBe('bytes');
    expect(head.headers.get('etag')).toBe(`"${layer.digest}"`);
    expect(head.headers.get('docker-content-digest')).toBe(layer.digest);
    const get = await fetch(`${url}/v2/test/base/blobs/${layer.digest}`);
    expect(get.status).toBe(200);
    expect(Buffer.from(await get.arrayBuffer())).toEqual(layer.bytes);
    const cached = await fetch(`${url}/v2/test/base/blobs/${layer.digest}`, {
      headers: { 'If-None-Match': `"${layer.digest}"` },
    });
    expect(cached.status).toBe(304);
  });

  it('blob Range gives 206 and 416', async () => {
    const layer = fixtures.base.blobs[1]!;
    const cases: [string, number, number][] = [
      ['bytes=0-99', 0, 99],
      ['bytes=1000-', 1000, layer.size - 1],
      ['bytes=-100', layer.size - 100, layer.size - 1],
      [`bytes=${layer.size - 1}-`, layer.size - 1, layer.size - 1],
      [`bytes=10-${layer.size + 50}`, 10, layer.size - 1],
    ];
    for (const [range, start, end] of cases) {
      const response = await fetch(`${url}/v2/test/base/blobs/${layer.digest}`, {
        headers: { Range: range },
      });
      expect(response.status).toBe(206);
      expect(response.headers.get('content-range')).toBe(`bytes ${start}-${end}/${layer.size}`);
      expect(Buffer.from(await response.arrayBuffer())).toEqual(
        layer.bytes.subarray(start, end + 1),
      );
    }
    const beyond = await fetch(`${url}/v2/test/base/blobs/${layer.digest}`, {
      headers: { Range: `bytes=${layer.size}-` },
    });
    expect(beyond.status).toBe(416);
    expect(beyond.headers.get('content-range')).toBe(`bytes */${layer.size}`);
    expect(await errorCode(beyond)).toBe('RANGE_INVALID');
    const staleIfRange = await fetch(`${url}/v2/test/base/blobs/${layer.digest}`, {
      headers: { Range: 'bytes=0-9', 'If-Range': '"sha256:0000"' },
    });
    expect(staleIfRange.status).toBe(200);
    expect((await staleIfRange.arrayBuffer()).byteLength).toBe(layer.size);
  });

  it('unknown blob is BLOB_UNKNOWN', async () => {
    const response = await fetch(`${url}/v2/test/base/blobs/${sha256(Buffer.from('none'))}`);
    expect(response.status).toBe(404);
    expect(await errorCode(response)).toBe('BLOB_UNKNOWN');
  });

  it('tags list paginates with Link', async () => {
    for (const tag of ['a', 'b', 'c', 'd']) {
      const response = await fetch(`${url}/v2/test/base/manifests/${tag}`, {
        method: 'PUT',
        headers: { 'Content-Type': fixtures.base.mediaType },
        body: fixtures.base.bytes,
      });
      expect(response.status).toBe(201);
    }
    const all = await fetch(`${url}/v2/test/base/tags/list`);
    expect(await all.json()).toEqual({ name: 'test/base', tags: ['1', 'a', 'b', 'c', 'd'] });
    const first = await fetch(`${url}/v2/test/base/tags/list?n=2`);
    expect(await first.json()).toEqual({ name: 'test/base', tags: ['1', 'a'] });
    expect(first.headers.get('link')).toBe('</v2/test/base/tags/list?n=2&last=a>; rel="next"');
    const second = await fetch(`${url}/v2/test/base/tags/list?n=2&last=a`);
    expect(await second.json()).toEqual({ name: 'test/base', tags: ['b', 'c'] });
    const last = await fetch(`${url}/v2/test/base/tags/list?n=2&last=c`);
    expect(await last.json()).toEqual({ name: 'test/base', tags: ['d'] });
    expect(last.headers.get('link')).toBeNull();
    const bad = await fetch(`${url}/v2/test/base/tags/list?n=-1`);
    expect(bad.status).toBe(400);
    const unknown = await fetch(`${url}/v2/test/none/tags/list`);
    expect(unknown.status).toBe(404);
    expect(await errorCode(unknown)).toBe('NAME_UNKNOWN');
  });

  it('catalog paginates', async () => {
    const all = await fetch(`${url}/v2/_catalog`);
    expect(await all.json()).toEqual({ repositories: ['test/app', 'test/base', 'test/docker'] });
    const page = await fetch(`${url}/v2/_catalog?n=1&last=test/app`);
    expect(await page.json()).toEqual({ repositories: ['test/base'] });
    expect(page.headers.get('link')).toBe('</v2/_catalog?n=1&last=test%2Fbase>; rel="next"');
  });

  it('referrers filter by artifactType', async () => {
    const all = await fetch(`${url}/v2/test/app/referrers/${fixtures.app.digest}`);
    expect(all.status).toBe(200);
    expect(all.headers.get('content-type')).toBe('application/vnd.oci.image.index.v1+json');
    expect(all.headers.get('oci-filters-applied')).toBeNull();
    const index = (await all.json()) as { manifests: { digest: string; artifactType?: string }[] };
    expect(index.manifests.map((d) => d.digest).sort()).toEqual(
      [fixtures.signature.digest, fixtures.sbom.digest].sort(),
    );
    const filtered = await fetch(
      `${url}/v2/test/app/referrers/${fixtures.app.digest}?artifactType=${encodeURIComponent('application/vnd.example.sbom.v1+json')}`,
    );
    expect(filtered.headers.get('oci-filters-applied')).toBe('artifactType');
    const body = (await filtered.json()) as {
      manifests: { digest: string; artifactType?: string }[];
    };
    expect(body.manifests).toHaveLength(1);
    expect(body.manifests[0]?.digest).toBe(fixtures.sbom.digest);
    expect(body.manifests[0]?.artifactType).toBe('application/vnd.example.sbom.v1+json');
    const none = await fetch(`${url}/v2/test/app/referrers/${fixtures.base.digest}`);
    expect(none.status).toBe(200);
    expect(await none.json()).toEqual({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.index.v1+json',
      manifests: [],
    });
    const invalid = await fetch(`${url}/v2/test/app/referrers/sha256:12345`);
    expect(invalid.status).toBe(400);
    expect(await errorCode(invalid)).toBe('DIGEST_INVALID');
  });

  it('invalid names and encoded paths are rejected', async () => {
    const paths = [
      '/v2/Test/app/manifests/1',
      '/v2/test/../app/manifests/1',
      '/v2/test%2F..%2Fapp/manifests/1',
      '/v2/test%2fapp/tags/list',
      '/v2/test//app/tags/list',
      '/v2/./app/tags/list',
    ];
    const results: Record<string, string> = {};
    for (const path of paths) {
      const response = await rawGet(url, path);
      const code = /"code":"([A-Z_]+)"/.exec(response.body)?.[1] ?? 'none';
      results[path] = `${response.status} ${code}`;
    }
    expect(results).toEqual(Object.fromEntries(paths.map((path) => [path, '400 NAME_INVALID'])));
    const digest = await fetch(`${url}/v2/test/app/blobs/sha256:xyz`);
    expect(digest.status).toBe(400);
    expect(await errorCode(digest)).toBe('DIGEST_INVALID');
    const tag = await fetch(`${url}/v2/test/app/manifests/-bad`);
    expect(tag.status).toBe(400);
    expect(await errorCode(tag)).toBe('TAG_INVALID');
  });

  it('metrics count requests and bytes', async () => {
    const response = await fetch(`${url}/metrics`);
    const text = await response.text();
    expect(response.status).toBe(200);
    expect(text).toMatch(
      /edge_registry_http_requests_total\{method="GET",operation="blob",status="206"\} \d+/,
    );
    expect(text).toMatch(/edge_registry_served_bytes_total\{kind="blob"\} [1-9]\d*/);
    expect(text).toMatch(/edge_registry_served_bytes_total\{kind="manifest"\} [1-9]\d*/);
  });
});

describe('registry HTTP push', () => {
  it('chunked upload with Content-Range', async () => {
    const bytes = seededBytes('chunked', 300_000);
    const start = await fetch(`${url}/v2/test/chunks/blobs/uploads/`, { method: 'POST' });
    expect(start.status).toBe(202);
    let location = start.headers.get('location')!;
    expect(start.headers.get('docker-upload-uuid')).toMatch(/^[0-9a-f-]{36}$/);
    for (const [from, to] of [
      [0, 100_000],
      [100_000, 250_000],
    ] as const) {
      const response = await fetch(`${url}${location}`, {
        method: 'PATCH',
        headers: {
          'Content-Type': 'application/octet-stream',
          'Content-Range': `${from}-${to - 1}`,
        },
        body: bytes.subarray(from, to),
      });
      expect(response.status).toBe(202);
      expect(response.headers.get('range')).toBe(`0-${to - 1}`);
      location = response.headers.get('location')!;
    }
    const outOfOrder = await fetch(`${url}${location}`, {
      method: 'PATCH',
      headers: { 'Content-Type': 'application/octet-stream', 'Content-Range': '0-9' },
      body: bytes.subarray(0, 10),
    });
    expect(outOfOrder.status).toBe(416);
    expect(await errorCode(outOfOrder)).toBe('BLOB_UPLOAD_INVALID');
    const status = await fetch(`${url}${location}`);
    expect(status.status).toBe(204);
    expect(status.headers.get('range')).toBe('0-249999');
    const wrong = await fetch(`${url}${location}?digest=${sha256(Buffer.from('x'))}`, {
      method: 'PUT',
      headers: { 'Content-Type': 'application/octet-stream' },
      body: bytes.subarray(250_000),
    });
    expect(wrong.status).toBe(400);
    expect(await errorCode(wrong)).toBe('DIGEST_INVALID');
    const done = await fetch(`${url}${location}?digest=${sha256(bytes)}`, { method: 'PUT' });
    expect(done.status).toBe(201);
    expect(done.headers.get('docker-content-digest')).toBe(sha256(bytes));
    const get = await fetch(`${url}/v2/test/chunks/blobs/${sha256(bytes)}`);
    expect(Buffer.from(await get.arrayBuffer())).toEqual(bytes);
    const gone = await fetch(`${url}${location}`);
    expect(gone.status).toBe(404);
    expect(await errorCode(gone)).toBe('BLOB_UPLOAD_UNKNOWN');
  });

  it('POST then PUT with body', async () => {
    const bytes = seededBytes('put-body', 10_000);
    const start = await fetch(`${url}/v2/test/put/blobs/uploads/`, { method: 'POST' });
    const done = await fetch(`${url}${start.headers.get('location')!}?digest=${sha256(bytes)}`, {
      method: 'PUT',
      headers: { 'Content-Type': 'application/octet-stream' },
      body: bytes,
    });
    expect(done.status).toBe(201);
    expect(done.headers.get('location')).toBe(`/v2/test/put/blobs/${sha256(bytes)}`);
  });

  it('mount returns 201 for a present blob', async () => {
    const layer = fixtures.base.blobs[1]!;
    const mounted = await fetch(
      `${url}/v2/test/mounted/blobs/uploads/?mount=${layer.digest}&from=test/base`,
      { method: 'POST' },
    );
    expect(mounted.status).toBe(201);
    expect(mounted.headers.get('docker-content-digest')).toBe(layer.digest);
    const missing = await fetch(
      `${url}/v2/test/mounted/blobs/uploads/?mount=${sha256(Buffer.from('none'))}&from=test/base`,
      {
        method: 'POST',
      },
    );
    expect(missing.status).toBe(202);
    expect(missing.headers.get('location')).toMatch(/^\/v2\/test\/mounted\/blobs\/uploads\//);
  });

  it('manifest PUT returns OCI-Subject', async () => {
    const response = await fetch(`${url}/v2/test/app/manifests/${fixtures.signature.digest}`, {
      method: 'PUT',
      headers: { 'Content-Type': fixtures.signature.mediaType },
      body: fixtures.signature.bytes,
    });
    expect(response.status).toBe(201);
    expect(response.headers.get('oci-subject')).toBe(fixtures.app.digest);
    expect(response.headers.get('docker-content-digest')).toBe(fixtures.signature.digest);
  });

  it('manifest PUT validates blobs and size', async () => {
    const missing = await fetch(`${url}/v2/test/fresh/manifests/1`, {
      method: 'PUT',
      headers: { 'Content-Type': fixtures.base.mediaType },
      body: fixtures.base.bytes,
    });
    expect(missing.status).toBe(201);
    const garbage = await fetch(`${url}/v2/test/fresh/manifests/2`, {
      method: 'PUT',
      headers: { 'Content-Type': fixtures.base.mediaType },
      body: '{"schemaVersion":2}',
    });
    expect(garbage.status).toBe(400);
    expect(await errorCode(garbage)).toBe('MANIFEST_INVALID');
    const unknownBlob = await fetch(`${url}/v2/test/fresh/manifests/3`, {
      method: 'PUT',
      headers: { 'Content-Type': 'application/vnd.oci.image.manifest.v1+json' },
      body: JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        config: {
          mediaType: 'application/vnd.oci.image.config.v1+json',
          digest: sha256(Buffer.from('c')),
          size: 1,
        },
        layers: [],
      }),
    });
    expect(unknownBlob.status).toBe(400);
    expect(await errorCode(unknownBlob)).toBe('MANIFEST_BLOB_UNKNOWN');
    const huge = Buffer.alloc(5 * 1024 * 1024, 0x20);
    const oversized = await fetch(`${url}/v2/test/fresh/manifests/4`, {
      method: 'PUT',
      headers: { 'Content-Type': 'application/vnd.oci.image.manifest.v1+json' },
      body: huge,
    });
    expect(oversized.status).toBe(413);
    expect(await errorCode(oversized)).toBe('SIZE_INVALID');
  });

  it('referrers fallback index by raw PUT and GET', async () => {
    const put = await fetch(`${url}/v2/test/app/manifests/${fixtures.fallback.tag!}`, {
      method: 'PUT',
      headers: { 'Content-Type': fixtures.fallback.mediaType },
      body: fixtures.fallback.bytes,
    });
    expect(put.status).toBe(201);
    const get = await fetch(`${url}/v2/test/app/manifests/${fixtures.fallback.tag!}`, {
      headers: { Accept: MANIFEST_ACCEPT },
    });
    expect(sha256(Buffer.from(await get.arrayBuffer()))).toBe(fixtures.fallback.digest);
  });

  it('DELETE of tag, manifest and blob', async () => {
    const tag = await fetch(`${url}/v2/test/base/manifests/d`, { method: 'DELETE' });
    expect(tag.status).toBe(202);
    const tags = await fetch(`${url}/v2/test/base/tags/list`);
    expect(((await tags.json()) as { tags: string[] }).tags).not.toContain('d');
    const child = await fetch(`${url}/v2/test/app/manifests/${fixtures.arm.digest}`, {
      method: 'DELETE',
    });
    expect(child.status).toBe(409);
    expect(await errorCode(child)).toBe('MANIFEST_REFERENCED');
    const used = await fetch(`${url}/v2/test/docker/blobs/${fixtures.docker.blobs[1]!.digest}`, {
      method: 'DELETE',
    });
    expect(used.status).toBe(409);
    const manifest = await fetch(`${url}/v2/test/docker/manifests/${fixtures.docker.digest}`, {
      method: 'DELETE',
    });
    expect(manifest.status).toBe(202);
    const after = await fetch(`${url}/v2/test/docker/manifests/1`, {
      headers: { Accept: MANIFEST_ACCEPT },
    });
    expect(after.status).toBe(404);
    await after.arrayBuffer();
    const blob = await fetch(`${url}/v2/test/docker/blobs/${fixtures.docker.blobs[1]!.digest}`, {
      method: 'DELETE',
    });
    expect(blob.status).toBe(202);
    const gone = await fetch(`${url}/v2/test/docker/blobs/${fixtures.docker.blobs[1]!.digest}`, {
      method: 'HEAD',
    });
    expect(gone.status).toBe(404);
  });
});

describe('registry HTTP options', () => {
  it('push is off by default', async () => {
    const readOnly = await startTestServer();
    try {
      const response = await fetch(`${readOnly.url}/v2/test/app/blobs/uploads/`, {
        method: 'POST',
      });
      expect(response.status).toBe(405);
      expect(await errorCode(response)).toBe('UNSUPPORTED');
      const remove = await fetch(`${readOnly.url}/v2/test/app/manifests/1`, { method: 'DELETE' });
      expect(remove.status).toBe(405);
      await remove.arrayBuffer();
    } finally {
      await readOnly.close();
    }
  });

  it('Basic auth for pull and push', async () => {
    const secured = await startTestServer({
      push: true,
      auth: {
        pull: [{ username: 'reader', password: 'read-pass' }],
        push: [{ username: 'writer', password: 'write-pass' }],
      },
    });
    const basic = (user: string, pass: string): string =>
      `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`;
    try {
      const anonymous = await fetch(`${secured.url}/v2/`);
      expect(anonymous.status).toBe(401);
      expect(anonymous.headers.get('www-authenticate')).toBe('Basic realm="edge-registry"');
      expect(await errorCode(anonymous)).toBe('UNAUTHORIZED');
      const wrong = await fetch(`${secured.url}/v2/`, {
        headers: { Authorization: basic('reader', 'nope') },
      });
      expect(wrong.status).toBe(401);
      await wrong.arrayBuffer();
      const reader = await fetch(`${secured.url}/v2/`, {
        headers: { Authorization: basic('reader', 'read-pass') },
      });
      expect(reader.status).toBe(200);
      await reader.arrayBuffer();
      const readerPush = await pushFixture(secured.url, fixtures.base, {
        Authorization: basic('reader', 'read-pass'),
      }).catch((error: unknown) => error);
      expect(String(readerPush)).toContain('returned 403');
      const writerPush = await pushFixture(secured.url, fixtures.base, {
        Authorization: basic('writer', 'write-pass'),
      });
      expect(writerPush.status).toBe(201);
      const writerPull = await fetch(`${secured.url}/v2/test/base/tags/list`, {
        headers: { Authorization: basic('writer', 'write-pass') },
      });
      expect(await writerPull.json()).toEqual({ name: 'test/base', tags: ['1'] });
    } finally {
      await secured.close();
    }
  });
});
