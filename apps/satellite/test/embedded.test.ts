// End-to-end runs of the built satellite against the built Ground Control (PGlite), two real
// upstream docker-registry processes (basic and token auth) and the embedded local registry.
// The cases share one setup and run in order, each starting from the state the previous left.
import { access, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { buildTestImages, pushTestImages, runCommand, startRegistry } from '@edge/testkit';
import type { RegistryHandle, TestImages } from '@edge/testkit';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  blobsOf,
  newDataDir,
  rawDigest,
  startGroundControl,
  startSatellite,
  waitFor,
} from './harness.js';
import type { GroundControlHandle, SatelliteHandle } from './harness.js';

/** Small large:1 layer: the 200 MiB case has its own file. */
const LARGE_LAYER_MIB = 4;
const PUSHER_PASSWORD = 'pusher-password';
const OLD_ROBOT_PASSWORD = 'old-robot-password';
const NEW_ROBOT_PASSWORD = 'new-robot-password';

describe('satellite with the embedded registry', () => {
  let images: TestImages;
  let upstreamA: RegistryHandle;
  let upstreamB: RegistryHandle;
  let gc: GroundControlHandle;
  let satellite: SatelliteHandle;
  let dataDir: string;
  let joinToken: string;
  const cleanups: (() => Promise<void>)[] = [];
  // Users the token server of upstream B accepts; the rotation test removes the old one.
  const validUsers = new Map([
    ['pusher', PUSHER_PASSWORD],
    ['old-robot', OLD_ROBOT_PASSWORD],
    ['new-robot', NEW_ROBOT_PASSWORD],
  ]);
  const tokensIssued = new Map<string, number>();

  const selectionsA = [
    { registry: 'up-a', repository: 'test/base', tag: '1' },
    { registry: 'up-a', repository: 'test/app-a', tag: '1', includeReferrers: true },
    { registry: 'up-a', repository: 'test/app-a', tag: '2' },
    { registry: 'up-a', repository: 'test/docker', tag: '1' },
    { registry: 'up-a', repository: 'test/multi', tag: '1' },
    { registry: 'up-a', repository: 'test/large', tag: '1' },
  ];

  const manifestStatus = async (repository: string, reference: string): Promise<number> => {
    const response = await request(
      `${satellite.registryUrl}/v2/${repository}/manifests/${reference}`,
      {
        method: 'HEAD',
        headers: {
          accept:
            'application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json',
        },
      },
    );
    await response.body.dump();
    return response.statusCode;
  };

  const storeHasBlob = (digest: string): Promise<boolean> =>
    access(join(dataDir, 'store/blobs/sha256', digest.replace('sha256:', ''))).then(
      () => true,
      () => false,
    );

  const inSyncAt = async (revision: number): Promise<boolean> => {
    const status = await satellite.status().catch(() => undefined);
    return status?.phase === 'in-sync' && status.appliedRevision >= revision;
  };

  const desiredRevision = async (): Promise<number> =>
    (await gc.api<{ desiredRevision: number }>('GET', '/api/v1/satellites/site-1')).desiredRevision;

  beforeAll(async () => {
    images = await buildTestImages({ largeLayerMiB: LARGE_LAYER_MIB });
    upstreamA = await startRegistry({ auth: 'basic' });
    cleanups.push(() => upstreamA.stop());
    upstreamB = await startRegistry({
      auth: 'token',
      users: { pusher: { password: PUSHER_PASSWORD } },
      tokenAuthorizer: (tokenRequest) => {
        const valid =
          tokenRequest.username !== undefined &&
          validUsers.get(tokenRequest.username) === tokenRequest.password;
        if (!valid || tokenRequest.username === undefined) return Promise.resolve({ ok: false });
        tokensIssued.set(tokenRequest.username, (tokensIssued.get(tokenRequest.username) ?? 0) + 1);
        return Promise.resolve({
          ok: true,
          subject: tokenRequest.username,
          access: tokenRequest.scopes,
        });
      },
    });
    cleanups.push(() => upstreamB.stop());
    await pushTestImages(upstreamA, images);
    await pushTestImages(upstreamB, images, { only: ['app-b:1', 'base:1'] });
    gc = await startGroundControl();
    cleanups.push(() => gc.cleanup());

    await gc.api('POST', '/api/v1/registries', {
      name: 'up-a',
      kind: 'oci',
      url: upstreamA.url,
      credential: { username: upstreamA.username, password: upstreamA.password },
    });
    await gc.api('POST', '/api/v1/registries', {
      name: 'up-b',
      kind: 'oci',
      url: upstreamB.url,
      localPrefix: 'site-b',
      credential: { username: 'pusher', password: PUSHER_PASSWORD },
      pullCredential: { username: 'old-robot', password: OLD_ROBOT_PASSWORD },
    });
    await gc.api('POST', '/api/v1/configs', {
      name: 'fast',
      settings: {
        pollIntervalSeconds: 5,
        heartbeatIntervalSeconds: 5,
        removalGracePeriodSeconds: 0,
      },
    });
    await gc.api('POST', '/api/v1/groups', { name: 'group-a', selections: selectionsA });
    await gc.api('POST', '/api/v1/groups', {
      name: 'group-b',
      selections: [{ registry: 'up-b', repository: 'test/app-b', tag: '1' }],
    });
    const created = await gc.api<{ joinToken: { token: string } }>('POST', '/api/v1/satellites', {
      name: 'site-1',
      groups: ['group-a', 'group-b'],
      config: 'fast',
    });
    joinToken = created.joinToken.token;
    dataDir = await newDataDir();
    satellite = await startSatellite({ dataDir, groundControlUrl: gc.url, token: joinToken });
    cleanups.push(() => satellite.process.stop('SIGKILL'));
  });

  afterAll(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
  });

  it('replicates two upstreams with identical digests', async () => {
    const revision = await desiredRevision();
    await waitFor('the satellite in sync', () => inSyncAt(revision));
    const upstreamCredentials = {
      username: upstreamA.username ?? '',
      password: upstreamA.password ?? '',
    };
    for (const name of ['base:1', 'app-a:1', 'app-a:2', 'docker:1', 'multi:1', 'large:1']) {
      const image = images.images[name];
      if (!image) throw new Error(`test image ${name} missing`);
      const ref = `${image.repository}:${image.tag}`;
      expect({ ref, local: await rawDigest(satellite.registryHost, ref) }).toEqual({
        ref,
        local: image.digest,
      });
      expect({ ref, upstream: await rawDigest(upstreamA.host, ref, upstreamCredentials) }).toEqual({
        ref,
        upstream: image.digest,
      });
    }
    const appB = images.images['app-b:1'];
    expect(await rawDigest(satellite.registryHost, 'site-b/test/app-b:1')).toBe(appB?.digest);
    const signature = images.images['app-a:sig'];
    expect(await rawDigest(satellite.registryHost, `test/app-a@${signature?.digest}`)).toBe(
      signature?.digest,
    );
    // The multi-platform index is copied whole: both children are served by digest.
    expect(await manifestStatus('test/multi', images.images['app-a:1']?.digest ?? '')).toBe(200);
    expect(await manifestStatus('test/multi', images.images['arm64:1']?.digest ?? '')).toBe(200);
  });

  it('reports status to Ground Control', async () => {
    const revision = await desiredRevision();
    const status = await waitFor('an in-sync report in Ground Control', async () => {
      const current = await gc.api<{
        report: {
          phase: string;
          appliedRevision: number;
          artifacts: { state: string; bytesDone: number; bytesTotal: number }[];
        } | null;
      }>('GET', '/api/v1/satellites/site-1/status');
      return current.report?.phase === 'in-sync' && current.report.appliedRevision === revision
        ? current.report
        : undefined;
    });
    expect(status.artifacts).toHaveLength(7);
    for (const artifact of status.artifacts) {
      expect(artifact.state).toBe('present');
      expect(artifact.bytesTotal).toBeGreaterThan(0);
    }
  });

  it('receives a group change by long-poll', async () => {
    const before = await desiredRevision();
    const started = Date.now();
    await gc.api('PUT', '/api/v1/groups/group-a/selections', [
      ...selectionsA,
      { registry: 'up-a', repository: 'test/app-b', tag: '1' },
    ]);
    await waitFor(
      'test/app-b:1 in the embedded registry',
      async () => (await manifestStatus('test/app-b', '1')) === 200,
    );
    // The poll interval is 5 s; a change arriving by long-poll does not wait for it.
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(await desiredRevision()).toBeGreaterThan(before);
  });

  it('uses a rotated upstream credential without restart', async () => {
    expect(tokensIssued.get('old-robot') ?? 0).toBeGreaterThan(0);
    await gc.api('PATCH', '/api/v1/registries/up-b', {
      pullCredential: { username: 'new-robot', password: NEW_ROBOT_PASSWORD },
    });
    validUsers.delete('old-robot');
    // A repository the satellite never pulled needs a new token, which only the new credential gets.
    await gc.api('PUT', '/api/v1/groups/group-b/selections', [
      { registry: 'up-b', repository: 'test/app-b', tag: '1' },
      { registry: 'up-b', repository: 'test/base', tag: '1' },
    ]);
    await waitFor(
      'site-b/test/base:1 in the embedded registry',
      async () => (await manifestStatus('site-b/test/base', '1')) === 200,
    );
    expect(tokensIssued.get('new-robot') ?? 0).toBeGreaterThan(0);
    expect((await satellite.status()).pid).toBe(satellite.process.pid);
  });

  it('follows a moved tag', async () => {
    const appA2 = images.images['app-a:2']?.digest ?? '';
    await runCommand('skopeo', [
      'copy',
      '--preserve-digests',
      '--src-tls-verify=false',
      '--dest-tls-verify=false',
      '--src-creds',
      `${upstreamA.username}:${upstreamA.password}`,
      '--dest-creds',
      `${upstreamA.username}:${upstreamA.password}`,
      `docker://${upstreamA.host}/test/app-a:2`,
      `docker://${upstreamA.host}/test/app-a:1`,
    ]);
    await gc.api('POST', '/api/v1/groups/group-a/resolve');
    const moved = await waitFor(
      'test/app-a:1 moved to the app-a:2 digest',
      async () =>
        (await rawDigest(satellite.registryHost, 'test/app-a:1').catch(() => '')) === appA2,
    );
    expect(moved).toBe(true);
    // The status lists the new resolution, not the old digest beside it. The tag moves in the
    // store before status.json is rewritten, so wait for the new digest to appear there first.
    const tagged = await waitFor('status with the moved tag', async () => {
      const status = await satellite.status();
      const entries = status.artifacts.filter(
        (artifact) => artifact.localRepository === 'test/app-a' && artifact.tag === '1',
      );
      const present = entries.some(
        (artifact) => artifact.digest === appA2 && artifact.state === 'present',
      );
      return present ? entries : undefined;
    });
    expect(tagged.map((artifact) => artifact.digest)).toEqual([appA2]);
  });

  it('removes an unassigned artifact and collects its blobs', async () => {
    const baseDigest = images.images['base:1']?.digest ?? '';
    const large = images.images['large:1']?.digest ?? '';
    const stillAssigned = ['base:1', 'app-a:1', 'app-a:2', 'app-b:1', 'multi:1', 'docker:1'];
    const others = new Set(
      (await Promise.all(stillAssigned.map((name) => blobsOf(images, name)))).flat(),
    );
    const onlyLarge = (await blobsOf(images, 'large:1')).filter((digest) => !others.has(digest));
    expect(onlyLarge.length).toBeGreaterThan(0);
    for (const digest of onlyLarge) expect(await storeHasBlob(digest)).toBe(true);

    await gc.api(
      'PUT',
      '/api/v1/groups/group-a/selections',
      selectionsA.filter((selection) => selection.repository !== 'test/large'),
    );
    await waitFor(
      'test/large removed',
      async () => (await manifestStatus('test/large', large)) === 404,
    );
    expect(await manifestStatus('test/large', '1')).toBe(404);
    // base:1 is still assigned and stays.
    expect(await manifestStatus('test/base', baseDigest)).toBe(200);
    // The manifest goes before the placement record, so the file can lag the registry briefly.
    await waitFor('test/large gone from placements.json', async () => {
      const placements = JSON.parse(await readFile(join(dataDir, 'placements.json'), 'utf8')) as {
        placements: { localRepository: string }[];
      };
      const repositories = placements.placements.map((entry) => entry.localRepository);
      return repositories.includes('test/base') && !repositories.includes('test/large');
    });
    // Garbage collection freed the blobs that only large:1 used.
    await waitFor('blobs of large:1 collected', async () => {
      for (const digest of onlyLarge) if (await storeHasBlob(digest)) return false;
      return true;
    });
  });

  it('restarts without the token and downloads nothing again', async () => {
    await satellite.process.stop('SIGTERM', 30_000);
    const exit = await satellite.process.exited;
    expect(exit.code).toBe(0);
    satellite = await startSatellite({ dataDir, groundControlUrl: gc.url, token: joinToken });
    cleanups.push(() => satellite.process.stop('SIGKILL'));
    const revision = await desiredRevision();
    // status.json of the previous process is in sync too: wait for the new process's own one.
    await waitFor('in sync after restart', async () => {
      const status = await satellite.status();
      return status.pid === satellite.process.pid && (await inSyncAt(revision));
    });
    const lines = satellite.logLines();
    expect(lines.some((line) => String(line.msg).startsWith('join token ignored'))).toBe(true);
    expect(lines.some((line) => line.msg === 'joined Ground Control')).toBe(false);
    const metrics = await (await request(`${satellite.metricsUrl}/metrics`)).body.text();
    expect(metrics).toMatch(/^satellite_downloaded_bytes_total 0$/m);
  });

  it('keeps serving while Ground Control is down, then recovers', async () => {
    await gc.stop();
    await waitFor('Ground Control reported unreachable', async () => {
      const status = await satellite.status();
      return status.groundControl.reachable === false;
    });
    expect(await manifestStatus('test/app-a', '1')).toBe(200);
    // Backoff keeps retrying; it logs once per change of reachability, not once per failure.
    await new Promise((done) => setTimeout(done, 4_000));
    const unreachableLines = satellite
      .logLines()
      .filter((line) => String(line.msg).startsWith('Ground Control unreachable'));
    expect(unreachableLines).toHaveLength(1);
    await gc.start();
    await waitFor('Ground Control reachable again', async () => {
      const status = await satellite.status();
      return status.groundControl.reachable === true;
    });
  });

  it('stops syncing when revoked and keeps serving', async () => {
    await gc.api('POST', '/api/v1/satellites/site-1/revoke');
    const status = await waitFor('revoked status', async () => {
      const current = await satellite.status();
      return current.revoked ? current : undefined;
    });
    expect(status.phase).toBe('revoked');
    expect(await manifestStatus('test/app-a', '1')).toBe(200);
    const lines = satellite.logLines();
    expect(lines.some((line) => String(line.msg).startsWith('satellite revoked'))).toBe(true);
    const rendered = await runCommand('node', [
      join(import.meta.dirname, '../dist/main.js'),
      'status',
      '--data-dir',
      dataDir,
    ]);
    expect(rendered.stdout.toString()).toContain('revoked by Ground Control');
  });
});
