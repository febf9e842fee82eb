import { mkdtemp, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { buildFixtures, seededBytes, sha256, type Manifest } from '../../test/fixtures.js';
import { RegistryError } from '../errors.js';
import { OciStore } from './store.js';

const fixtures = buildFixtures(4096);
const roots: string[] = [];

async function openStore(options: Parameters<typeof OciStore.open>[1] = {}): Promise<OciStore> {
  const root = await mkdtemp(join(tmpdir(), 'registry-store-'));
  roots.push(root);
  return OciStore.open(root, options);
}

afterEach(async () => {
  for (const root of roots.splice(0)) await rm(root, { recursive: true, force: true });
});

/** Puts a fixture with its children and blobs; `reference` defaults to its tag or digest. */
async function put(store: OciStore, manifest: Manifest, reference?: string): Promise<void> {
  for (const child of manifest.children) await put(store, child, child.digest);
  for (const item of manifest.blobs) await store.putBlob(Readable.from([item.bytes]), item);
  await store.putManifest(
    manifest.repository,
    reference ?? manifest.tag ?? manifest.digest,
    manifest.bytes,
    manifest.mediaType,
  );
}

async function ageEverything(store: OciStore, ageMs: number): Promise<void> {
  // Backdates blob files and manifest records, as if they had been written ageMs ago.
  const past = new Date(Date.now() - ageMs);
  const index = JSON.parse(await readFile(join(store.root, 'index.json'), 'utf8')) as {
    manifests: { digest: string; annotations?: Record<string, string> }[];
  };
  for (const entry of index.manifests) {
    const created = entry.annotations?.['org.edge-images.registry.created'];
    if (created !== undefined)
      entry.annotations!['org.edge-images.registry.created'] = past.toISOString();
  }
  await writeFile(join(store.root, 'index.json'), JSON.stringify(index));
  for (const manifest of fixtures.all) {
    for (const item of [manifest, ...manifest.blobs]) {
      await utimes(store.blobPath(item.digest), past, past).catch(() => undefined);
    }
  }
}

describe('OciStore blobs', () => {
  it('putBlob stores and streams back', async () => {
    const store = await openStore();
    const bytes = seededBytes('blob', 100_000);
    const written = await store.putBlob(Readable.from([bytes.subarray(0, 5), bytes.subarray(5)]));
    expect(written).toEqual({ digest: sha256(bytes), size: bytes.length });
    expect(await store.statBlob(written.digest)).toEqual({ size: bytes.length });
    const chunks: Buffer[] = [];
    for await (const chunk of await store.openBlob(written.digest, { start: 10, end: 19 }))
      chunks.push(chunk as Buffer);
    expect(Buffer.concat(chunks)).toEqual(bytes.subarray(10, 20));
  });

  it('putBlob rejects a wrong digest and keeps nothing', async () => {
    const store = await openStore();
    const bytes = Buffer.from('hello');
    const wrong = sha256(Buffer.from('other'));
    await expect(store.putBlob(Readable.from([bytes]), { digest: wrong })).rejects.toMatchObject({
      code: 'DIGEST_INVALID',
    });
    expect(await store.hasBlob(sha256(bytes))).toBe(false);
    expect(await store.hasBlob(wrong)).toBe(false);
    expect(await store.usage()).toEqual({ bytes: 0, blobs: 0 });
  });

  it('putBlob rejects more bytes than declared', async () => {
    const store = await openStore();
    await expect(
      store.putBlob(Readable.from([Buffer.from('hello')]), { size: 3 }),
    ).rejects.toMatchObject({ code: 'SIZE_INVALID' });
    await expect(
      store.putBlob(Readable.from([Buffer.from('hi')]), { size: 3 }),
    ).rejects.toMatchObject({ code: 'SIZE_INVALID' });
  });

  it('adoptBlobFile renames the file into blobs', async () => {
    const store = await openStore();
    const bytes = seededBytes('adopt', 5000);
    const path = join(store.tempDir(), 'download.part');
    await writeFile(path, bytes);
    await store.adoptBlobFile(path, sha256(bytes), bytes.length);
    await expect(stat(path)).rejects.toMatchObject({ code: 'ENOENT' });
    expect(await readFile(store.blobPath(sha256(bytes)))).toEqual(bytes);
  });

  it('adoptBlobFile rejects a size mismatch', async () => {
    const store = await openStore();
    const path = join(store.tempDir(), 'short.part');
    await writeFile(path, 'abc');
    await expect(store.adoptBlobFile(path, sha256(Buffer.from('abc')), 4)).rejects.toMatchObject({
      code: 'SIZE_INVALID',
    });
    expect(await store.hasBlob(sha256(Buffer.from('abc')))).toBe(false);
  });

  it('openBlob of a missing blob is BLOB_UNKNOWN', async () => {
    const store = await openStore();
    await expect(store.openBlob(sha256(Buffer.from('none')))).rejects.toMatchObject({
      code: 'BLOB_UNKNOWN',
    });
  });
});

describe('OciStore manifests', () => {
  it('putManifest rejects missing layers', async () => {
    const store = await openStore();
    const { app } = fixtures;
    await store.putBlob(Readable.from([app.blobs[0]!.bytes]));
    const error = await store
      .putManifest(app.repository, '1', app.bytes, app.mediaType)
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RegistryError);
    expect((error as RegistryError).code).toBe('MANIFEST_BLOB_UNKNOWN');
    expect((error as RegistryError).message).toContain(app.blobs[1]!.digest);
    expect(await store.getManifest(app.repository, '1')).toBeNull();
  });

  it('putManifest rejects an index with missing children', async () => {
    const store = await openStore();
    await put(store, fixtures.app, fixtures.app.digest);
    const { multi } = fixtures;
    await expect(
      store.putManifest(multi.repository, 'multi', multi.bytes, multi.mediaType),
    ).rejects.toMatchObject({
      code: 'MANIFEST_BLOB_UNKNOWN',
    });
  });

  it('putManifest rejects a child from another repository', async () => {
    const store = await openStore();
    await put(store, fixtures.multi);
    const moved = { ...fixtures.multi, repository: 'other/app' };
    for (const child of moved.children) {
      expect(await store.hasBlob(child.digest)).toBe(true);
    }
    await expect(
      store.putManifest(moved.repository, 'multi', moved.bytes, moved.mediaType),
    ).rejects.toMatchObject({
      code: 'MANIFEST_BLOB_UNKNOWN',
    });
  });

  it('putManifest rejects a digest that differs from the bytes', async () => {
    const store = await openStore();
    await put(store, fixtures.base);
    await expect(
      store.putManifest(
        'test/base',
        fixtures.app.digest,
        fixtures.base.bytes,
        fixtures.base.mediaType,
      ),
    ).rejects.toMatchObject({ code: 'DIGEST_INVALID' });
  });

  it('putManifest rejects a wrong media type', async () => {
    const store = await openStore();
    await put(store, fixtures.base);
    await expect(
      store.putManifest('test/base', '2', fixtures.base.bytes, 'application/vnd.example+json'),
    ).rejects.toMatchObject({
      code: 'MANIFEST_INVALID',
    });
    await expect(
      store.putManifest('test/base', '2', fixtures.base.bytes, fixtures.docker.mediaType),
    ).rejects.toMatchObject({
      code: 'MANIFEST_INVALID',
    });
  });

  it('putManifest rejects oversized manifests', async () => {
    const store = await openStore({ maxManifestBytes: 100 });
    for (const item of fixtures.base.blobs) await store.putBlob(Readable.from([item.bytes]));
    const { base } = fixtures;
    await expect(
      store.putManifest(base.repository, '1', base.bytes, base.mediaType),
    ).rejects.toMatchObject({
      code: 'SIZE_INVALID',
      status: 413,
    });
    expect(await store.getManifest('test/base', '1')).toBeNull();
  });

  it('putManifest rejects invalid names and tags', async () => {
    const store = await openStore();
    await put(store, fixtures.base);
    for (const name of ['Test/base', '../base', 'a//b', 'a/./b', '-a', 'a'.repeat(256)]) {
      await expect(
        store.putManifest(name, '1', fixtures.base.bytes, fixtures.base.mediaType),
      ).rejects.toMatchObject({
        code: 'NAME_INVALID',
      });
    }
    for (const tag of ['-1', '.1', 'a/b', 'x'.repeat(129)]) {
      await expect(
        store.putManifest('test/base', tag, fixtures.base.bytes, fixtures.base.mediaType),
      ).rejects.toMatchObject({
        code: 'TAG_INVALID',
      });
    }
  });

  it('getManifest returns the exact bytes by tag and digest', async () => {
    const store = await openStore();
    await put(store, fixtures.multi);
    const byTag = await store.getManifest('test/app', 'multi');
    expect(byTag?.bytes).toEqual(fixtures.multi.bytes);
    expect(byTag?.digest).toBe(fixtures.multi.digest);
    expect(byTag?.mediaType).toBe(fixtures.multi.mediaType);
    expect((await store.getManifest('test/app', fixtures.arm.digest))?.bytes).toEqual(
      fixtures.arm.bytes,
    );
    expect(await store.getManifest('test/other', 'multi')).toBeNull();
  });

  it('manifests are per repository', async () => {
    const store = await openStore();
    await put(store, fixtures.base);
    expect(await store.getManifest('test/app', fixtures.base.digest)).toBeNull();
    expect(await store.listRepositories()).toEqual(['test/base']);
  });

  it('setTag, listTags and listManifests', async () => {
    const store = await openStore();
    await put(store, fixtures.multi);
    await store.setTag('test/app', 'latest', fixtures.app.digest);
    await expect(store.setTag('test/app', 'x', fixtures.base.digest)).rejects.toMatchObject({
      code: 'MANIFEST_UNKNOWN',
    });
    expect(await store.listTags('test/app')).toEqual(['latest', 'multi']);
    const manifests = await store.listManifests('test/app');
    expect(manifests).toHaveLength(3);
    expect(manifests.find((m) => m.digest === fixtures.app.digest)?.tags).toEqual(['latest']);
    expect(manifests.find((m) => m.digest === fixtures.multi.digest)?.tags).toEqual(['multi']);
    expect(await store.listTags('test/none')).toEqual([]);
  });

  it('state survives reopening', async () => {
    const store = await openStore();
    await put(store, fixtures.multi);
    await store.pin('satellite', 'test/app', fixtures.multi.digest);
    const reopened = await OciStore.open(store.root);
    expect(await reopened.listTags('test/app')).toEqual(['multi']);
    expect((await reopened.getManifest('test/app', 'multi'))?.bytes).toEqual(fixtures.multi.bytes);
    expect(reopened.listPins()).toEqual([
      { owner: 'satellite', repository: 'test/app', digest: fixtures.multi.digest },
    ]);
    expect(await reopened.check({ verifyBlobContent: true })).toEqual([]);
  });

  it('index.json names tags repository:tag', async () => {
    const store = await openStore();
    await put(store, fixtures.base);
    const index = JSON.parse(await readFile(join(store.root, 'index.json'), 'utf8')) as {
      manifests: { digest: string; annotations?: Record<string, string> }[];
    };
    const tagged = index.manifests.filter(
      (m) => m.annotations?.['org.opencontainers.image.ref.name'] !== undefined,
    );
    expect(tagged).toHaveLength(1);
    expect(tagged[0]?.annotations?.['org.opencontainers.image.ref.name']).toBe('test/base:1');
    expect(tagged[0]?.digest).toBe(fixtures.base.digest);
    expect(await readFile(join(store.root, 'oci-layout'), 'utf8')).toContain(
      '"imageLayoutVersion":"1.0.0"',
    );
  });

  it('keeps index.json entries of other tools', async () => {
    const store = await openStore({ gcGracePeriodMs: 0 });
    await put(store, fixtures.base);
    const path = join(store.root, 'index.json');
    const index = JSON.parse(await readFile(path, 'utf8')) as { manifests: unknown[] };
    const foreign = {
      mediaType: fixtures.arm.mediaType,
      digest: fixtures.arm.digest,
      size: fixtures.arm.size,
      annotations: { 'org.opencontainers.image.ref.name': 'arm' },
    };
    index.manifests.push(foreign);
    await writeFile(path, JSON.stringify(index));
    for (const item of [fixtures.arm, ...fixtures.arm.blobs]) {
      await store.putBlob(Readable.from([item.bytes]));
    }
    const reopened = await OciStore.open(store.root, { gcGracePeriodMs: 0 });
    expect((await reopened.collectGarbage()).removedBlobs).toBe(0);
    await reopened.setTag('test/base', 'again', fixtures.base.digest);
    const after = JSON.parse(await readFile(path, 'utf8')) as { manifests: unknown[] };
    expect(after.manifests).toContainEqual(foreign);
    expect(await reopened.hasBlob(fixtures.arm.blobs[2]!.digest)).toBe(true);
  });

  it('deleteManifest removes tags and refuses index children', async () => {
    const store = await openStore({ collectAfterDelete: false });
    await put(store, fixtures.multi);
    await store.setTag('test/app', 'arm', fixtures.arm.digest);
    await expect(store.deleteManifest('test/app', fixtures.arm.digest)).rejects.toMatchObject({
      code: 'MANIFEST_REFERENCED',
    });
    await store.deleteManifest('test/app', fixtures.multi.digest);
    expect(await store.listTags('test/app')).toEqual(['arm']);
    await store.deleteManifest('test/app', fixtures.arm.digest);
    expect(await store.listTags('test/app')).toEqual([]);
    expect(await store.getManifest('test/app', fixtures.arm.digest)).toBeNull();
    await expect(store.deleteManifest('test/app', fixtures.arm.digest)).rejects.toMatchObject({
      code: 'MANIFEST_UNKNOWN',
    });
  });

  it('referrers lists subjects and filters by artifactType', async () => {
    const store = await openStore();
    await put(store, fixtures.app);
    await put(store, fixtures.signature);
    await put(store, fixtures.sbom);
    const all = await store.referrers('test/app', fixtures.app.digest);
    expect(all.map((d) => d.digest).sort()).toEqual(
      [fixtures.signature.digest, fixtures.sbom.digest].sort(),
    );
    const signatures = await store.referrers(
      'test/app',
      fixtures.app.digest,
      'application/vnd.example.signature.v1+json',
    );
    expect(signatures).toEqual([
      {
        mediaType: fixtures.signature.mediaType,
        digest: fixtures.signature.digest,
        size: fixtures.signature.size,
        artifactType: 'application/vnd.example.signature.v1+json',
        annotations: { 'org.example.note': 'signature' },
      },
    ]);
    expect(await store.referrers('test/app', fixtures.base.digest)).toEqual([]);
    expect(await store.referrers('test/none', fixtures.app.digest)).toEqual([]);
  });
});

describe('OciStore garbage collection', () => {
  const hour = 60 * 60 * 1000;

  it('keeps young unreferenced blobs', async () => {
    const store = await openStore({ gcGracePeriodMs: hour });
    const written = await store.putBlob(Readable.from([Buffer.from('young')]));
    expect(await store.collectGarbage()).toEqual({
      removedBlobs: 0,
      removedManifests: 0,
      freedBytes: 0,
    });
    expect(await store.hasBlob(written.digest)).toBe(true);
  });

  it('keeps children and referrers of tagged manifests', async () => {
    const store = await openStore({ gcGracePeriodMs: hour });
    await put(store, fixtures.multi);
    await put(store, fixtures.sbom);
    await ageEverything(store, 2 * hour);
    const aged = await OciStore.open(store.root, { gcGracePeriodMs: hour });
    expect(await aged.collectGarbage()).toEqual({
      removedBlobs: 0,
      removedManifests: 0,
      freedBytes: 0,
    });
    expect(await aged.getManifest('test/app', fixtures.arm.digest)).not.toBeNull();
    expect(await aged.getManifest('test/app', fixtures.sbom.digest)).not.toBeNull();
    expect(await aged.check()).toEqual([]);
  });

  it('removes what nothing reaches', async () => {
    const store = await openStore({ gcGracePeriodMs: hour });
    await put(store, fixtures.base);
    await put(store, fixtures.arm, fixtures.arm.digest);
    const stray = await store.putBlob(Readable.from([Buffer.from('stray')]));
    await ageEverything(store, 2 * hour);
    await utimes(
      store.blobPath(stray.digest),
      new Date(Date.now() - 2 * hour),
      new Date(Date.now() - 2 * hour),
    );
    const aged = await OciStore.open(store.root, { gcGracePeriodMs: hour });
    const dryRun = await aged.collectGarbage({ dryRun: true });
    // arm's manifest, config and own layer plus the stray blob; the base layer is shared with base:1.
    expect(dryRun.removedManifests).toBe(1);
    expect(dryRun.removedBlobs).toBe(4);
    expect(await aged.hasBlob(stray.digest)).toBe(true);
    const report = await aged.collectGarbage();
    expect(report).toEqual(dryRun);
    expect(report.freedBytes).toBe(
      fixtures.arm.size + fixtures.arm.blobs[0]!.size + fixtures.arm.blobs[2]!.size + 5,
    );
    expect(await aged.hasBlob(stray.digest)).toBe(false);
    expect(await aged.getManifest('test/app', fixtures.arm.digest)).toBeNull();
    expect(await aged.hasBlob(fixtures.base.blobs[1]!.digest)).toBe(true);
    expect(await aged.check({ verifyBlobContent: true })).toEqual([]);
  });

  it('pins keep untagged manifests until unpinned', async () => {
    const store = await openStore({ gcGracePeriodMs: hour, collectAfterDelete: false });
    await put(store, fixtures.arm, fixtures.arm.digest);
    await store.pin('satellite', 'test/app', fixtures.arm.digest);
    await ageEverything(store, 2 * hour);
    const aged = await OciStore.open(store.root, { gcGracePeriodMs: hour });
    expect((await aged.collectGarbage()).removedManifests).toBe(0);
    await aged.unpin('satellite', 'test/app', fixtures.arm.digest);
    expect((await aged.collectGarbage()).removedManifests).toBe(1);
    expect(await aged.listRepositories()).toEqual([]);
  });

  it('deleting a tag collects its manifest after the grace period', async () => {
    const store = await openStore({ gcGracePeriodMs: 0 });
    await put(store, fixtures.base);
    await store.deleteTag('test/base', '1');
    expect(await store.listRepositories()).toEqual([]);
    expect(await store.usage()).toEqual({ bytes: 0, blobs: 0 });
  });

  it('deleteBlob refuses a blob in use', async () => {
    const store = await openStore();
    await put(store, fixtures.base);
    await expect(store.deleteBlob(fixtures.base.blobs[1]!.digest)).rejects.toMatchObject({
      code: 'MANIFEST_REFERENCED',
    });
    const stray = await store.putBlob(Readable.from([Buffer.from('stray')]));
    await store.deleteBlob(stray.digest);
    expect(await store.hasBlob(stray.digest)).toBe(false);
  });
});
