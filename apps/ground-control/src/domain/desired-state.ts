import { and, eq, inArray, isNotNull } from 'drizzle-orm';
import {
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
import { effectiveConfig } from './effective-config.js';

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

/**
 * Builds the desired state of one satellite: the union of its groups' resolved selections, one
 * upstream entry per registry they use with the credential for it, and the effective config.
 * Selections that never resolved are left out, so a satellite never receives a tag without a
 * digest. Run it inside one transaction so revision and content come from the same snapshot.
 */
export async function buildDesiredState(
  db: Db,
  secrets: SecretBox,
  satelliteId: string,
): Promise<DesiredState> {
  const [satellite] = await db
    .select({
      id: satellites.id,
      configId: satellites.configId,
      revision: satellites.desiredRevision,
    })
    .from(satellites)
    .where(eq(satellites.id, satelliteId));
  if (satellite === undefined) {
    throw new AppError('SATELLITE_TOKEN_INVALID', 'satellite no longer exists; join again');
  }

  const rows = await db
    .select({
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
    .where(and(eq(satelliteGroups.satelliteId, satelliteId), isNotNull(selections.resolvedDigest)));

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
              eq(robotAccounts.satelliteId, satelliteId),
              inArray(robotAccounts.registryId, registryIds),
            ),
          );

  const upstreams: DesiredUpstream[] = registryRows
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

  const prefixes = new Map(registryRows.map((registry) => [registry.id, registry.localPrefix]));
  const artifacts = new Map<string, DesiredArtifact>();
  for (const row of rows) {
    const localRepository = localRepositoryName(
      prefixes.get(row.registryId) ?? null,
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

  return {
    protocolVersion: PROTOCOL_VERSION,
    satelliteId,
    revision: satellite.revision,
    upstreams,
    artifacts: [...artifacts.keys()].sort().map((key) => artifacts.get(key)!),
    config: await effectiveConfig(db, satellite),
  };
}
