// The fleet end to end with real processes: two Ground Control replicas on one PostgreSQL
// database, the Harbor test double in front of a token-mode docker-registry 2.8 as the upstream,
// and two satellites (embedded registry, external docker-registry). The scenarios run in order
// and build on each other, because they share the upstream and Ground Control.
import { buildTestImages, startRegistry } from '@edge/testkit';
import type { RegistryHandle, TestImages } from '@edge/testkit';
import { startHarborDouble } from '@edge/testkit/harbor';
import type { HarborDouble } from '@edge/testkit/harbor';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createDatabase,
  createGroundControlReplica,
  digestOf,
  loginOperator,
  newEncryptionKey,
  pushImage,
  rawDigest,
  requestJson,
  startSatellite,
  waitUntil,
} from './harness.js';
import type {
  GroundControlReplica,
  Operator,
  SatelliteProcess,
  TestDatabaseHandle,
} from './harness.js';
import { manifestStatus, requestPullToken, requestShortLivedPullToken } from './registry-tokens.js';

/** Lifetime of upstream registry tokens, in s; short so that revoked access ends quickly. */
const TOKEN_TTL_SECONDS = 5;
/** Lifetime, as the registry counts it, of a token kept across an access change, in s. */
const HELD_TOKEN_LIFETIME_SECONDS = 10;
/** Time allowed for a site to reach a new desired state, in ms. */
const CONVERGE_TIMEOUT_MS = 60_000;
/** Time allowed for a satellite to reconnect, in ms, because its backoff reaches 60 s. */
const RECONNECT_TIMEOUT_MS = 90_000;
/** How long Ground Control stays down in the outage scenario, in ms. */
const OUTAGE_MS = 5_000;

interface SatelliteView {
  desiredRevision: number;
  state: string;
}

describe('fleet with two replicas and two sites', () => {
  let images: TestImages;
  let harbor: HarborDouble;
  let upstream: RegistryHandle;
  let siteRegistry: RegistryHandle;
  let database: TestDatabaseHandle;
  let replicas: GroundControlReplica[];
  let operator: Operator;
  let embedded: SatelliteProcess;
  let external: SatelliteProcess;
  const cleanups: (() => Promise<void>)[] = [];

  const admin = () => harbor.admin;
  const sites = () => [embedded, external];
  const upstreamDigest = (reference: string) => rawDigest(upstream.host, reference, admin());
  const siteDigest = (site: SatelliteProcess, reference: string) =>
    rawDigest(site.registryHost, reference, site.registryCredentials);
  const isAbsent = async (site: SatelliteProcess, reference: string) =>
    siteDigest(site, reference).then(
      () => false,
      () => true,
    );

  async function waitInSync(site: SatelliteProcess): Promise<void> {
    const { desiredRevision } = await operator.send<SatelliteView>(
      'GET',
      `/satellites/${site.name}`,
    );
    await waitUntil(
      `${site.name} in sync at revision ${desiredRevision}`,
      async () => {
        const status = await site.status();
        return status.phase === 'in-sync' && status.appliedRevision >= desiredRevision;
      },
      CONVERGE_TIMEOUT_MS,
    );
  }

  /** Polls the fleet view until its categories equal `expected`, and returns the last view. */
  async function waitForFleet(expected: Record<string, string>): Promise<Record<string, string>> {
    let categories: Record<string, string> = {};
    await waitUntil(
      `fleet categories ${JSON.stringify(expected)}`,
      async () => {
        const fleet = await operator.send<{ items: { name: string; category: string }[] }>(
          'GET',
          '/fleet',
        );
        categories = Object.fromEntries(fleet.items.map((item) => [item.name, item.category]));
        return JSON.stringify(categories) === JSON.stringify(expected);
      },
      CONVERGE_TIMEOUT_MS,
    ).catch(() => undefined);
    return categories;
  }

  beforeAll(async () => {
    [images, harbor, siteRegistry, database] = await Promise.all([
      buildTestImages({ largeLayerMiB: 1 }),
      startHarborDouble({
        projects: ['alpha', 'beta', 'gamma'],
        registry: { tokenTtlSeconds: TOKEN_TTL_SECONDS },
      }),
      startRegistry({ auth: 'basic' }),
      createDatabase(),
    ]);
    cleanups.push(
      () => harbor.stop(),
      () => siteRegistry.stop(),
      () => database.drop(),
    );
    if (!harbor.registry) throw new Error('the Harbor double started without its registry');
    upstream = harbor.registry;
    await Promise.all([
      pushImage(images, 'app-a:1', upstream.host, 'alpha/app-a:1', admin()),
      pushImage(images, 'app-b:1', upstream.host, 'beta/app-b:1', admin()),
      pushImage(images, 'base:1', upstream.host, 'gamma/base:1', admin()),
    ]);

    const key = newEncryptionKey();
    replicas = await Promise.all([
      createGroundControlReplica(database.url, key),
      createGroundControlReplica(database.url, key),
    ]);
    for (const replica of replicas) cleanups.push(() => replica.stop());
    // Both replicas start at once, so the migration lock decides which one migrates.
    await Promise.all(replicas.map((replica) => replica.start()));
    operator = await loginOperator(replicas[0]!.url);
  }, 180_000);

  afterAll(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
  }, 120_000);

  it('replicates two projects to both sites', async () => {
    await operator.send('POST', '/registries', {
      name: 'harbor',
      kind: 'harbor',
      url: upstream.url,
      apiUrl: harbor.url,
      credential: admin(),
    });
    await operator.send('POST', '/configs', {
      name: 'fast',
      // Ground Control calls a site stale after three poll intervals without contact, so the
      // poll interval of 5 s leaves room for a busy 2-core machine.
      settings: {
        pollIntervalSeconds: 5,
        heartbeatIntervalSeconds: 2,
        removalGracePeriodSeconds: 0,
      },
    });
    await operator.send('POST', '/groups', {
      name: 'apps',
      selections: [
        { registry: 'harbor', repository: 'alpha/app-a', tag: '1' },
        { registry: 'harbor', repository: 'beta/app-b', tag: '1' },
      ],
    });
    await operator.send('POST', '/groups', {
      name: 'tools',
      selections: [{ registry: 'harbor', repository: 'gamma/base', tag: '1' }],
    });
    const joinTokens: string[] = [];
    for (const name of ['site-embedded', 'site-external']) {
      const created = await operator.send<{ joinToken: { token: string } }>('POST', '/satellites', {
        name,
        groups: ['apps', 'tools'],
        config: 'fast',
      });
      joinTokens.push(created.joinToken.token);
    }
    // Each site talks to its own replica, so changes must cross replicas through PostgreSQL.
    embedded = await startSatellite({
      name: 'site-embedded',
      groundControlUrl: replicas[0]!.url,
      joinToken: joinTokens[0]!,
    });
    cleanups.push(() => embedded.stop());
    external = await startSatellite({
      name: 'site-external',
      groundControlUrl: replicas[1]!.url,
      joinToken: joinTokens[1]!,
      external: {
        url: siteRegistry.url,
        host: siteRegistry.host,
        username: siteRegistry.username ?? '',
        password: siteRegistry.password ?? '',
      },
    });
    cleanups.push(() => external.stop());

    for (const site of sites()) await waitInSync(site);
    const expected: [string, string][] = [
      ['alpha/app-a:1', digestOf(images, 'app-a:1')],
      ['beta/app-b:1', digestOf(images, 'app-b:1')],
      ['gamma/base:1', digestOf(images, 'base:1')],
    ];
    for (const [reference, digest] of expected) {
      expect({ reference, upstream: await upstreamDigest(reference) }).toEqual({
        reference,
        upstream: digest,
      });
      for (const site of sites()) {
        expect({ site: site.name, reference, digest: await siteDigest(site, reference) }).toEqual({
          site: site.name,
          reference,
          digest,
        });
      }
    }
    const robots = harbor.listRobots();
    expect(robots).toHaveLength(2);
  }, 240_000);

  it('follows a moved tag on both sites', async () => {
    const oldDigest = digestOf(images, 'app-a:1');
    const newDigest = digestOf(images, 'app-a:2');
    await pushImage(images, 'app-a:2', upstream.host, 'alpha/app-a:1', admin());
    expect(await upstreamDigest('alpha/app-a:1')).toBe(newDigest);

    await operator.send('POST', '/groups/apps/resolve');
    for (const site of sites()) {
      await waitUntil(
        `${site.name} serving the moved tag`,
        async () => (await siteDigest(site, 'alpha/app-a:1')) === newDigest,
        CONVERGE_TIMEOUT_MS,
      );
      await waitUntil(
        `${site.name} removing ${oldDigest}`,
        () => isAbsent(site, `alpha/app-a@${oldDigest}`),
        CONVERGE_TIMEOUT_MS,
      );
    }
    for (const site of sites()) {
      expect(await siteDigest(site, 'alpha/app-a:1')).toBe(newDigest);
      expect(await isAbsent(site, `alpha/app-a@${oldDigest}`)).toBe(true);
    }
  }, 180_000);

  it('keeps serving while Ground Control is down', async () => {
    await Promise.all(replicas.map((replica) => replica.stop()));
    for (const site of sites()) {
      await waitUntil(
        `${site.name} noticing the outage`,
        async () => (await site.status()).groundControl.reachable === false,
        RECONNECT_TIMEOUT_MS,
      );
    }
    await new Promise((done) => setTimeout(done, OUTAGE_MS));
    for (const site of sites()) {
      expect(await siteDigest(site, 'alpha/app-a:1')).toBe(digestOf(images, 'app-a:2'));
      expect(await siteDigest(site, 'beta/app-b:1')).toBe(digestOf(images, 'app-b:1'));
    }

    const restartedAt = Date.now();
    await Promise.all(replicas.map((replica) => replica.start()));
    // Sessions live in the database, so the login from before the outage still works.
    for (const site of sites()) {
      const report = await waitUntil(
        `a status report from ${site.name} after the restart`,
        async () => {
          const status = await operator.send<{ receivedAt: string | null }>(
            'GET',
            `/satellites/${site.name}/status`,
          );
          const receivedAt = status.receivedAt === null ? 0 : Date.parse(status.receivedAt);
          return receivedAt >= restartedAt ? status : undefined;
        },
        RECONNECT_TIMEOUT_MS,
      );
      expect(report.receivedAt).not.toBeNull();
      expect((await site.status()).groundControl.reachable).toBe(true);
    }
    const expected = { 'site-embedded': 'in-sync', 'site-external': 'in-sync' };
    expect(await waitForFleet(expected)).toEqual(expected);
  }, 240_000);

  it('drops a project after a site leaves its group', async () => {
    const leaving = external;
    const staying = embedded;
    const baseDigest = digestOf(images, 'base:1');
    const leavingCredential = await leaving.upstreamCredential();
    const stayingCredential = await staying.upstreamCredential();
    expect(await rawDigest(upstream.host, 'gamma/base:1', leavingCredential)).toBe(baseDigest);
    const heldToken = await requestShortLivedPullToken(
      upstream,
      leavingCredential,
      'gamma/base',
      HELD_TOKEN_LIFETIME_SECONDS,
      TOKEN_TTL_SECONDS,
    );

    await operator.send('PATCH', `/satellites/${leaving.name}`, { groups: ['apps'] });
    // A token issued before the change works until it expires, as with Harbor.
    expect(await manifestStatus(upstream, heldToken, 'gamma/base', '1')).toBe(200);

    await waitUntil(
      `${leaving.name} removing gamma/base`,
      () => isAbsent(leaving, `gamma/base@${baseDigest}`),
      CONVERGE_TIMEOUT_MS,
    );
    await waitUntil(
      'the held token to expire',
      async () => (await manifestStatus(upstream, heldToken, 'gamma/base', '1')) === 401,
      CONVERGE_TIMEOUT_MS,
    );
    // A fresh token for the left project grants nothing, so the registry rejects the pull.
    await expect(rawDigest(upstream.host, 'gamma/base:1', leavingCredential)).rejects.toThrow();
    const freshToken = await requestPullToken(upstream, leavingCredential, 'gamma/base');
    expect(freshToken).toBeDefined();
    expect(await manifestStatus(upstream, freshToken ?? '', 'gamma/base', '1')).toBe(401);
    // The projects of the remaining group stay readable.
    expect(await rawDigest(upstream.host, 'alpha/app-a:1', leavingCredential)).toBe(
      digestOf(images, 'app-a:2'),
    );
    expect(await siteDigest(leaving, 'beta/app-b:1')).toBe(digestOf(images, 'app-b:1'));

    // The other site keeps the project, its copy and its access.
    expect(await siteDigest(staying, 'gamma/base:1')).toBe(baseDigest);
    expect(await rawDigest(upstream.host, 'gamma/base:1', stayingCredential)).toBe(baseDigest);
    await waitInSync(leaving);
    await waitInSync(staying);
  }, 180_000);

  it('cuts off a revoked site but keeps its copies', async () => {
    const revoked = embedded;
    const credential = await revoked.upstreamCredential();
    const heldToken = await requestShortLivedPullToken(
      upstream,
      credential,
      'alpha/app-a',
      HELD_TOKEN_LIFETIME_SECONDS,
      TOKEN_TTL_SECONDS,
    );

    await operator.send('POST', `/satellites/${revoked.name}/revoke`);
    expect(await manifestStatus(upstream, heldToken, 'alpha/app-a', '1')).toBe(200);

    // Both replicas reject the satellite's state requests right away.
    const jwt = await revoked.signJwt();
    for (const replica of replicas) {
      const state = await requestJson<{ error?: { code?: string } }>(
        `${replica.url}/satellite/v1/state`,
        { token: jwt },
      );
      expect({ replica: replica.url, status: state.status, code: state.body?.error?.code }).toEqual(
        { replica: replica.url, status: 403, code: 'SATELLITE_REVOKED' },
      );
    }
    const view = await operator.send<SatelliteView>('GET', `/satellites/${revoked.name}`);
    expect(view.state).toBe('revoked');

    // Upstream pulls stop once the token held from before the revoke expires.
    await waitUntil(
      'the held token to expire',
      async () => (await manifestStatus(upstream, heldToken, 'alpha/app-a', '1')) === 401,
      CONVERGE_TIMEOUT_MS,
    );
    expect(await requestPullToken(upstream, credential, 'alpha/app-a')).toBeUndefined();
    await expect(rawDigest(upstream.host, 'alpha/app-a:1', credential)).rejects.toThrow();

    // The site keeps serving its copies and reports that it is revoked.
    await waitUntil(
      `${revoked.name} reporting the revocation`,
      async () => (await revoked.status()).revoked,
      CONVERGE_TIMEOUT_MS,
    );
    expect(await siteDigest(revoked, 'alpha/app-a:1')).toBe(digestOf(images, 'app-a:2'));
    expect(await siteDigest(revoked, 'beta/app-b:1')).toBe(digestOf(images, 'app-b:1'));
    expect(await siteDigest(revoked, 'gamma/base:1')).toBe(digestOf(images, 'base:1'));

    // The other site is not affected.
    expect(
      await rawDigest(upstream.host, 'alpha/app-a:1', await external.upstreamCredential()),
    ).toBe(digestOf(images, 'app-a:2'));
    const expected = { 'site-embedded': 'revoked', 'site-external': 'in-sync' };
    expect(await waitForFleet(expected)).toEqual(expected);
  }, 180_000);
});
