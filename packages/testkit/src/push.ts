import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { TestkitError } from './errors.js';
import type { TestImage, TestImages } from './images.js';
import { DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, OCI_INDEX } from './media-types.js';
import { runCommand } from './process.js';
import type { RegistryHandle } from './registry.js';
import { expectStatus, RegistrySession } from './registry-http.js';

/**
 * Repositories pushed at the same time. Each skopeo copy is mostly disk and loopback I/O, and the
 * machines this runs on have two cores.
 */
const PUSH_CONCURRENCY = 3;
/** Order of pushes inside one repository: a referrer after its subject, newer tags later. */
const PUSH_ORDER = [
  'base:1',
  'app-a:1',
  'app-a:2',
  'app-a:sig',
  'app-b:1',
  'arm64:1',
  'multi:1',
  'docker:1',
  'large:1',
];

export interface PushTestImagesOptions {
  /** Image names to push (default all), e.g. ['app-a:1', 'multi:1']. */
  only?: string[];
  /** Push the referrers fallback index whenever 'app-a:sig' is pushed (default true). */
  referrersIndex?: boolean;
}

function credentialArgs(flag: string, registry: RegistryHandle): string[] {
  if (registry.username === undefined || registry.password === undefined) return [];
  return [flag, `${registry.username}:${registry.password}`];
}

function secretsOf(registry: RegistryHandle): string[] {
  return registry.password === undefined ? [] : [registry.password];
}

async function skopeoCopy(
  registry: RegistryHandle,
  images: TestImages,
  image: TestImage,
): Promise<void> {
  const isIndex = image.mediaType === OCI_INDEX || image.mediaType === DOCKER_MANIFEST_LIST;
  await runCommand(
    'skopeo',
    [
      'copy',
      '--quiet',
      '--preserve-digests',
      ...(isIndex ? ['--all'] : []),
      '--dest-tls-verify=false',
      ...credentialArgs('--dest-creds', registry),
      `oci:${images.layoutDir}:${image.layoutTag}`,
      `docker://${registry.host}/${image.repository}:${image.tag}`,
    ],
    { name: `skopeo copy of ${image.name}`, secrets: secretsOf(registry) },
  );
}

/**
 * Uploads the referrers fallback index as raw bytes. skopeo 1.9 drops `artifactType` from index
 * descriptors, so it cannot copy this index with its digest.
 */
async function putReferrersIndex(registry: RegistryHandle, images: TestImages): Promise<void> {
  const index = images.referrersIndex;
  const session = new RegistrySession(registry, `repository:${index.repository}:pull,push`);
  await putManifest(
    session,
    index.repository,
    index.tag,
    index.mediaType,
    index.bytes,
    index.digest,
  );
}

async function putManifest(
  session: RegistrySession,
  repository: string,
  reference: string,
  mediaType: string,
  bytes: Buffer,
  digest: string,
): Promise<void> {
  const res = await session.send('PUT', `/v2/${repository}/manifests/${reference}`, {
    headers: { 'content-type': mediaType },
    body: () => bytes,
  });
  expectStatus(res, [201], `PUT of manifest ${repository}:${reference}`);
  const stored = res.headers['docker-content-digest'];
  if (stored !== digest) {
    throw new TestkitError(
      'PUSH_FAILED',
      `the registry stored ${repository}:${reference} as ${String(stored)}, expected ${digest}`,
    );
  }
}

/** Uploads one blob from the layout unless the repository has it (POST, then PUT with the body). */
async function pushBlob(
  session: RegistrySession,
  images: TestImages,
  repository: string,
  blob: { digest: string; size: number },
): Promise<void> {
  const head = await session.send('HEAD', `/v2/${repository}/blobs/${blob.digest}`);
  if (head.status === 200) return;
  const start = await session.send('POST', `/v2/${repository}/blobs/uploads/`);
  expectStatus(start, [202], `upload start for ${repository}@${blob.digest}`);
  const location = start.headers.location;
  if (typeof location !== 'string') {
    throw new TestkitError('PUSH_FAILED', `upload start for ${repository} returned no Location`);
  }
  // docker-registry returns an absolute Location built from the request's Host header.
  const target = new URL(location, session.baseUrl);
  target.searchParams.set('digest', blob.digest);
  const path = join(images.layoutDir, 'blobs', 'sha256', blob.digest.replace('sha256:', ''));
  const put = await session.send('PUT', target.href, {
    headers: { 'content-type': 'application/octet-stream', 'content-length': String(blob.size) },
    body: () => createReadStream(path),
  });
  expectStatus(put, [201], `upload of ${repository}@${blob.digest}`);
}

/**
 * Pushes an image manifest and its blobs by raw HTTP. skopeo 1.9 reads only OCI media types
 * from an OCI layout, so docker:1 (Docker schema 2) cannot go through skopeo.
 */
async function pushRawImage(
  registry: RegistryHandle,
  images: TestImages,
  image: TestImage,
): Promise<void> {
  const session = new RegistrySession(registry, `repository:${image.repository}:pull,push`);
  const path = join(images.layoutDir, 'blobs', 'sha256', image.digest.replace('sha256:', ''));
  const bytes = await readFile(path);
  const manifest = JSON.parse(bytes.toString()) as {
    config: { digest: string; size: number };
    layers: { digest: string; size: number }[];
  };
  for (const blob of [manifest.config, ...manifest.layers]) {
    await pushBlob(session, images, image.repository, blob);
  }
  await putManifest(session, image.repository, image.tag, image.mediaType, bytes, image.digest);
}

async function runLimited(tasks: (() => Promise<void>)[], limit: number): Promise<void> {
  const queue = [...tasks];
  const errors: unknown[] = [];
  const worker = async () => {
    for (let task = queue.shift(); task; task = queue.shift()) {
      try {
        await task();
      } catch (err) {
        errors.push(err);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, tasks.length) }, worker));
  if (errors.length === 1) throw errors[0];
  if (errors.length > 1) throw new AggregateError(errors, `${errors.length} pushes failed`);
}

/**
 * Pushes the test images with `skopeo copy --preserve-digests` (`--all` for indexes), several
 * repositories at once and the tags of one repository in order. docker:1 and the referrers
 * fallback index go by raw HTTP, because skopeo 1.9 cannot copy either with its digest.
 */
export async function pushTestImages(
  registry: RegistryHandle,
  images: TestImages,
  opts: PushTestImagesOptions = {},
): Promise<void> {
  const names = opts.only ?? Object.keys(images.images);
  for (const name of names) {
    if (!images.images[name]) {
      throw new TestkitError(
        'INVALID_OPTIONS',
        `pushTestImages: unknown image ${name}; known: ${Object.keys(images.images).join(', ')}`,
      );
    }
  }
  const ordered = [...names].sort((a, b) => PUSH_ORDER.indexOf(a) - PUSH_ORDER.indexOf(b));
  const byRepository = new Map<string, TestImage[]>();
  for (const name of ordered) {
    const image = images.images[name];
    if (!image) continue;
    byRepository.set(image.repository, [...(byRepository.get(image.repository) ?? []), image]);
  }
  const tasks = [...byRepository.values()].map((group) => async () => {
    for (const image of group) {
      if (image.mediaType === DOCKER_MANIFEST) await pushRawImage(registry, images, image);
      else await skopeoCopy(registry, images, image);
      if (image.name === 'app-a:sig' && opts.referrersIndex !== false) {
        await putReferrersIndex(registry, images);
      }
    }
  });
  await runLimited(tasks, PUSH_CONCURRENCY);
}

/**
 * Returns 'sha256:<hex>' of the exact manifest bytes that `skopeo inspect --raw` reads for `ref`
 * ('test/app-a:1' or 'test/app-a@sha256:...') on the registry.
 */
export async function skopeoInspectRawDigest(
  registry: RegistryHandle,
  ref: string,
): Promise<string> {
  const { stdout } = await runCommand(
    'skopeo',
    [
      'inspect',
      '--raw',
      '--tls-verify=false',
      ...credentialArgs('--creds', registry),
      `docker://${registry.host}/${ref}`,
    ],
    { name: `skopeo inspect of ${ref}`, secrets: secretsOf(registry) },
  );
  return `sha256:${createHash('sha256').update(stdout).digest('hex')}`;
}
