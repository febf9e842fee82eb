import { and, desc, eq, lt, sql } from 'drizzle-orm';
import type { ArtifactStatus, StatusReport } from '@edge/contract';
import type { AppContext } from '../context.js';
import { queryRows } from '../db/database.js';
import { satelliteEvents } from '../db/schema.js';
import { reportHash } from './report-times.js';

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

interface RecordedRow {
  revision: string | number | null;
  previous: StatusReport | null;
  stored: boolean;
}

export interface RecordStatusOptions {
  /**
   * Receipt time of a report stored later by the batched flush. With it, the row is written only
   * when its stored time is older, so a newer report from another replica stays.
   */
  receivedAtMs?: number;
}

/**
 * Stores a status report and returns the satellite's desired revision.
 *
 * A report whose digest equals the last one this replica stored only records its receipt
 * time, which the last-seen flush writes (see `ReportTimes` for how replicas stay correct).
 * Any other report costs one statement: it locks and reads the previous report, upserts the
 * new one with its digest, updates the version when it changed and reads the revision. Events
 * are written, in a second transaction, only when the report differs from the previous one.
 */
export async function recordStatus(
  context: AppContext,
  satelliteId: string,
  report: StatusReport,
  options: RecordStatusOptions = {},
): Promise<number> {
  const json = JSON.stringify(report);
  const hash = reportHash(json);
  if (options.receivedAtMs === undefined && context.reportTimes.matches(satelliteId, hash)) {
    context.reportTimes.record(satelliteId, context.now(), hash, report);
    return context.states.revision(satelliteId);
  }

  const now = new Date(options.receivedAtMs ?? context.now());
  const onlyIfOlder =
    options.receivedAtMs === undefined
      ? sql``
      : sql`where satellite_status.received_at < excluded.received_at`;
  const presentCount = report.artifacts.filter((artifact) => artifact.state === 'present').length;
  // The final SELECT reads `previous` before `stored`, so it reads the row (and locks it,
  // waiting for a concurrent heartbeat of the same satellite) before the upsert runs.
  const [row] = await queryRows<RecordedRow>(
    context.db,
    sql`
      with previous as (
        select report from satellite_status where satellite_id = ${satelliteId} for update
      ), stored as (
        insert into satellite_status
          (satellite_id, report, applied_revision, phase, present_count, received_at, report_hash)
        values (
          ${satelliteId}, ${json}::jsonb, ${report.appliedRevision},
          ${report.phase}, ${presentCount}, ${now.toISOString()}::timestamptz, ${hash}
        )
        on conflict (satellite_id) do update set
          report = excluded.report,
          applied_revision = excluded.applied_revision,
          phase = excluded.phase,
          present_count = excluded.present_count,
          received_at = excluded.received_at,
          report_hash = excluded.report_hash
        ${onlyIfOlder}
        returning 1
      ), changed_version as (
        update satellites set version = ${report.version}
        where id = ${satelliteId} and version is distinct from ${report.version}
          and exists (select 1 from stored)
      )
      select
        (select report from previous) as previous,
        exists (select 1 from stored) as stored,
        (select desired_revision from satellites where id = ${satelliteId}) as revision
    `,
  );
  if (row?.stored === true) {
    context.reportTimes.stored(satelliteId, hash);
    const events = diffReports(row.previous, report);
    if (events.length > 0) {
      // NOTE: this is not atomic with the upsert above. If this transaction fails, the stored
      // report is newer than the last events, and no later event records this change.
      await context.db.transaction(async (tx) => {
        await tx
          .insert(satelliteEvents)
          .values(events.map((event) => ({ satelliteId, time: now, ...event })));
        await trimEvents(tx, satelliteId, context.config.eventHistoryPerSatellite);
      });
    }
  }
  return row?.revision === null || row?.revision === undefined ? 1 : Number(row.revision);
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
