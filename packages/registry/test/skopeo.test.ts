import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  buildTestImages,
  pushTestImages,
  runCommand,
  skopeoInspectRawDigest,
  startRegistry,
  type RegistryHandle,
  type TestImages,
} from '@edge/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEmbeddedRegistry } from './embedded.js';
import { MANIFEST_ACCEPT } from './http-helpers.js';

// Real skopeo 1.9 against the built serve command, with the test kit's umoci-built images (the
// large layer shrunk to 4 MiB; the 200 MiB case is in the memory test and the benchmark).
let images: TestImages;
let embedded: RegistryHandle;
let distribution: RegistryHandle;
let scratch: string;

/** Manifest digest of every test image by name, the expected result of each loop below. */
function expectedDigests(suffix = ''): Record<string, string> {
  return Object.fromEntries(
    Object.values(images.images).map((image) => [`${image.name}${suffix}`, image.digest]),
  );
}

function isIndex(mediaType: string): boolean {
  return mediaType.includes('index') || mediaType.includes('manifest.list');
}

beforeAll(async () => {
  images = await buildTestImages({ largeLayerMiB: 4 });
  scratch = await mkdtemp(join(tmpdir(), 'registry-skopeo-'));
  embedded = await startEmbeddedRegistry({ push: true });
  distribution = await startRegistry();
  await pushTestImages(embedded, images);
});

afterAll(async () => {
  await embedded?.stop();
  await distribution?.stop();
  if (scratch) await rm(scratch, { recursive: true, force: true });
});

describe('skopeo against the embedded registry', () => {
  it('inspect --raw digests equal the source', async () => {
    const found: Record<string, string> = {};
    for (const image of Object.values(images.images)) {
      const byTag = await skopeoInspectRawDigest(embedded, `${image.repository}:${image.tag}`);
      found[`${image.name} by tag`] = byTag;
      const byDigest = await skopeoInspectRawDigest(
        embedded,
        `${image.repository}@${image.digest}`,
      );
      found[`${image.name} by digest`] = byDigest;
    }
    expect(found).toEqual({ ...expectedDigests(' by tag'), ...expectedDigests(' by digest') });
  });

  it('copies every image out by tag', async () => {
    const found: Record<string, string> = {};
    for (const image of Object.values(images.images)) {
      await runCommand('skopeo', [
        'copy',
        '--quiet',
        '--preserve-digests',
        ...(isIndex(image.mediaType) ? ['--all'] : []),
        '--src-tls-verify=false',
        '--dest-tls-verify=false',
        `docker://${embedded.host}/${image.repository}:${image.tag}`,
        `docker://${distribution.host}/${image.repository}:${image.tag}`,
      ]);
      const copied = await skopeoInspectRawDigest(distribution, `${image.repository}:${image.tag}`);
      found[image.name] = copied;
    }
    expect(found).toEqual(expectedDigests());
  });

  it('copies every image out by digest', async () => {
    const found: Record<string, string> = {};
    for (const image of Object.values(images.images)) {
      const layout = join(scratch, image.layoutTag);
      await runCommand('skopeo', [
        'copy',
        '--quiet',
        '--preserve-digests',
        ...(isIndex(image.mediaType) ? ['--all'] : []),
        '--src-tls-verify=false',
        `docker://${embedded.host}/${image.repository}@${image.digest}`,
        `oci:${layout}:out`,
      ]);
      const index = JSON.parse(await readFile(join(layout, 'index.json'), 'utf8')) as {
        manifests: { digest: string }[];
      };
      found[image.name] = index.manifests[0]?.digest ?? 'none';
    }
    expect(found).toEqual(expectedDigests());
  });

  it('skopeo pushes every image in from a registry', async () => {
    // pushTestImages sends docker:1 by raw HTTP (skopeo 1.9 cannot keep its digest from an OCI
    // layout), so this pushes all of them again with skopeo, registry to registry, under copy/.
    const found: Record<string, string> = {};
    for (const image of Object.values(images.images)) {
      await runCommand('skopeo', [
        'copy',
        '--quiet',
        '--preserve-digests',
        ...(isIndex(image.mediaType) ? ['--all'] : []),
        '--src-tls-verify=false',
        '--dest-tls-verify=false',
        `docker://${distribution.host}/${image.repository}:${image.tag}`,
        `docker://${embedded.host}/copy/${image.repository}:${image.tag}`,
      ]);
      const copied = await skopeoInspectRawDigest(
        embedded,
        `copy/${image.repository}:${image.tag}`,
      );
      found[image.name] = copied;
    }
    expect(found).toEqual(expectedDigests());
  });

  it('serves the referrers fallback index byte for byte', async () => {
    const fallback = images.referrersIndex;
    const response = await fetch(
      `${embedded.url}/v2/${fallback.repository}/manifests/${fallback.tag}`,
      {
        headers: { Accept: MANIFEST_ACCEPT },
      },
    );
    expect(response.status).toBe(200);
    expect(response.headers.get('docker-content-digest')).toBe(fallback.digest);
    expect(Buffer.from(await response.arrayBuffer())).toEqual(fallback.bytes);
  });

  it('referrers API lists the signature', async () => {
    const subject = images.images['app-a:1']!;
    const signature = images.images['app-a:sig']!;
    const response = await fetch(`${embedded.url}/v2/test/app-a/referrers/${subject.digest}`);
    const body = (await response.json()) as {
      manifests: { digest: string; artifactType?: string }[];
    };
    expect(body.manifests.map((d) => d.digest)).toEqual([signature.digest]);
  });

  it('skopeo reads the store folder as an OCI layout', async () => {
    const image = images.images['app-a:2']!;
    const layout = join(scratch, 'from-store');
    await runCommand('skopeo', [
      'copy',
      '--quiet',
      '--preserve-digests',
      `oci:${embedded.dataDir}:${image.repository}:${image.tag}`,
      `oci:${layout}:out`,
    ]);
    const index = JSON.parse(await readFile(join(layout, 'index.json'), 'utf8')) as {
      manifests: { digest: string }[];
    };
    expect(index.manifests[0]?.digest).toBe(image.digest);
    const bytes = await readFile(
      join(layout, 'blobs/sha256', image.digest.slice('sha256:'.length)),
    );
    expect(`sha256:${createHash('sha256').update(bytes).digest('hex')}`).toBe(image.digest);
  });
});

describe('serve command with credentials', () => {
  it('skopeo pushes and pulls with Basic credentials', async () => {
    const passwordFile = join(scratch, 'password.txt');
    await writeFile(passwordFile, 'site-secret\n');
    const secured = await startEmbeddedRegistry({
      push: true,
      credentials: { username: 'site', password: 'site-secret' },
      extraArgs: ['--pull-user', 'site', '--pull-password-file', passwordFile],
      // No push user: push then needs the pull credentials.
    });
    try {
      await runCommand('skopeo', [
        'copy',
        '--quiet',
        '--preserve-digests',
        '--src-tls-verify=false',
        '--dest-tls-verify=false',
        '--dest-creds',
        'site:site-secret',
        `docker://${embedded.host}/test/app-a:1`,
        `docker://${secured.host}/test/app-a:1`,
      ]);
      expect(await skopeoInspectRawDigest(secured, 'test/app-a:1')).toBe(
        images.images['app-a:1']!.digest,
      );
      const anonymous = await fetch(`${secured.url}/v2/test/app-a/tags/list`);
      expect(anonymous.status).toBe(401);
      expect(anonymous.headers.get('www-authenticate')).toBe('Basic realm="edge-registry"');
      await anonymous.arrayBuffer();
      const anonymousPush = await fetch(`${secured.url}/v2/test/app-a/blobs/uploads/`, {
        method: 'POST',
      });
      expect(anonymousPush.status).toBe(401);
      await anonymousPush.arrayBuffer();
    } finally {
      await secured.stop();
    }
  });
});
