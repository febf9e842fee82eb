import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { DEFAULT_SATELLITE_CONFIG } from '@edge/contract';
import type { DesiredState } from '@edge/contract';
import { digestOf } from '@edge/oci';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { dataDirLayout } from '../data-dir.js';
import { PlacementStore } from '../placements.js';
import { EmbeddedRegistry } from './embedded-registry.js';
import { removeUnassigned } from './removal.js';

const logger = pino({ level: 'silent' });
const emptyState: DesiredState = {
  protocolVersion: 1,
  satelliteId: '00000000-0000-4000-8000-000000000001',
  revision: 2,
  upstreams: [],
  artifacts: [],
  config: DEFAULT_SATELLITE_CONFIG,
};

/** Stores a one-layer image in the embedded store and returns its manifest digest. */
async function putImage(local: EmbeddedRegistry, repository: string, tag: string, payload: string) {
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', payload }));
  const layer = Buffer.from(payload);
  for (const blob of [config, layer]) await local.store.putBlob(Readable.from([blob]));
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: {
        mediaType: 'application/vnd.oci.image.config.v1+json',
        digest: digestOf(config),
        size: config.length,
      },
      layers: [
        {
          mediaType: 'application/vnd.oci.image.layer.v1.tar',
          digest: digestOf(layer),
          size: layer.length,
        },
      ],
    }),
  );
  const mediaType = 'application/vnd.oci.image.manifest.v1+json';
  await local.putManifest(repository, tag, { bytes: manifest, mediaType });
  return digestOf(manifest);
}

describe('removeUnassigned', () => {
  let folder = '';
  let local: EmbeddedRegistry;
  let placements: PlacementStore;

  const place = async (repository: string, digest: string, tags: string[]) =>
    placements.upsert({
      localRepository: repository,
      digest,
      tags,
      childDigests: [],
      referrerDigests: [],
      reduced: false,
      placedAt: new Date(0).toISOString(),
      unassignedSince: null,
    });

  beforeEach(async () => {
    folder = await mkdtemp(join(tmpdir(), 'satellite-removal-'));
    const layout = dataDirLayout(folder);
    local = await EmbeddedRegistry.open(layout.storeDir);
    placements = await PlacementStore.open(layout);
  });
  afterEach(async () => {
    await local.close();
    await rm(folder, { recursive: true, force: true });
  });

  it('waits for the grace period, then removes and collects', async () => {
    const digest = await putImage(local, 'site/app', '1', 'placed');
    await place('site/app', digest, ['1']);
    const input = {
      state: emptyState,
      local,
      placements,
      gracePeriodMs: 60_000,
      logger,
      collect: true,
    };

    const first = await removeUnassigned({ ...input, now: 1_000_000 });
    expect(first.removed).toBe(0);
    expect(first.nextRemovalAt).toBe(1_060_000);
    expect(await local.hasManifest('site/app', digest)).toBe(true);

    const early = await removeUnassigned({ ...input, now: 1_059_000 });
    expect(early.removed).toBe(0);
    expect(await local.hasManifest('site/app', digest)).toBe(true);

    const due = await removeUnassigned({ ...input, now: 1_060_000 });
    expect(due.removed).toBe(1);
    expect(due.collected).toBe(true);
    expect(due.freedBytes).toBeGreaterThan(0);
    expect(await local.hasManifest('site/app', digest)).toBe(false);
    expect(placements.all()).toEqual([]);
  });

  it('leaves content it did not place alone', async () => {
    const foreign = await putImage(local, 'site/other', '1', 'not placed');
    const result = await removeUnassigned({
      state: emptyState,
      local,
      placements,
      gracePeriodMs: 0,
      logger,
      collect: true,
    });
    expect(result.removed).toBe(0);
    expect(await local.hasManifest('site/other', foreign)).toBe(true);
  });

  it('keeps a placed digest that carries a foreign tag', async () => {
    const digest = await putImage(local, 'site/app', '1', 'shared');
    await local.setTag('site/app', 'pinned-by-operator', digest);
    await place('site/app', digest, ['1']);
    const result = await removeUnassigned({
      state: emptyState,
      local,
      placements,
      gracePeriodMs: 0,
      logger,
      collect: true,
    });
    expect(result.removed).toBe(0);
    expect(result.kept).toBe(1);
    expect(await local.hasManifest('site/app', digest)).toBe(true);
  });

  it('clears the grace clock when the artifact comes back', async () => {
    const digest = await putImage(local, 'site/app', '1', 'returns');
    await place('site/app', digest, ['1']);
    const base = { local, placements, gracePeriodMs: 60_000, logger, collect: true };
    await removeUnassigned({ ...base, state: emptyState, now: 0 });
    expect(placements.get('site/app', digest)?.unassignedSince).not.toBeNull();
    const back: DesiredState = {
      ...emptyState,
      artifacts: [
        {
          upstream: '00000000-0000-4000-8000-000000000002',
          repository: 'app',
          tag: '1',
          digest,
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          size: 1,
          platforms: null,
          referrers: [],
          localRepository: 'site/app',
        },
      ],
    };
    await removeUnassigned({ ...base, state: back, now: 120_000 });
    expect(placements.get('site/app', digest)?.unassignedSince).toBeNull();
    expect(await local.hasManifest('site/app', digest)).toBe(true);
  });
});
