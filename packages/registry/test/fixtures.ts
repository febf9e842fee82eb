// Small deterministic images built in code, for store and HTTP tests that do not need the test
// kit's umoci images: gzip-compressed tar layers with one file each, written as an OCI layout.
import { createHash } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';

export const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
export const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
export const DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json';
export const SIGNATURE_TYPE = 'application/vnd.example.signature.v1+json';
export const SBOM_TYPE = 'application/vnd.example.sbom.v1+json';

export interface Blob {
  digest: string;
  size: number;
  bytes: Buffer;
  mediaType: string;
}

export interface Manifest extends Blob {
  name: string;
  repository: string;
  tag?: string;
  blobs: Blob[];
  children: Manifest[];
}

export function sha256(bytes: Buffer): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

function blob(bytes: Buffer, mediaType: string): Blob {
  return { digest: sha256(bytes), size: bytes.length, bytes, mediaType };
}

/** Pseudo-random bytes from a seed (sha256 in counter mode), identical on every run. */
export function seededBytes(seed: string, size: number): Buffer {
  const out = Buffer.alloc(size);
  for (let offset = 0, counter = 0; offset < size; counter += 1) {
    const block = createHash('sha256').update(`${seed}:${counter}`).digest();
    block.copy(out, offset);
    offset += block.length;
  }
  return out;
}

/** Builds a ustar archive with one regular file, mtime 0, owner root. */
export function tarWithFile(name: string, content: Buffer): Buffer {
  const header = Buffer.alloc(512);
  header.write(name, 0, 100, 'utf8');
  header.write('0000644\0', 100);
  header.write('0000000\0', 108);
  header.write('0000000\0', 116);
  header.write(`${content.length.toString(8).padStart(11, '0')}\0`, 124);
  header.write('00000000000\0', 136);
  header.write('        ', 148);
  header.write('0', 156);
  header.write('ustar\0', 257);
  header.write('00', 263);
  let sum = 0;
  for (const byte of header) sum += byte;
  header.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148);
  const padding = Buffer.alloc((512 - (content.length % 512)) % 512);
  return Buffer.concat([header, content, padding, Buffer.alloc(1024)]);
}

export function layer(
  seed: string,
  size: number,
  mediaType = 'application/vnd.oci.image.layer.v1.tar+gzip',
): Blob {
  return blob(gzipSync(tarWithFile(`data/${seed}.bin`, seededBytes(seed, size))), mediaType);
}

function descriptor(item: Blob): { mediaType: string; digest: string; size: number } {
  return { mediaType: item.mediaType, digest: item.digest, size: item.size };
}

function json(value: unknown): Buffer {
  return Buffer.from(JSON.stringify(value));
}

export function imageManifest(options: {
  name: string;
  repository: string;
  tag?: string;
  architecture?: string;
  layers: Blob[];
  docker?: boolean;
  subject?: Blob;
  artifactType?: string;
}): Manifest {
  const config = blob(
    json({
      architecture: options.architecture ?? 'amd64',
      os: 'linux',
      rootfs: { type: 'layers', diff_ids: options.layers.map((l) => l.digest) },
      config: {},
    }),
    options.docker
      ? 'application/vnd.docker.container.image.v1+json'
      : 'application/vnd.oci.image.config.v1+json',
  );
  const mediaType = options.docker ? DOCKER_MANIFEST : OCI_MANIFEST;
  const body: Record<string, unknown> = {
    schemaVersion: 2,
    mediaType,
    config: descriptor(config),
    layers: options.layers.map(descriptor),
  };
  if (options.subject) body.subject = descriptor(options.subject);
  const bytes = json(body);
  return {
    ...blob(bytes, mediaType),
    name: options.name,
    repository: options.repository,
    ...(options.tag === undefined ? {} : { tag: options.tag }),
    blobs: [config, ...options.layers],
    children: [],
  };
}

export function artifactManifest(options: {
  name: string;
  repository: string;
  tag?: string;
  artifactType: string;
  subject: Blob;
  payload: string;
}): Manifest {
  const empty = blob(Buffer.from('{}'), 'application/vnd.oci.empty.v1+json');
  const payload = blob(Buffer.from(options.payload), options.artifactType);
  const bytes = json({
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    artifactType: options.artifactType,
    config: { ...descriptor(empty), data: 'e30=' },
    layers: [descriptor(payload)],
    subject: descriptor(options.subject),
    annotations: { 'org.example.note': options.payload },
  });
  return {
    ...blob(bytes, OCI_MANIFEST),
    name: options.name,
    repository: options.repository,
    ...(options.tag === undefined ? {} : { tag: options.tag }),
    blobs: [empty, payload],
    children: [],
  };
}

export function indexManifest(options: {
  name: string;
  repository: string;
  tag?: string;
  children: Manifest[];
  platforms: string[];
}): Manifest {
  const bytes = json({
    schemaVersion: 2,
    mediaType: OCI_INDEX,
    manifests: options.children.map((child, i) => ({
      ...descriptor(child),
      platform: { architecture: options.platforms[i] ?? 'amd64', os: 'linux' },
    })),
  });
  return {
    ...blob(bytes, OCI_INDEX),
    name: options.name,
    repository: options.repository,
    ...(options.tag === undefined ? {} : { tag: options.tag }),
    blobs: [],
    children: options.children,
  };
}

export interface FixtureSet {
  base: Manifest;
  app: Manifest;
  arm: Manifest;
  multi: Manifest;
  docker: Manifest;
  signature: Manifest;
  sbom: Manifest;
  /** Referrers tag-schema fallback for `app`: tag `sha256-<hex>`, an index of its referrers. */
  fallback: Manifest;
  all: Manifest[];
}

/** Builds the fixture images; `layerBytes` sets the payload size of each layer. */
export function buildFixtures(layerBytes = 64 * 1024): FixtureSet {
  const baseLayer = layer('base', layerBytes);
  const base = imageManifest({
    name: 'base:1',
    repository: 'test/base',
    tag: '1',
    layers: [baseLayer],
  });
  const app = imageManifest({
    name: 'app:1',
    repository: 'test/app',
    tag: '1',
    layers: [baseLayer, layer('app', layerBytes)],
  });
  const arm = imageManifest({
    name: 'app:arm64',
    repository: 'test/app',
    architecture: 'arm64',
    layers: [baseLayer, layer('arm', layerBytes)],
  });
  const multi = indexManifest({
    name: 'app:multi',
    repository: 'test/app',
    tag: 'multi',
    children: [app, arm],
    platforms: ['amd64', 'arm64'],
  });
  const docker = imageManifest({
    name: 'docker:1',
    repository: 'test/docker',
    tag: '1',
    docker: true,
    layers: [layer('docker', layerBytes, 'application/vnd.docker.image.rootfs.diff.tar.gzip')],
  });
  const signature = artifactManifest({
    name: 'app:sig',
    repository: 'test/app',
    tag: 'sig',
    artifactType: SIGNATURE_TYPE,
    subject: app,
    payload: 'signature',
  });
  const sbom = artifactManifest({
    name: 'app:sbom',
    repository: 'test/app',
    artifactType: SBOM_TYPE,
    subject: app,
    payload: 'sbom',
  });
  const fallbackBytes = json({
    schemaVersion: 2,
    mediaType: OCI_INDEX,
    manifests: [{ ...descriptor(signature), artifactType: SIGNATURE_TYPE }],
  });
  const fallback: Manifest = {
    ...blob(fallbackBytes, OCI_INDEX),
    name: 'app:fallback',
    repository: 'test/app',
    tag: `sha256-${app.digest.slice('sha256:'.length)}`,
    blobs: [],
    children: [signature],
  };
  return {
    base,
    app,
    arm,
    multi,
    docker,
    signature,
    sbom,
    fallback,
    all: [base, app, arm, multi, docker, signature, sbom, fallback],
  };
}

/** Writes manifests (children first) and their blobs as an OCI layout readable by skopeo. */
export async function writeLayout(dir: string, manifests: Manifest[]): Promise<void> {
  await mkdir(join(dir, 'blobs/sha256'), { recursive: true });
  await writeFile(join(dir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  const entries: unknown[] = [];
  const write = async (item: Blob): Promise<void> => {
    await writeFile(join(dir, 'blobs/sha256', item.digest.slice('sha256:'.length)), item.bytes);
  };
  const visit = async (manifest: Manifest): Promise<void> => {
    for (const child of manifest.children) await visit(child);
    for (const item of manifest.blobs) await write(item);
    await write(manifest);
  };
  for (const manifest of manifests) {
    await visit(manifest);
    entries.push({
      ...descriptor(manifest),
      annotations: { 'org.opencontainers.image.ref.name': manifest.name.replace(':', '-') },
    });
  }
  await writeFile(
    join(dir, 'index.json'),
    JSON.stringify({ schemaVersion: 2, manifests: entries }),
  );
}
