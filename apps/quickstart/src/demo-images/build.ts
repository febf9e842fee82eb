import { createHash } from 'node:crypto';
import { mkdir, rm } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { constants, createGzip, type ZlibOptions } from 'node:zlib';
import { MediaType, type Digest } from '@edge/oci';
import { HashingStream, writeBlob, type WrittenBlob } from './blobs.js';
import { tarBlocks, TAR_MTIME_SECONDS, type TarEntry } from './tar.js';
import { writeLayoutIndex } from './layout.js';

/**
 * Fixed gzip settings, so a layer compresses to the same bytes on every run. Node's gzip header
 * carries mtime 0 and the operating system byte of its zlib build. Digests therefore match between
 * runs on one platform and Node version, but another zlib release may compress differently.
 */
export const GZIP_OPTIONS: ZlibOptions = {
  level: 9,
  memLevel: 8,
  windowBits: 15,
  strategy: constants.Z_DEFAULT_STRATEGY,
};

/** Creation time written into every config, the same instant as the tar entries' mtime. */
const CREATED = new Date(TAR_MTIME_SECONDS * 1000).toISOString();

/** Size of the pseudo-random file in the base layer, so the copy has some bytes to move. */
const PAYLOAD_BYTES = 256 * 1024;

export interface DemoPlatform {
  os: string;
  architecture: string;
  variant?: string;
}

/** A manifest written to the layout, pushed by digest before the index that lists it. */
export interface DemoManifest {
  digest: Digest;
  mediaType: string;
  size: number;
  platform: DemoPlatform;
}

/** One tagged demo artifact and everything to push for it, in push order. */
export interface DemoImage {
  repository: string;
  tag: string;
  digest: Digest;
  mediaType: string;
  size: number;
  /** Config and layer blobs of the image, or of all index children, without duplicates. */
  blobs: WrittenBlob[];
  /** Index children; empty for a single-platform image. */
  children: DemoManifest[];
}

export interface DemoImageSet {
  /** OCI image layout folder that contains every blob and manifest. */
  layoutDir: string;
  images: DemoImage[];
}

/** Bytes of a file whose content follows from its name only: a sha256 chain over a counter. */
function pseudoRandomBytes(seed: string, size: number): Buffer {
  const output = Buffer.alloc(size);
  let offset = 0;
  for (let counter = 0; offset < size; counter += 1) {
    const block = createHash('sha256').update(`${seed}:${counter}`).digest();
    offset += block.copy(output, offset);
  }
  return output;
}

function text(value: string): Buffer {
  return Buffer.from(value, 'utf8');
}

function platformName(platform: DemoPlatform): string {
  return [platform.os, platform.architecture, platform.variant].filter(Boolean).join('/');
}

const BASE_ENTRIES: TarEntry[] = [
  { type: 'directory', path: 'etc' },
  {
    type: 'file',
    path: 'etc/os-release',
    content: text('NAME="Edge demo"\nID=edge-demo\nVERSION_ID=1.0\n'),
  },
  { type: 'directory', path: 'usr' },
  { type: 'directory', path: 'usr/share' },
  { type: 'directory', path: 'usr/share/edge-demo' },
  {
    type: 'file',
    path: 'usr/share/edge-demo/README.txt',
    content: text(
      'This is a demo image built by the edge images quickstart.\n' +
        'It contains files only and no executable, so runtimes can pull it but not run it.\n',
    ),
  },
  {
    type: 'file',
    path: 'usr/share/edge-demo/payload.bin',
    content: pseudoRandomBytes('edge-demo-payload', PAYLOAD_BYTES),
  },
];

function helloEntries(): TarEntry[] {
  return [
    { type: 'directory', path: 'srv' },
    { type: 'directory', path: 'srv/hello' },
    {
      type: 'file',
      path: 'srv/hello/index.html',
      content: text('<!doctype html>\n<title>hello</title>\n<p>Hello from the edge.</p>\n'),
    },
  ];
}

function toolsEntries(): TarEntry[] {
  return [
    { type: 'directory', path: 'opt' },
    { type: 'directory', path: 'opt/tools' },
    {
      type: 'file',
      path: 'opt/tools/tool.sh',
      mode: 0o755,
      content: text('#!/bin/sh\necho "edge demo tool"\n'),
    },
  ];
}

function platformEntries(platform: DemoPlatform): TarEntry[] {
  return [
    { type: 'directory', path: 'etc/edge-demo' },
    { type: 'file', path: 'etc/edge-demo/platform', content: text(`${platformName(platform)}\n`) },
  ];
}

interface Layer {
  blob: WrittenBlob;
  diffId: Digest;
}

async function writeLayer(layoutDir: string, entries: readonly TarEntry[]): Promise<Layer> {
  const uncompressed = new HashingStream();
  const blob = await writeBlob(layoutDir, Readable.from(tarBlocks(entries)), [
    uncompressed,
    createGzip(GZIP_OPTIONS),
  ]);
  return { blob, diffId: uncompressed.result().digest };
}

async function writeJson(layoutDir: string, value: unknown): Promise<WrittenBlob> {
  return writeBlob(layoutDir, Readable.from([Buffer.from(JSON.stringify(value), 'utf8')]));
}

type ManifestFormat = 'oci' | 'docker';

const FORMATS = {
  oci: {
    manifest: MediaType.OciManifest,
    config: MediaType.OciConfig,
    layer: MediaType.OciLayerGzip,
  },
  docker: {
    manifest: MediaType.DockerManifest,
    config: MediaType.DockerConfig,
    layer: MediaType.DockerLayerGzip,
  },
} as const;

interface BuiltImage {
  manifest: WrittenBlob & { mediaType: string };
  blobs: WrittenBlob[];
}

async function writeImage(
  layoutDir: string,
  format: ManifestFormat,
  platform: DemoPlatform,
  layers: readonly Layer[],
  title: string,
): Promise<BuiltImage> {
  const types = FORMATS[format];
  const config = await writeJson(layoutDir, {
    created: CREATED,
    architecture: platform.architecture,
    os: platform.os,
    ...(platform.variant !== undefined ? { variant: platform.variant } : {}),
    config: {
      Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'],
      Labels: { 'org.opencontainers.image.title': title },
    },
    rootfs: { type: 'layers', diff_ids: layers.map((layer) => layer.diffId) },
    history: layers.map((_layer, index) => ({
      created: CREATED,
      created_by: `edge quickstart demo layer ${index + 1} of ${title}`,
    })),
  });
  const manifest = await writeJson(layoutDir, {
    schemaVersion: 2,
    mediaType: types.manifest,
    config: { mediaType: types.config, digest: config.digest, size: config.size },
    layers: layers.map((layer) => ({
      mediaType: types.layer,
      digest: layer.blob.digest,
      size: layer.blob.size,
    })),
    ...(format === 'oci'
      ? {
          annotations: {
            'org.opencontainers.image.created': CREATED,
            'org.opencontainers.image.title': title,
          },
        }
      : {}),
  });
  return {
    manifest: { ...manifest, mediaType: types.manifest },
    blobs: [config, ...layers.map((layer) => layer.blob)],
  };
}

function uniqueBlobs(blobs: readonly WrittenBlob[]): WrittenBlob[] {
  const byDigest = new Map(blobs.map((blob) => [blob.digest, blob]));
  return [...byDigest.values()];
}

const AMD64: DemoPlatform = { os: 'linux', architecture: 'amd64' };
const ARM64: DemoPlatform = { os: 'linux', architecture: 'arm64', variant: 'v8' };

/**
 * Builds the demo images into an OCI image layout at `layoutDir` (emptied first): `demo/hello:1.0`
 * (OCI image), `demo/tools:1.0` (Docker schema 2 image) and `demo/multi:1.0` (OCI index for
 * linux/amd64 and linux/arm64/v8). All three share the base layer. Digests are the same on every
 * run with the same Node version.
 */
export async function buildDemoImages(layoutDir: string): Promise<DemoImageSet> {
  await rm(layoutDir, { recursive: true, force: true });
  await mkdir(layoutDir, { recursive: true });
  const base = await writeLayer(layoutDir, BASE_ENTRIES);
  const images: DemoImage[] = [];

  const hello = await writeImage(
    layoutDir,
    'oci',
    AMD64,
    [base, await writeLayer(layoutDir, helloEntries())],
    'demo/hello',
  );
  images.push({
    repository: 'demo/hello',
    tag: '1.0',
    ...hello.manifest,
    blobs: hello.blobs,
    children: [],
  });

  const tools = await writeImage(
    layoutDir,
    'docker',
    AMD64,
    [base, await writeLayer(layoutDir, toolsEntries())],
    'demo/tools',
  );
  images.push({
    repository: 'demo/tools',
    tag: '1.0',
    ...tools.manifest,
    blobs: tools.blobs,
    children: [],
  });

  const children: DemoManifest[] = [];
  const childBlobs: WrittenBlob[] = [];
  for (const platform of [AMD64, ARM64]) {
    const layer = await writeLayer(layoutDir, platformEntries(platform));
    const child = await writeImage(layoutDir, 'oci', platform, [base, layer], 'demo/multi');
    children.push({ ...child.manifest, platform });
    childBlobs.push(...child.blobs);
  }
  const index = await writeJson(layoutDir, {
    schemaVersion: 2,
    mediaType: MediaType.OciIndex,
    manifests: children.map((child) => ({
      mediaType: child.mediaType,
      digest: child.digest,
      size: child.size,
      platform: child.platform,
    })),
    annotations: { 'org.opencontainers.image.created': CREATED },
  });
  images.push({
    repository: 'demo/multi',
    tag: '1.0',
    ...index,
    mediaType: MediaType.OciIndex,
    blobs: uniqueBlobs(childBlobs),
    children,
  });

  await writeLayoutIndex(layoutDir, images);
  return { layoutDir, images };
}
