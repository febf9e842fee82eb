import { mkdir, mkdtemp, readdir, readFile, rm, stat, symlink, utimes } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  buildTestImages,
  MANIFEST_ACCEPT,
  pushTestImages,
  skopeoInspectRawDigest,
  startRegistry,
  TestkitError,
} from '../src/index.js';
import type { RegistryHandle, TestImages } from '../src/index.js';

const SMALL_LARGE_LAYER_MIB = 2;

async function readBlobJson(images: TestImages, digest: string): Promise<Record<string, unknown>> {
  const path = join(images.layoutDir, 'blobs', 'sha256', digest.replace('sha256:', ''));
  return JSON.parse(await readFile(path, 'utf8')) as Record<string, unknown>;
}

function digestsOf(images: TestImages): Record<string, string> {
  return Object.fromEntries(Object.entries(images.images).map(([name, i]) => [name, i.digest]));
}

describe('buildTestImages', () => {
  const cacheDirs: string[] = [];
  let first: TestImages;
  let second: TestImages;

  beforeAll(async () => {
    for (let i = 0; i < 2; i++) cacheDirs.push(await mkdtemp(join(tmpdir(), 'testkit-images-')));
    first = await buildTestImages({ largeLayerMiB: SMALL_LARGE_LAYER_MIB, cacheDir: cacheDirs[0] });
    second = await buildTestImages({
      largeLayerMiB: SMALL_LARGE_LAYER_MIB,
      cacheDir: cacheDirs[1],
    });
  });
  afterAll(async () => {
    for (const dir of cacheDirs) await rm(dir, { recursive: true, force: true });
  });

  it('gives identical digests in fresh folders', () => {
    expect(first.layoutDir).not.toBe(second.layoutDir);
    expect(digestsOf(second)).toEqual(digestsOf(first));
    expect(second.blobs).toEqual(first.blobs);
    expect(second.referrersIndex.digest).toBe(first.referrersIndex.digest);
  });

  it('contains every required image', () => {
    expect(Object.keys(first.images).sort()).toEqual(
      [
        'app-a:1',
        'app-a:2',
        'app-a:sig',
        'app-b:1',
        'arm64:1',
        'base:1',
        'docker:1',
        'large:1',
        'multi:1',
      ].sort(),
    );
    expect(first.images['app-a:1']).toMatchObject({
      repository: 'test/app-a',
      tag: '1',
      layoutTag: 'app-a-1',
    });
    expect(first.totalBytes).toBe(first.blobs.reduce((sum, b) => sum + b.size, 0));
  });

  it('shares layers between related images', async () => {
    const base = await readBlobJson(first, first.images['base:1']!.digest);
    const appA1 = await readBlobJson(first, first.images['app-a:1']!.digest);
    const appA2 = await readBlobJson(first, first.images['app-a:2']!.digest);
    const layers = (m: Record<string, unknown>) =>
      (m.layers as { digest: string }[]).map((l) => l.digest);
    expect(layers(base)).toHaveLength(1);
    expect(layers(appA1).slice(0, 1)).toEqual(layers(base));
    expect(layers(appA2).slice(0, 2)).toEqual(layers(appA1));
    expect(layers(appA2)).toHaveLength(3);
  });

  it('builds a two-platform index over app-a:1', async () => {
    const index = await readBlobJson(first, first.images['multi:1']!.digest);
    const manifests = index.manifests as { digest: string; platform: { architecture: string } }[];
    expect(first.images['multi:1']!.mediaType).toBe('application/vnd.oci.image.index.v1+json');
    expect(manifests.map((m) => m.platform.architecture)).toEqual(['amd64', 'arm64']);
    expect(manifests[0]!.digest).toBe(first.images['app-a:1']!.digest);
    expect(manifests[1]!.digest).toBe(first.images['arm64:1']!.digest);
  });

  it('builds docker:1 with Docker schema 2 media types', async () => {
    const image = first.images['docker:1']!;
    const manifest = await readBlobJson(first, image.digest);
    expect(image.mediaType).toBe('application/vnd.docker.distribution.manifest.v2+json');
    expect(manifest.mediaType).toBe(image.mediaType);
    expect((manifest.config as { mediaType: string }).mediaType).toBe(
      'application/vnd.docker.container.image.v1+json',
    );
    for (const layer of manifest.layers as { mediaType: string }[]) {
      expect(layer.mediaType).toBe('application/vnd.docker.image.rootfs.diff.tar.gzip');
    }
  });

  it('sizes the large layer from largeLayerMiB', async () => {
    const manifest = await readBlobJson(first, first.images['large:1']!.digest);
    const top = (manifest.layers as { size: number }[]).at(-1)!;
    // Pseudo-random bytes do not compress, so the gzip layer is a little over the payload.
    expect(top.size).toBeGreaterThan(SMALL_LARGE_LAYER_MIB * 1024 * 1024);
    expect(top.size).toBeLessThan(SMALL_LARGE_LAYER_MIB * 1024 * 1024 * 1.01 + 4096);
  });

  it('builds an artifact and its referrers index', async () => {
    const subject = first.images['app-a:1']!;
    const artifact = await readBlobJson(first, first.images['app-a:sig']!.digest);
    expect(artifact.artifactType).toBe('application/vnd.example.signature.v1+json');
    expect((artifact.subject as { digest: string }).digest).toBe(subject.digest);
    const referrers = first.referrersIndex;
    expect(referrers.repository).toBe('test/app-a');
    expect(referrers.tag).toBe(subject.digest.replace('sha256:', 'sha256-'));
    const index = JSON.parse(referrers.bytes.toString()) as {
      manifests: { digest: string; artifactType: string }[];
    };
    expect(index.manifests).toHaveLength(1);
    expect(index.manifests[0]!.digest).toBe(first.images['app-a:sig']!.digest);
    expect(index.manifests[0]!.artifactType).toBe('application/vnd.example.signature.v1+json');
  });

  it('reuses the cache without rebuilding', async () => {
    const metadata = join(first.layoutDir, '..', 'testkit-images.json');
    const before = await stat(metadata);
    const again = await buildTestImages({
      largeLayerMiB: SMALL_LARGE_LAYER_MIB,
      cacheDir: cacheDirs[0],
    });
    expect(again.layoutDir).toBe(first.layoutDir);
    expect((await stat(metadata)).mtimeMs).toBe(before.mtimeMs);
    expect(digestsOf(again)).toEqual(digestsOf(first));
  });

  it('survives two builds racing for one folder', async () => {
    // Two cache paths that name one folder (through a symlink) bypass the in-process memo, so
    // both builds run and race for the final rename, as two vitest workers would.
    const link = `${cacheDirs[1]}-link`;
    const raceDir = await mkdtemp(join(tmpdir(), 'testkit-race-'));
    await symlink(raceDir, link);
    try {
      const [viaDir, viaLink] = await Promise.all([
        buildTestImages({ largeLayerMiB: 1, cacheDir: raceDir }),
        buildTestImages({ largeLayerMiB: 1, cacheDir: link }),
      ]);
      expect(digestsOf(viaLink)).toEqual(digestsOf(viaDir));
      const entries = await readdir(raceDir);
      expect(entries).toHaveLength(1);
      expect(entries[0]).toMatch(/^[0-9a-f]{16}$/);
    } finally {
      await rm(link, { force: true });
      await rm(raceDir, { recursive: true, force: true });
    }
  });

  it('removes stale build folders', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'testkit-stale-'));
    try {
      const stale = join(dir, '.build-crashed');
      const fresh = join(dir, '.build-running');
      await mkdir(stale);
      await mkdir(fresh);
      const twoHoursAgo = new Date(Date.now() - 2 * 60 * 60 * 1000);
      await utimes(stale, twoHoursAgo, twoHoursAgo);
      await buildTestImages({ largeLayerMiB: 1, cacheDir: dir });
      const entries = await readdir(dir);
      expect(entries).not.toContain('.build-crashed');
      expect(entries).toContain('.build-running');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('rejects an invalid largeLayerMiB', async () => {
    const error = await buildTestImages({ largeLayerMiB: 0 }).catch((err: unknown) => err);
    expect((error as TestkitError).code).toBe('INVALID_OPTIONS');
  });
});

describe('pushTestImages', () => {
  let images: TestImages;
  let registry: RegistryHandle;

  beforeAll(async () => {
    images = await buildTestImages({ largeLayerMiB: SMALL_LARGE_LAYER_MIB });
    registry = await startRegistry();
    await pushTestImages(registry, images);
  });
  afterAll(async () => {
    await registry.stop();
  });

  it('preserves every digest', async () => {
    const stored: Record<string, string> = {};
    for (const image of Object.values(images.images)) {
      stored[image.name] = await skopeoInspectRawDigest(
        registry,
        `${image.repository}:${image.tag}`,
      );
    }
    expect(stored).toEqual(digestsOf(images));
  });

  it('stores the referrers index byte for byte', async () => {
    const index = images.referrersIndex;
    const res = await request(`${registry.url}/v2/${index.repository}/manifests/${index.tag}`, {
      headers: { accept: MANIFEST_ACCEPT },
    });
    expect(res.statusCode).toBe(200);
    expect(Buffer.from(await res.body.arrayBuffer())).toEqual(index.bytes);
  });

  it('rejects an unknown image name', async () => {
    const error = await pushTestImages(registry, images, { only: ['nope:1'] }).catch(
      (err: unknown) => err,
    );
    expect(error).toBeInstanceOf(TestkitError);
    expect((error as TestkitError).code).toBe('INVALID_OPTIONS');
  });
});
