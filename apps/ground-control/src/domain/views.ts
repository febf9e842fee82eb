import type {
  ConfigDocument,
  Group,
  Registry,
  ResolvedSelection,
  Satellite,
  SatellitePhase,
  User,
} from '@edge/contract';
import type { configs, groups, registries, satellites, selections, users } from '../db/schema.js';

// Database rows are never sent as they come: these functions map each row to its API schema.

export function userView(row: typeof users.$inferSelect): User {
  return {
    id: row.id,
    username: row.username,
    role: row.role,
    createdAt: row.createdAt.toISOString(),
    lockedUntil: row.lockedUntil?.toISOString() ?? null,
  };
}

export function registryView(row: typeof registries.$inferSelect): Registry {
  return {
    id: row.id,
    name: row.name,
    kind: row.kind,
    url: row.url,
    apiUrl: row.apiUrl,
    satelliteUrl: row.satelliteUrl ?? row.url,
    caBundle: row.caBundle,
    insecure: row.insecure,
    localPrefix: row.localPrefix,
    credentialUsername: row.credentialUsername,
    hasCredential: row.credentialSecret !== null,
    pullCredentialUsername: row.pullUsername,
    hasPullCredential: row.pullSecret !== null,
    createdAt: row.createdAt.toISOString(),
    updatedAt: row.updatedAt.toISOString(),
  };
}

export function selectionView(
  row: typeof selections.$inferSelect,
  registryName: string,
): ResolvedSelection {
  return {
    registry: registryName,
    repository: row.repository,
    tag: row.tag,
    digest: row.digest,
    platforms: row.platforms ?? null,
    includeReferrers: row.includeReferrers,
    resolved:
      row.resolvedDigest === null || row.resolvedAt === null
        ? null
        : {
            digest: row.resolvedDigest,
            mediaType: row.resolvedMediaType ?? '',
            size: row.resolvedSize ?? 0,
            referrers: row.referrers,
            resolvedAt: row.resolvedAt.toISOString(),
          },
    error: row.errorCode === null ? null : { code: row.errorCode, message: row.errorMessage ?? '' },
  };
}

export function groupView(
  row: typeof groups.$inferSelect,
  configName: string | null,
  selectionViews: ResolvedSelection[],
): Group {
  return {
    id: row.id,
    name: row.name,
    description: row.description,
    priority: row.priority,
    config: configName,
    selections: selectionViews,
    createdAt: row.createdAt.toISOString(),
    updatedAt: row.updatedAt.toISOString(),
  };
}

export function configView(row: typeof configs.$inferSelect): ConfigDocument {
  return {
    id: row.id,
    name: row.name,
    description: row.description,
    settings: row.settings as ConfigDocument['settings'],
    createdAt: row.createdAt.toISOString(),
    updatedAt: row.updatedAt.toISOString(),
  };
}

export function satelliteView(
  row: typeof satellites.$inferSelect,
  extra: {
    groups: string[];
    config: string | null;
    appliedRevision: number | null;
    phase: string | null;
    receivedAt: Date | null;
  },
): Satellite {
  const lastSeen = latest(row.lastSeenAt, extra.receivedAt);
  return {
    id: row.id,
    name: row.name,
    labels: row.labels,
    groups: extra.groups,
    config: extra.config,
    state: row.state,
    hostname: row.hostname,
    version: row.version,
    joinedAt: row.joinedAt?.toISOString() ?? null,
    lastSeenAt: lastSeen?.toISOString() ?? null,
    revokedAt: row.revokedAt?.toISOString() ?? null,
    desiredRevision: row.desiredRevision,
    appliedRevision: extra.appliedRevision,
    phase: extra.phase as SatellitePhase | null,
    createdAt: row.createdAt.toISOString(),
  };
}

export function latest(a: Date | null, b: Date | null): Date | null {
  if (a === null) return b;
  if (b === null) return a;
  return a.getTime() >= b.getTime() ? a : b;
}
