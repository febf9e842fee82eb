import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  buildTestImages,
  pushTestImages,
  skopeoInspectRawDigest,
  startRegistry,
  type RegistryHandle,
  type TestImages,
} from '@edge/testkit';
import {
  copyArtifact,
  digestOf,
  MediaType,
  OciError,
  RegistryClient,
  referrersTag,
  type RepositoryRef,
} from '../src/index.js';

// Real docker-registry 2.8 processes: a source with Basic auth and a destination without auth.
let images: TestImages;
let source: RegistryHandle;
let destination: RegistryHandle;
let client: RegistryClient;
let work: string;

const TEST_LARGE_LAYER_MIB = 8;

function repo(registry: RegistryHandle, repository: string): RepositoryRef {
  return { registry: registry.host, repository };
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

async function largestLayer(): Promise<{ digest: string; size: number }> {
  const manifest = await client.getManifest(repo(source, 'test/large'), '1');
  if (manifest.manifest.kind !== 'image') throw new Error('large:1 is not an image');
  const layers = [...manifest.manifest.layers].sort((a, b) => b.size - a.size);
  const layer = layers[0];
  if (layer === undefined) throw new Error('large:1 has no layers');
  return { digest: layer.digest, size: layer.size };
}

beforeAll(async () => {
  images = await buildTestImages({ largeLayerMiB: TEST_LARGE_LAYER_MIB });
  source = await startRegistry({ auth: 'basic' });
  destination = await startRegistry({ auth: 'none' });
  await pushTestImages(source, images);
  work = await mkdtemp(join(tmpdir(), 'oci-client-test-'));
  client = new RegistryClient({
    plainHttp: true,
    credentials: {
      [source.host]: { username: source.username ?? '', password: source.password ?? '' },
    },
  });
});

afterAll(async () => {
  await client?.close();
  await source?.stop();
  await destination?.stop();
  if (work !== undefined) await rm(work, { recursive: true, force: true });
});

describe('ping', () => {
  it('accepts valid Basic credentials', async () => {
    const result = await client.ping(source.host);
    expect(result.authScheme).toBe('basic');
    expect(result.apiVersion).toBe('registry/2.0');
  });

  it('rejects a wrong password', async () => {
    const wrong = new RegistryClient({
      plainHttp: true,
      credentials: { [source.host]: { username: source.username ?? '', password: 'wrong' } },
    });
    await expect(wrong.ping(source.host)).rejects.toMatchObject({
      code: 'UNAUTHORIZED',
      status: 401,
    });
    await wrong.close();
  });

  it('rejects anonymous access', async () => {
    const anonymous = new RegistryClient({ plainHttp: true });
    await expect(anonymous.ping(source.host)).rejects.toMatchObject({ code: 'UNAUTHORIZED' });
    await anonymous.close();
  });

  it('reads rotated credentials from a callback', async () => {
    let password = 'wrong';
    const rotating = new RegistryClient({
      plainHttp: true,
      credentials: () => ({ username: source.username ?? '', password }),
    });
    await expect(rotating.ping(source.host)).rejects.toMatchObject({ code: 'UNAUTHORIZED' });
    password = source.password ?? '';
    await expect(rotating.ping(source.host)).resolves.toMatchObject({ authScheme: 'basic' });
    await rotating.close();
  });
});

describe('manifests', () => {
  it('heads a tag with its digest', async () => {
    const head = await client.headManifest(repo(source, 'test/app-a'), '1');
    expect(head?.digest).toBe(image('app-a:1').digest);
    expect(head?.mediaType).toBe(MediaType.OciManifest);
    expect(head?.size).toBe(image('app-a:1').size);
  });

  it('returns undefined for an unknown tag', async () => {
    await expect(client.headManifest(repo(source, 'test/app-a'), 'nope')).resolves.toBeUndefined();
  });

  it('gets an OCI index with exact bytes', async () => {
    const fetched = await client.getManifest(repo(source, 'test/multi'), '1');
    expect(fetched.digest).toBe(image('multi:1').digest);
    expect(digestOf(fetched.bytes)).toBe(image('multi:1').digest);
    expect(fetched.manifest.kind).toBe('index');
    expect(fetched.mediaType).toBe(MediaType.OciIndex);
  });

  it('gets a manifest by digest', async () => {
    const fetched = await client.getManifest(repo(source, 'test/multi'), image('multi:1').digest);
    expect(fetched.digest).toBe(image('multi:1').digest);
  });

  it('gets a Docker schema 2 manifest', async () => {
    const fetched = await client.getManifest(repo(source, 'test/docker'), '1');
    expect(fetched.mediaType).toBe(MediaType.DockerManifest);
    expect(fetched.manifest.kind).toBe('image');
    expect(fetched.digest).toBe(image('docker:1').digest);
  });

  it('fails with MANIFEST_UNKNOWN', async () => {
    await expect(client.getManifest(repo(source, 'test/app-a'), 'missing')).rejects.toMatchObject({
      code: 'MANIFEST_UNKNOWN',
      status: 404,
      method: 'GET',
    });
  });

  it('enforces the manifest size cap', async () => {
    await expect(
      client.getManifest(repo(source, 'test/multi'), '1', { maxBytes: 100 }),
    ).rejects.toMatchObject({
      code: 'MANIFEST_TOO_LARGE',
    });
  });

  it('puts, then deletes by digest', async () => {
    const fetched = await client.getManifest(repo(source, 'test/app-b'), '1');
    const target = repo(destination, 'test/app-b');
    await copyArtifact(
      { client, repo: repo(source, 'test/app-b') },
      { client, repo: target },
      '1',
      {
        spoolDirectory: work,
      },
    );
    const put = await client.putManifest(target, 'extra', fetched.bytes, fetched.mediaType);
    expect(put.digest).toBe(fetched.digest);
    await expect(client.deleteManifest(target, 'extra')).rejects.toMatchObject({
      code: 'UNSUPPORTED',
    });
    await client.deleteManifest(target, fetched.digest);
    await expect(client.headManifest(target, '1')).resolves.toBeUndefined();
    await expect(client.headManifest(target, 'extra')).resolves.toBeUndefined();
  });
});

describe('blobs', () => {
  it('heads a blob with its size', async () => {
    const layer = await largestLayer();
    const head = await client.headBlob(repo(source, 'test/large'), layer.digest);
    expect(head?.size).toBe(layer.size);
  });

  it('returns undefined for a blob of another repository', async () => {
    const layer = await largestLayer();
    await expect(client.headBlob(repo(source, 'test/base'), layer.digest)).resolves.toBeUndefined();
  });

  it('streams a verified blob', async () => {
    const layer = await largestLayer();
    const hash = createHash('sha256');
    let progress = 0;
    const stream = client.getBlob(repo(source, 'test/large'), layer.digest, {
      size: layer.size,
      onProgress: (bytes) => (progress += bytes),
    });
    for await (const chunk of stream as AsyncIterable<Buffer>) hash.update(chunk);
    expect(`sha256:${hash.digest('hex')}`).toBe(layer.digest);
    expect(progress).toBe(layer.size);
  });

  it('fails a stream whose digest does not match', async () => {
    const layer = await largestLayer();
    // The size of another blob makes the stream end early and fail instead of passing bad data.
    const stream = client.getBlob(repo(source, 'test/large'), layer.digest, {
      size: layer.size - 1,
    });
    await expect(async () => {
      for await (const _chunk of stream as AsyncIterable<Buffer>) {
        // drain
      }
    }).rejects.toMatchObject({ code: 'SIZE_MISMATCH' });
  });

  it('passes every byte through the bandwidth limiter', async () => {
    const layer = await largestLayer();
    const taken: number[] = [];
    const bandwidth = {
      take: (bytes: number) => {
        taken.push(bytes);
        return Promise.resolve();
      },
    };
    const path = await client.downloadBlob(repo(source, 'test/large'), layer.digest, {
      partialDirectory: join(work, 'limited'),
      bandwidth,
    });
    await expect(sha256File(path)).resolves.toBe(layer.digest);
    expect(taken.reduce((sum, bytes) => sum + bytes, 0)).toBe(layer.size);
    expect(taken.length).toBeGreaterThan(1);
  });

  it('downloads into a final file', async () => {
    const layer = await largestLayer();
    const folder = join(work, 'download');
    const path = await client.downloadBlob(repo(source, 'test/large'), layer.digest, {
      partialDirectory: folder,
      size: layer.size,
    });
    expect(path).toBe(join(folder, `sha256-${layer.digest.slice(7)}`));
    await expect(sha256File(path)).resolves.toBe(layer.digest);
  });

  it('shares one transfer between concurrent callers', async () => {
    const layer = await largestLayer();
    const folder = join(work, 'shared');
    const first = client.downloadBlob(repo(source, 'test/large'), layer.digest, {
      partialDirectory: folder,
    });
    const second = client.downloadBlob(repo(source, 'test/large'), layer.digest, {
      partialDirectory: folder,
    });
    expect(second).toBe(first);
    await expect(first).resolves.toBe(join(folder, `sha256-${layer.digest.slice(7)}`));
  });

  it('fails with BLOB_UNKNOWN', async () => {
    await expect(
      client.downloadBlob(repo(source, 'test/large'), digestOf('nothing'), {
        partialDirectory: join(work, 'unknown'),
      }),
    ).rejects.toMatchObject({ code: 'BLOB_UNKNOWN', status: 404 });
  });

  it.each(['monolithic', 'chunked'] as const)('uploads %s from a file', async (strategy) => {
    const bytes = Buffer.from(`upload test ${strategy} `.repeat(50_000));
    const digest = digestOf(bytes);
    const file = join(work, `upload-${strategy}`);
    await writeFile(file, bytes);
    const uploader = new RegistryClient({
      plainHttp: true,
      uploadStrategy: strategy,
      uploadChunkBytes: 256 * 1024,
    });
    const target = repo(destination, `test/upload-${strategy}`);
    await uploader.uploadBlob(target, digest, { file });
    await expect(uploader.headBlob(target, digest)).resolves.toMatchObject({ size: bytes.length });
    await uploader.close();
  });

  it('shares one upload between concurrent callers', async () => {
    const bytes = Buffer.from('shared upload '.repeat(20_000));
    const digest = digestOf(bytes);
    const file = join(work, 'shared-upload');
    await writeFile(file, bytes);
    const target = repo(destination, 'test/upload-shared');
    const first = client.uploadBlob(target, digest, { file });
    const second = client.uploadBlob(target, digest, { file });
    expect(second).toBe(first);
    await first;
    await expect(client.headBlob(target, digest)).resolves.toMatchObject({ size: bytes.length });
  });

  it('uploads from a reopenable stream', async () => {
    const bytes = Buffer.from('stream upload '.repeat(10_000));
    const digest = digestOf(bytes);
    const target = repo(destination, 'test/upload-stream');
    await client.uploadBlob(
      target,
      digest,
      { open: (offset) => Readable.from([bytes.subarray(offset)]), size: bytes.length },
      { strategy: 'chunked' },
    );
    await expect(client.headBlob(target, digest)).resolves.toMatchObject({ size: bytes.length });
  });

  it('rejects an upload under a wrong digest', async () => {
    const file = join(work, 'wrong-digest');
    await writeFile(file, 'some bytes');
    await expect(
      client.uploadBlob(repo(destination, 'test/wrong'), digestOf('other bytes'), { file }),
    ).rejects.toMatchObject({
      code: 'DIGEST_INVALID',
      status: 400,
    });
  });

  it('mounts from another repository', async () => {
    const bytes = Buffer.from('mount me');
    const digest = digestOf(bytes);
    const file = join(work, 'mount');
    await writeFile(file, bytes);
    await client.uploadBlob(repo(destination, 'test/mount-from'), digest, { file });
    await expect(
      client.mountBlob(repo(destination, 'test/mount-to'), digest, 'test/mount-from'),
    ).resolves.toEqual({ mounted: true });
    await expect(
      client.headBlob(repo(destination, 'test/mount-to'), digest),
    ).resolves.toMatchObject({ size: bytes.length });
  });

  it('falls back when the mount source lacks the blob', async () => {
    const bytes = Buffer.from('not mountable');
    const digest = digestOf(bytes);
    const result = await client.mountBlob(
      repo(destination, 'test/mount-to'),
      digest,
      'test/empty-repo',
    );
    expect(result.mounted).toBe(false);
    if (result.mounted) return;
    expect(result.sessionUrl).toMatch(
      /^http:\/\/127\.0\.0\.1:\d+\/v2\/test\/mount-to\/blobs\/uploads\//,
    );
    const file = join(work, 'not-mountable');
    await writeFile(file, bytes);
    await client.uploadBlob(
      repo(destination, 'test/mount-to'),
      digest,
      { file },
      { sessionUrl: result.sessionUrl ?? '' },
    );
    await expect(
      client.headBlob(repo(destination, 'test/mount-to'), digest),
    ).resolves.toMatchObject({ size: bytes.length });
  });
});

describe('listings', () => {
  it('lists every tag', async () => {
    const tags = await client.listTags(repo(source, 'test/app-a'));
    expect([...tags].sort()).toEqual(
      ['1', '2', referrersTag(image('app-a:1').digest), 'sig'].sort(),
    );
  });

  it('fails for an unknown repository', async () => {
    await expect(client.listTags(repo(source, 'test/none'))).rejects.toMatchObject({
      code: 'NAME_UNKNOWN',
    });
  });

  it('follows relative catalog links', async () => {
    const all = await client.catalog(source.host, { pageSize: 2 });
    expect([...all].sort()).toEqual([
      'test/app-a',
      'test/app-b',
      'test/arm64',
      'test/base',
      'test/docker',
      'test/large',
      'test/multi',
    ]);
  });
});

describe('referrers', () => {
  it('falls back to the tag schema', async () => {
    const result = await client.referrers(repo(source, 'test/app-a'), image('app-a:1').digest);
    expect(result.source).toBe('tag');
    expect(result.descriptors.map((item) => item.digest)).toEqual([image('app-a:sig').digest]);
    expect(result.descriptors[0]?.artifactType).toBe('application/vnd.example.signature.v1+json');
  });

  it('filters by artifact type', async () => {
    const result = await client.referrers(repo(source, 'test/app-a'), image('app-a:1').digest, {
      artifactType: 'application/x-other',
    });
    expect(result.descriptors).toEqual([]);
  });

  it('returns none for a digest without referrers', async () => {
    const result = await client.referrers(repo(source, 'test/base'), image('base:1').digest);
    expect(result).toEqual({ descriptors: [], source: 'tag' });
  });
});

describe('copyArtifact', () => {
  const refs: [string, string, string][] = [
    ['test/multi', '1', 'multi:1'],
    ['test/docker', '1', 'docker:1'],
    ['test/large', '1', 'large:1'],
  ];
  it.each(refs)('copies %s:%s byte-identical', async (repository, tag, name) => {
    const result = await copyArtifact(
      { client, repo: repo(source, repository) },
      { client, repo: repo(destination, repository) },
      tag,
      {
        spoolDirectory: join(work, 'spool'),
      },
    );
    expect(result.digest).toBe(image(name).digest);
    await expect(skopeoInspectRawDigest(destination, `${repository}:${tag}`)).resolves.toBe(
      await skopeoInspectRawDigest(source, `${repository}:${tag}`),
    );
  });

  it('copies referrers and the fallback tag', async () => {
    const result = await copyArtifact(
      { client, repo: repo(source, 'test/app-a') },
      { client, repo: repo(destination, 'test/app-a') },
      '1',
      {
        spoolDirectory: join(work, 'spool'),
        referrers: true,
      },
    );
    expect(result.referrersCopied).toBe(1);
    const tag = referrersTag(image('app-a:1').digest);
    await expect(skopeoInspectRawDigest(destination, `test/app-a:${tag}`)).resolves.toBe(
      images.referrersIndex.digest,
    );
    await expect(
      skopeoInspectRawDigest(destination, `test/app-a@${image('app-a:sig').digest}`),
    ).resolves.toBe(image('app-a:sig').digest);
  });

  it('skips everything on a second run', async () => {
    const result = await copyArtifact(
      { client, repo: repo(source, 'test/multi') },
      { client, repo: repo(destination, 'test/multi') },
      '1',
      {
        spoolDirectory: join(work, 'spool'),
      },
    );
    expect(result.manifestsCopied).toBe(0);
    expect(result.manifestsSkipped).toBe(1);
    expect(result.blobsCopied).toBe(0);
  });

  it('mounts within one registry', async () => {
    const result = await copyArtifact(
      { client, repo: repo(destination, 'test/large') },
      { client, repo: repo(destination, 'test/large-copy') },
      '1',
      {
        spoolDirectory: join(work, 'spool'),
      },
    );
    expect(result.blobsCopied).toBe(0);
    expect(result.blobsMounted).toBeGreaterThan(0);
  });

  it('rejects an unknown reference', async () => {
    await expect(
      copyArtifact(
        { client, repo: repo(source, 'test/app-a') },
        { client, repo: repo(destination, 'test/app-a') },
        'missing',
        { spoolDirectory: work },
      ),
    ).rejects.toBeInstanceOf(OciError);
  });
});
