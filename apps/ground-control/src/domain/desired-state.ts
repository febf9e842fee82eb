import { and, eq, inArray, isNotNull } from 'drizzle-orm';
import {
  DEFAULT_SATELLITE_CONFIG,
  PROTOCOL_VERSION,
  type DesiredArtifact,
  type DesiredState,
  type DesiredUpstream,
  type Referrer,
} from '@edge/contract';
import type { SecretBox } from '../crypto/secrets.js';
import type { Db } from '../db/database.js';
import {
  registries,
  robotAccounts,
  satelliteGroups,
  satellites,
  selections,
} from '../db/schema.js';
import { AppError } from '../errors.js';
import { effectiveConfigs } from './effective-config.js';

export function localRepositoryName(prefix: string | null, repository: string): string {
  return prefix === null || prefix === '' ? repository : `${prefix}/${repository}`;
}

function mergePlatforms(a: string[] | null, b: string[] | null): string[] | null {
  if (a === null || b === null) return null;
  return [...new Set([...a, ...b])].sort();
}

function mergeReferrers(a: Referrer[], b: Referrer[]): Referrer[] {
  const byDigest = new Map(a.map((referrer) => [referrer.digest, referrer]));
  for (const referrer of b) byDigest.set(referrer.digest, referrer);
  return [...byDigest.values()].sort((x, y) => x.digest.localeCompare(y.digest));
}

type RegistryRow = typeof registries.$inferSelect;
type RobotRow = typeof robotAccounts.$inferSelect;

/**
 * Builds the desired state of one satellite: the union of its groups' resolved selections, one
 * upstream entry per registry they use with the credential for it, and the effective config.
 * Selections that never resolved are left out, so a satellite never receives a tag without a
 * digest. Run it inside one repeatable-read transaction so revision and content come from the
 * same snapshot.
 */
export async function buildDesiredState(
  db: Db,
  secrets: SecretBox,
  satelliteId: string,
): Promise<DesiredState> {
  const state = (await buildDesiredStates(db, secrets, [satelliteId])).get(satelliteId);
  if (state === undefined) {
    throw new AppError('SATELLITE_TOKEN_INVALID', 'satellite no longer exists; join again');
  }
  return state;
}

/**
 * Builds the desired states of many satellites with six queries in all, however many ids there
 * are, so a change that wakes thousands of long polls costs a few batches. Ids of satellites
 * that no longer exist are missing from the result.
 */
export async function buildDesiredStates(
  db: Db,
  secrets: SecretBox,
  satelliteIds: readonly string[],
): Promise<Map<string, DesiredState>> {
  const result = new Map<string, DesiredState>();
  if (satelliteIds.length === 0) return result;
  const ids = [...new Set(satelliteIds)];
  const satelliteRows = await db
    .select({
      id: satellites.id,
      configId: satellites.configId,
      revision: satellites.desiredRevision,
    })
    .from(satellites)
    .where(inArray(satellites.id, ids));
  if (satelliteRows.length === 0) return result;
  const foundIds = satelliteRows.map((row) => row.id);

  const rows = await db
    .select({
      satelliteId: satelliteGroups.satelliteId,
      registryId: selections.registryId,
      repository: selections.repository,
      tag: selections.tag,
      platforms: selections.platforms,
      digest: selections.resolvedDigest,
      mediaType: selections.resolvedMediaType,
      size: selections.resolvedSize,
      referrers: selections.referrers,
      includeReferrers: selections.includeReferrers,
    })
    .from(selections)
    .innerJoin(satelliteGroups, eq(satelliteGroups.groupId, selections.groupId))
    .where(
      and(inArray(satelliteGroups.satelliteId, foundIds), isNotNull(selections.resolvedDigest)),
    );

  const registryIds = [...new Set(rows.map((row) => row.registryId))];
  const registryRows =
    registryIds.length === 0
      ? []
      : await db.select().from(registries).where(inArray(registries.id, registryIds));
  const robots =
    registryIds.length === 0
      ? []
      : await db
          .select()
          .from(robotAccounts)
          .where(
            and(
              inArray(robotAccounts.satelliteId, foundIds),
              inArray(robotAccounts.registryId, registryIds),
            ),
          );
  const configsById = await effectiveConfigs(db, satelliteRows);

  const registriesById = new Map(registryRows.map((registry) => [registry.id, registry]));
  const rowsBySatellite = groupBy(rows, (row) => row.satelliteId);
  const robotsBySatellite = groupBy(robots, (robot) => robot.satelliteId);
  for (const satellite of satelliteRows) {
    const own = rowsBySatellite.get(satellite.id) ?? [];
    const usedRegistries = [...new Set(own.map((row) => row.registryId))]
      .map((id) => registriesById.get(id))
      .filter((registry): registry is RegistryRow => registry !== undefined);
    result.set(satellite.id, {
      protocolVersion: PROTOCOL_VERSION,
      satelliteId: satellite.id,
      revision: satellite.revision,
      upstreams: upstreamsOf(usedRegistries, robotsBySatellite.get(satellite.id) ?? [], secrets),
      artifacts: artifactsOf(own, registriesById),
      config: configsById.get(satellite.id) ?? { ...DEFAULT_SATELLITE_CONFIG },
    });
  }
  return result;
}

function groupBy<T>(items: readonly T[], key: (item: T) => string): Map<string, T[]> {
  const groups = new Map<string, T[]>();
  for (const item of items) {
    const list = groups.get(key(item));
    if (list === undefined) groups.set(key(item), [item]);
    else list.push(item);
  }
  return groups;
}

function upstreamsOf(
  registryRows: readonly RegistryRow[],
  robots: readonly RobotRow[],
  secrets: SecretBox,
): DesiredUpstream[] {
  return registryRows
    .map((registry): DesiredUpstream => {
      const upstream: DesiredUpstream = {
        id: registry.id,
        url: registry.satelliteUrl ?? registry.url,
        credential: null,
      };
      if (registry.caBundle !== null) upstream.caBundle = registry.caBundle;
      if (registry.insecure) upstream.insecure = true;
      if (registry.localPrefix !== null) upstream.localPrefix = registry.localPrefix;
      if (registry.kind === 'oci') {
        const username = registry.pullUsername ?? registry.credentialUsername;
        const secret =
          registry.pullUsername !== null ? registry.pullSecret : registry.credentialSecret;
        if (username !== null && secret !== null) {
          upstream.credential = { username, password: secrets.decrypt(secret), expiresAt: null };
        }
      } else {
        const robot = robots.find((entry) => entry.registryId === registry.id);
        if (robot !== undefined) {
          upstream.credential = {
            username: robot.robotName,
            password: secrets.decrypt(robot.secret),
            expiresAt: robot.expiresAt?.toISOString() ?? null,
          };
        }
      }
      return upstream;
    })
    .sort((a, b) => a.id.localeCompare(b.id));
}

interface SelectionRow {
  registryId: string;
  repository: string;
  tag: string | null;
  platforms: string[] | null;
  digest: string | null;
  mediaType: string | null;
  size: number | null;
  referrers: Referrer[];
  includeReferrers: boolean;
}

function artifactsOf(
  rows: readonly SelectionRow[],
  registriesById: ReadonlyMap<string, RegistryRow>,
): DesiredArtifact[] {
  const artifacts = new Map<string, DesiredArtifact>();
  for (const row of rows) {
    const localRepository = localRepositoryName(
      registriesById.get(row.registryId)?.localPrefix ?? null,
      row.repository,
    );
    const key = `${localRepository}\n${row.tag ?? ''}\n${row.digest}\n${row.registryId}`;
    const referrers = row.includeReferrers ? row.referrers : [];
    const existing = artifacts.get(key);
    if (existing !== undefined) {
      existing.platforms = mergePlatforms(existing.platforms, row.platforms ?? null);
      existing.referrers = mergeReferrers(existing.referrers, referrers);
      continue;
    }
    artifacts.set(key, {
      upstream: row.registryId,
      repository: row.repository,
      tag: row.tag,
      digest: row.digest!,
      mediaType: row.mediaType ?? '',
      size: row.size ?? 0,
      platforms: row.platforms === null ? null : [...row.platforms].sort(),
      referrers: mergeReferrers([], referrers),
      localRepository,
    });
  }
  return [...artifacts.keys()].sort().map((key) => artifacts.get(key)!);
}
