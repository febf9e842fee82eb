import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { MediaType, parseManifest } from '@edge/oci';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { blobPath } from './blobs.js';
import { buildDemoImages, type DemoImageSet } from './build.js';

const run = promisify(execFile);

describe('demo image builder', () => {
  let folder: string;
  let first: DemoImageSet;
  let second: DemoImageSet;

  beforeAll(async () => {
    folder = await mkdtemp(join(tmpdir(), 'quickstart-images-'));
    first = await buildDemoImages(join(folder, 'first'));
    second = await buildDemoImages(join(folder, 'second'));
  });

  afterAll(async () => {
    await rm(folder, { recursive: true, force: true });
  });

  it('two builds give identical digests', () => {
    expect(second.images).toEqual(first.images);
    expect(first.images.map((image) => `${image.repository}:${image.tag}`)).toEqual([
      'demo/hello:1.0',
      'demo/tools:1.0',
      'demo/multi:1.0',
    ]);
  });

  it('two builds give identical files', async () => {
    const names = await readdir(join(first.layoutDir, 'blobs/sha256'));
    expect(await readdir(join(second.layoutDir, 'blobs/sha256'))).toEqual(names);
    expect(names.some((name) => name.startsWith('.tmp-'))).toBe(false);
    expect(await readFile(join(second.layoutDir, 'index.json'))).toEqual(
      await readFile(join(first.layoutDir, 'index.json')),
    );
  });

  it('every blob hashes to its name', async () => {
    const names = await readdir(join(first.layoutDir, 'blobs/sha256'));
    for (const name of names) {
      const bytes = await readFile(join(first.layoutDir, 'blobs/sha256', name));
      expect({ name, hash: createHash('sha256').update(bytes).digest('hex') }).toEqual({
        name,
        hash: name,
      });
    }
  });

  it('manifests reference written blobs', async () => {
    for (const image of first.images.filter((candidate) => candidate.children.length === 0)) {
      const bytes = await readFile(blobPath(first.layoutDir, image.digest));
      expect(bytes.length).toBe(image.size);
      const parsed = parseManifest(bytes, image.mediaType);
      const listed =
        parsed.kind === 'image'
          ? [parsed.config, ...parsed.layers].map((descriptor) => descriptor.digest)
          : [];
      expect(image.blobs.map((blob) => blob.digest)).toEqual(listed);
    }
  });

  it('index lists its children', async () => {
    const multi = first.images.find((image) => image.repository === 'demo/multi');
    const bytes = await readFile(blobPath(first.layoutDir, multi?.digest ?? ''));
    expect(bytes.length).toBe(multi?.size);
    const parsed = parseManifest(bytes, MediaType.OciIndex);
    const listed = parsed.kind === 'index' ? parsed.manifests.map((child) => child.digest) : [];
    expect(listed).toEqual(multi?.children.map((child) => child.digest));
  });

  it('index lists amd64 and arm64', () => {
    const multi = first.images.find((image) => image.repository === 'demo/multi');
    expect(multi?.mediaType).toBe(MediaType.OciIndex);
    expect(multi?.children.map((child) => child.platform)).toEqual([
      { os: 'linux', architecture: 'amd64' },
      { os: 'linux', architecture: 'arm64', variant: 'v8' },
    ]);
  });

  it('tools image uses Docker media types', async () => {
    const tools = first.images.find((image) => image.repository === 'demo/tools');
    expect(tools?.mediaType).toBe(MediaType.DockerManifest);
    const bytes = await readFile(blobPath(first.layoutDir, tools?.digest ?? ''));
    const manifest = JSON.parse(bytes.toString('utf8')) as { layers: { mediaType: string }[] };
    expect(manifest.layers.map((layer) => layer.mediaType)).toEqual([
      MediaType.DockerLayerGzip,
      MediaType.DockerLayerGzip,
    ]);
  });

  it('layers extract with tar and match diff_ids', async () => {
    const hello = first.images.find((image) => image.repository === 'demo/hello');
    const [configBlob, ...layers] = hello?.blobs ?? [];
    const config = JSON.parse(
      await readFile(blobPath(first.layoutDir, configBlob?.digest ?? ''), 'utf8'),
    ) as { rootfs: { diff_ids: string[] } };
    expect(layers).toHaveLength(2);
    for (const [index, layer] of layers.entries()) {
      const path = blobPath(first.layoutDir, layer.digest);
      const { stdout } = await run('tar', ['-tzf', path]);
      expect(stdout).toContain('/');
      const { stdout: raw } = await run('sh', ['-c', `gzip -dc "$1" | sha256sum`, 'sh', path]);
      expect(`sha256:${raw.split(' ')[0]}`).toBe(config.rootfs.diff_ids[index]);
    }
    const { stdout: base } = await run('tar', [
      '-tzf',
      blobPath(first.layoutDir, layers[0]!.digest),
    ]);
    expect(base).toContain('usr/share/edge-demo/payload.bin');
  });

  it('layout is readable by skopeo', async () => {
    const { stdout } = await run('skopeo', [
      'inspect',
      '--raw',
      `oci:${first.layoutDir}:demo/multi:1.0`,
    ]);
    const multi = first.images.find((image) => image.repository === 'demo/multi');
    expect(`sha256:${createHash('sha256').update(stdout).digest('hex')}`).toBe(multi?.digest);
  });
});
