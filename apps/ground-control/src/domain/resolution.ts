import { asc, eq, inArray } from 'drizzle-orm';
import type { AppContext } from '../context.js';
import { registries, selections, type ReferrerRow } from '../db/schema.js';
import { UpstreamError, type UpstreamRegistry } from '../upstream/client.js';
import { bumpRevisions } from './revisions.js';

/** Selections resolved at once per group; small, so one group cannot flood its upstream. */
const RESOLVE_CONCURRENCY = 4;

export function upstreamOf(
  context: AppContext,
  registry: typeof registries.$inferSelect,
): UpstreamRegistry {
  return {
    url: registry.url,
    caBundle: registry.caBundle,
    insecure: registry.insecure,
    credential:
      registry.credentialUsername !== null && registry.credentialSecret !== null
        ? {
            username: registry.credentialUsername,
            password: context.secrets.decrypt(registry.credentialSecret),
          }
        : null,
  };
}

type SelectionRow = typeof selections.$inferSelect;

interface Outcome {
  id: string;
  update: Partial<SelectionRow>;
  changed: boolean;
}

function sameReferrers(a: ReferrerRow[], b: ReferrerRow[]): boolean {
  const key = (list: ReferrerRow[]) =>
    list
      .map((referrer) => referrer.digest)
      .sort()
      .join(',');
  return key(a) === key(b);
}

async function resolveOne(
  context: AppContext,
  row: SelectionRow,
  upstream: UpstreamRegistry,
): Promise<Outcome> {
  const now = new Date(context.now());
  try {
    const reference = row.tag ?? row.digest!;
    const manifest = await context.upstream.headManifest(upstream, row.repository, reference);
    if (row.digest !== null && manifest.digest !== row.digest) {
      throw new UpstreamError(
        'UPSTREAM_BAD_RESPONSE',
        `upstream returned digest ${manifest.digest} for ${row.repository}@${row.digest}`,
      );
    }
    const referrers = row.includeReferrers
      ? (await context.upstream.referrers(upstream, row.repository, manifest.digest)).map(
          (referrer): ReferrerRow => ({ ...referrer }),
        )
      : [];
    const changed =
      row.resolvedDigest !== manifest.digest ||
      row.resolvedMediaType !== manifest.mediaType ||
      row.resolvedSize !== manifest.size ||
      !sameReferrers(row.referrers, referrers);
    context.metrics.resolutions.inc({ result: 'ok' });
    if (changed) {
      context.logger.info(
        {
          repository: row.repository,
          tag: row.tag,
          digest: manifest.digest,
          previousDigest: row.resolvedDigest,
        },
        'selection resolved to a new digest',
      );
    }
    return {
      id: row.id,
      changed,
      update: {
        resolvedDigest: manifest.digest,
        resolvedMediaType: manifest.mediaType,
        resolvedSize: manifest.size,
        referrers,
        resolvedAt: now,
        errorCode: null,
        errorMessage: null,
      },
    };
  } catch (error) {
    const code = error instanceof UpstreamError ? error.code : 'RESOLUTION_FAILED';
    const message = error instanceof Error ? error.message : String(error);
    context.metrics.resolutions.inc({ result: 'error' });
    context.logger.warn(
      { repository: row.repository, tag: row.tag, digest: row.digest, code },
      `resolution failed: ${message}`,
    );
    // The previous resolution stays, so satellites keep the last known digest.
    return { id: row.id, changed: false, update: { errorCode: code, errorMessage: message } };
  }
}

/**
 * Resolves every selection of a group on its upstream and stores the digests, referrers and
 * per-selection errors. When a digest or referrer changed, every member satellite gets a new
 * revision in the same transaction. Returns whether anything changed.
 */
export async function resolveGroup(context: AppContext, groupId: string): Promise<boolean> {
  const rows = await context.db
    .select()
    .from(selections)
    .where(eq(selections.groupId, groupId))
    .orderBy(asc(selections.position));
  if (rows.length === 0) return false;
  const registryIds = [...new Set(rows.map((row) => row.registryId))];
  const registryRows = await context.db
    .select()
    .from(registries)
    .where(inArray(registries.id, registryIds));
  const upstreams = new Map(
    registryRows.map((registry) => [registry.id, upstreamOf(context, registry)]),
  );

  const outcomes: Outcome[] = [];
  for (let start = 0; start < rows.length; start += RESOLVE_CONCURRENCY) {
    const batch = rows.slice(start, start + RESOLVE_CONCURRENCY);
    outcomes.push(
      ...(await Promise.all(
        batch.map((row) => resolveOne(context, row, upstreams.get(row.registryId)!)),
      )),
    );
  }
  const changed = outcomes.some((outcome) => outcome.changed);
  await context.db.transaction(async (tx) => {
    for (const outcome of outcomes) {
      await tx.update(selections).set(outcome.update).where(eq(selections.id, outcome.id));
    }
    if (changed) await bumpRevisions(tx, { groupIds: [groupId] });
  });
  return changed;
}
