import { and, desc, eq, lt, sql } from 'drizzle-orm';
import type { ArtifactStatus, StatusReport } from '@edge/contract';
import type { AppContext } from '../context.js';
import { satelliteEvents, satelliteStatus, satellites } from '../db/schema.js';

interface EventRow {
  kind: string;
  message: string;
  details: Record<string, unknown>;
}

function artifactKey(artifact: Pick<ArtifactStatus, 'localRepository' | 'tag' | 'digest'>): string {
  return `${artifact.localRepository}:${artifact.tag ?? ''}@${artifact.digest}`;
}

/** Lists what changed between two reports; an unchanged heartbeat yields no events. */
export function diffReports(previous: StatusReport | null, next: StatusReport): EventRow[] {
  const events: EventRow[] = [];
  if (previous === null || previous.phase !== next.phase) {
    events.push({
      kind: 'phase',
      message: `phase ${previous?.phase ?? 'none'} -> ${next.phase}`,
      details: { from: previous?.phase ?? null, to: next.phase },
    });
  }
  if (previous !== null && previous.appliedRevision !== next.appliedRevision) {
    events.push({
      kind: 'applied-revision',
      message: `applied revision ${previous.appliedRevision} -> ${next.appliedRevision}`,
      details: { from: previous.appliedRevision, to: next.appliedRevision },
    });
  }
  const before = new Map(
    (previous?.artifacts ?? []).map((artifact) => [artifactKey(artifact), artifact]),
  );
  for (const artifact of next.artifacts) {
    const old = before.get(artifactKey(artifact));
    if (old !== undefined && old.state === artifact.state && old.reason === artifact.reason)
      continue;
    events.push({
      kind: 'artifact',
      message: `${artifact.localRepository}@${artifact.digest} ${old?.state ?? 'new'} -> ${artifact.state}`,
      details: {
        localRepository: artifact.localRepository,
        tag: artifact.tag,
        digest: artifact.digest,
        from: old?.state ?? null,
        to: artifact.state,
        ...(artifact.reason !== undefined ? { reason: artifact.reason } : {}),
      },
    });
  }
  const nextKeys = new Set(next.artifacts.map(artifactKey));
  for (const [key, artifact] of before) {
    if (nextKeys.has(key)) continue;
    events.push({
      kind: 'artifact',
      message: `${artifact.localRepository}@${artifact.digest} ${artifact.state} -> removed`,
      details: {
        localRepository: artifact.localRepository,
        digest: artifact.digest,
        from: artifact.state,
        to: null,
      },
    });
  }
  const errorCodes = (report: StatusReport | null) =>
    (report?.errors ?? [])
      .map((error) => error.code)
      .sort()
      .join(',');
  if (errorCodes(previous) !== errorCodes(next) && next.errors.length > 0) {
    events.push({
      kind: 'errors',
      message: `errors: ${next.errors.map((error) => error.code).join(', ')}`,
      details: { errors: next.errors },
    });
  }
  return events;
}

/**
 * Stores a status report: one upsert of the latest report, plus events only for changes, so a
 * heartbeat costs one row write. Returns the satellite's desired revision.
 */
export async function recordStatus(
  context: AppContext,
  satelliteId: string,
  report: StatusReport,
): Promise<number> {
  const now = new Date(context.now());
  const presentCount = report.artifacts.filter((artifact) => artifact.state === 'present').length;
  return context.db.transaction(async (tx) => {
    const [previous] = await tx
      .select({ report: satelliteStatus.report })
      .from(satelliteStatus)
      .where(eq(satelliteStatus.satelliteId, satelliteId))
      .for('update');
    const values = {
      report: report as unknown as Record<string, unknown>,
      appliedRevision: report.appliedRevision,
      phase: report.phase,
      presentCount,
      receivedAt: now,
    };
    await tx
      .insert(satelliteStatus)
      .values({ satelliteId, ...values })
      .onConflictDoUpdate({ target: satelliteStatus.satelliteId, set: values });
    const events = diffReports((previous?.report as StatusReport | undefined) ?? null, report);
    const [satellite] = await tx
      .select({ revision: satellites.desiredRevision, version: satellites.version })
      .from(satellites)
      .where(eq(satellites.id, satelliteId));
    if (satellite !== undefined && satellite.version !== report.version) {
      await tx
        .update(satellites)
        .set({ version: report.version })
        .where(eq(satellites.id, satelliteId));
    }
    if (events.length > 0) {
      await tx
        .insert(satelliteEvents)
        .values(events.map((event) => ({ satelliteId, time: now, ...event })));
      await trimEvents(tx, satelliteId, context.config.eventHistoryPerSatellite);
    }
    return satellite?.revision ?? 1;
  });
}

/** Keeps only the newest `keep` events of a satellite. */
async function trimEvents(db: AppContext['db'], satelliteId: string, keep: number): Promise<void> {
  const [boundary] = await db
    .select({ id: satelliteEvents.id })
    .from(satelliteEvents)
    .where(eq(satelliteEvents.satelliteId, satelliteId))
    .orderBy(desc(satelliteEvents.id))
    .offset(keep)
    .limit(1);
  if (boundary === undefined) return;
  await db
    .delete(satelliteEvents)
    .where(
      and(
        eq(satelliteEvents.satelliteId, satelliteId),
        lt(satelliteEvents.id, sql`${boundary.id} + 1`),
      ),
    );
}
