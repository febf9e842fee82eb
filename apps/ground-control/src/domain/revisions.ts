import { and, eq, inArray, isNotNull, or, sql, type SQL } from 'drizzle-orm';
import { notify, type Db } from '../db/database.js';
import { groups, satelliteGroups, satellites, selections } from '../db/schema.js';
import { STATE_CHANNEL } from './state-waiters.js';

/** NOTIFY payloads must stay under PostgreSQL's 8000-byte limit; 150 UUIDs take about 5.5 KB. */
const IDS_PER_NOTIFICATION = 150;
/** Above this many satellites one `*` notification is cheaper than many lists. */
const MAX_LISTED_SATELLITES = 3_000;

export type RevisionTarget =
  | { satelliteIds: string[] }
  | { groupIds: string[] }
  | { configId: string }
  | { registryId: string };

function condition(db: Db, target: RevisionTarget): SQL | undefined {
  if ('satelliteIds' in target) {
    return target.satelliteIds.length === 0
      ? undefined
      : inArray(satellites.id, target.satelliteIds);
  }
  if ('groupIds' in target) {
    if (target.groupIds.length === 0) return undefined;
    const members = db
      .select({ id: satelliteGroups.satelliteId })
      .from(satelliteGroups)
      .where(inArray(satelliteGroups.groupId, target.groupIds));
    return inArray(satellites.id, members);
  }
  if ('configId' in target) {
    const viaGroups = db
      .select({ id: satelliteGroups.satelliteId })
      .from(satelliteGroups)
      .innerJoin(groups, eq(groups.id, satelliteGroups.groupId))
      .where(eq(groups.configId, target.configId));
    return or(eq(satellites.configId, target.configId), inArray(satellites.id, viaGroups));
  }
  const viaSelections = db
    .select({ id: satelliteGroups.satelliteId })
    .from(satelliteGroups)
    .innerJoin(selections, eq(selections.groupId, satelliteGroups.groupId))
    .where(and(eq(selections.registryId, target.registryId), isNotNull(selections.resolvedDigest)));
  return inArray(satellites.id, viaSelections);
}

/**
 * Increments the desired revision of every satellite the target reaches and notifies all
 * replicas. Call it inside the transaction that made the change, so the NOTIFY is delivered
 * at commit together with the change.
 */
export async function bumpRevisions(db: Db, target: RevisionTarget): Promise<string[]> {
  const where = condition(db, target);
  if (where === undefined) return [];
  const rows = await db
    .update(satellites)
    .set({ desiredRevision: sql`${satellites.desiredRevision} + 1` })
    .where(where)
    .returning({ id: satellites.id });
  await notifyStateChanged(
    db,
    rows.map((row) => row.id),
  );
  return rows.map((row) => row.id);
}

export async function notifyStateChanged(db: Db, satelliteIds: string[]): Promise<void> {
  if (satelliteIds.length === 0) return;
  if (satelliteIds.length > MAX_LISTED_SATELLITES) {
    await notify(db, STATE_CHANNEL, '*');
    return;
  }
  for (let start = 0; start < satelliteIds.length; start += IDS_PER_NOTIFICATION) {
    await notify(
      db,
      STATE_CHANNEL,
      satelliteIds.slice(start, start + IDS_PER_NOTIFICATION).join(','),
    );
  }
}
