import { createHash } from 'node:crypto';
import { sql } from 'drizzle-orm';
import type { StatusReport } from '@edge/contract';
import type { Db } from '../db/database.js';
import { queryRows } from '../db/database.js';

/** Satellites per UPDATE statement, so one statement's JSON parameter stays below 1 MB. */
const REPORT_TIMES_PER_STATEMENT = 5_000;

/**
 * Returns the SHA-256 of a report's JSON. A report has no field that only carries time (its
 * time is the receipt time that Ground Control stores), so the digest covers the whole report.
 */
export function reportHash(json: string): string {
  return createHash('sha256').update(json).digest('hex');
}

interface PendingTime {
  timeMs: number;
  hash: string;
  report: StatusReport;
}

/** Stores a report in full when the row contains other content; set by the app at start. */
export type StoreReport = (
  satelliteId: string,
  report: StatusReport,
  timeMs: number,
) => Promise<void>;

/**
 * Remembers, per satellite, the digest of the last report this replica stored, so an unchanged
 * heartbeat only records its time, which the last-seen flush writes to
 * `satellite_status.received_at` in a batch.
 *
 * Several replicas share one database, and another replica may have stored a different report
 * since. The batched UPDATE therefore writes the time only where `report_hash` still equals the
 * digest. For a row that contains other, older content, the flush stores the pending report in full,
 * with its events. So the stored report is right within one flush, whichever replica wrote it.
 */
export class ReportTimes {
  private readonly digests = new Map<string, string>();
  private pending = new Map<string, PendingTime>();
  private storeReport: StoreReport | undefined;

  constructor(private readonly db: Db) {}

  get pendingCount(): number {
    return this.pending.size;
  }

  /** Sets the full write used for a row that another replica changed. */
  setStoreReport(storeReport: StoreReport): void {
    this.storeReport = storeReport;
  }

  /** Tells whether `hash` is the digest of the last report this replica stored. */
  matches(satelliteId: string, hash: string): boolean {
    return this.digests.get(satelliteId) === hash;
  }

  /** Notes that the row now contains the report with this digest, and drops an older pending time. */
  stored(satelliteId: string, hash: string): void {
    this.digests.set(satelliteId, hash);
    this.pending.delete(satelliteId);
  }

  /** Records the receipt time of an unchanged report, written at the next flush. */
  record(satelliteId: string, timeMs: number, hash: string, report: StatusReport): void {
    const previous = this.pending.get(satelliteId);
    if (previous === undefined || previous.timeMs < timeMs) {
      this.pending.set(satelliteId, { timeMs, hash, report });
    }
  }

  /** Writes every pending time. On failure, what was not written stays pending. */
  async write(): Promise<void> {
    if (this.pending.size === 0) return;
    const batch = [...this.pending];
    this.pending = new Map();
    for (let start = 0; start < batch.length; start += REPORT_TIMES_PER_STATEMENT) {
      const rows = batch.slice(start, start + REPORT_TIMES_PER_STATEMENT);
      let changed: string[];
      try {
        changed = await this.writeRows(rows);
      } catch (error) {
        for (const [id, entry] of batch.slice(start)) {
          this.record(id, entry.timeMs, entry.hash, entry.report);
        }
        throw error;
      }
      await this.storeChanged(rows, changed);
    }
  }

  /** Writes the times where the hash matches and returns the rows that contain other content. */
  private async writeRows(rows: Array<[string, PendingTime]>): Promise<string[]> {
    const json = JSON.stringify(
      rows.map(([id, entry]) => ({ id, seen: new Date(entry.timeMs), hash: entry.hash })),
    );
    // Both parts read the same snapshot. The condition on the time keeps a newer report
    // stored by another replica.
    const changed = await queryRows<{ id: string }>(
      this.db,
      sql`
        with v as (
          select * from json_to_recordset(${json}::json) as v(id uuid, seen timestamptz, hash text)
        ), touched as (
          update satellite_status as s set received_at = v.seen
          from v
          where s.satellite_id = v.id and s.report_hash = v.hash and s.received_at < v.seen
        )
        select v.id::text as id
        from v join satellite_status as s on s.satellite_id = v.id
        where s.report_hash is distinct from v.hash and s.received_at < v.seen
      `,
    );
    return changed.map((row) => row.id);
  }

  private async storeChanged(rows: Array<[string, PendingTime]>, changed: string[]): Promise<void> {
    if (changed.length === 0) return;
    const entries = new Map(rows);
    const failures: unknown[] = [];
    for (const id of changed) {
      this.digests.delete(id);
      const entry = entries.get(id);
      if (entry === undefined || this.storeReport === undefined) continue;
      try {
        await this.storeReport(id, entry.report, entry.timeMs);
      } catch (error) {
        // Without a digest, the next flush finds the row again and retries the full write.
        this.record(id, entry.timeMs, entry.hash, entry.report);
        failures.push(error);
      }
    }
    if (failures.length > 0) {
      throw new AggregateError(
        failures,
        `storing ${failures.length} status reports that another replica had changed failed; ` +
          'they are retried at the next flush',
      );
    }
  }
}
