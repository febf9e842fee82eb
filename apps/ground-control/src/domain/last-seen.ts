import { sql } from 'drizzle-orm';
import type { Logger } from 'pino';
import type { Db } from '../db/database.js';
import type { ReportTimes } from './report-times.js';

/**
 * How often the poll times recorded in memory are written to `satellites.last_seen_at`, in
 * milliseconds. Views of `last_seen_at` lag the latest poll by at most this plus one write.
 */
export const LAST_SEEN_FLUSH_INTERVAL_MS = 5_000;
/** Satellites per UPDATE statement, so one statement's JSON parameter stays below 1 MB. */
const LAST_SEEN_ROWS_PER_STATEMENT = 5_000;

/**
 * Records when each satellite last polled and writes all pending times in one statement every
 * few seconds, instead of one UPDATE per request. The same flush writes the receipt times of
 * unchanged status reports. `stop` writes what is left.
 */
export class LastSeenRecorder {
  private pending = new Map<string, number>();
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> = Promise.resolve();

  constructor(
    private readonly db: Db,
    private readonly logger: Logger,
    private readonly reportTimes?: ReportTimes,
  ) {}

  get pendingCount(): number {
    return this.pending.size + (this.reportTimes?.pendingCount ?? 0);
  }

  record(satelliteId: string, timeMs: number): void {
    const previous = this.pending.get(satelliteId);
    if (previous === undefined || previous < timeMs) this.pending.set(satelliteId, timeMs);
  }

  start(): void {
    if (this.timer !== undefined) return;
    this.timer = setInterval(() => {
      this.flush().catch((error: unknown) => {
        this.logger.error(
          { err: error, satellites: this.pending.size },
          'writing last_seen_at failed; the times stay pending for the next write',
        );
      });
    }, LAST_SEEN_FLUSH_INTERVAL_MS);
    this.timer.unref();
  }

  /** Writes every pending time; concurrent calls run one after another. */
  flush(): Promise<void> {
    const run = this.flushing.then(() => this.write());
    this.flushing = run.catch(() => undefined);
    return run;
  }

  /** Stops the timer and writes what is pending; a failed write is logged, not raised. */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    try {
      await this.flush();
    } catch (error) {
      this.logger.error(
        { err: error, satellites: this.pending.size },
        'writing last_seen_at at shutdown failed; these poll times are lost',
      );
    }
  }

  private async write(): Promise<void> {
    await this.writeLastSeen();
    await this.reportTimes?.write();
  }

  private async writeLastSeen(): Promise<void> {
    if (this.pending.size === 0) return;
    const batch = [...this.pending];
    this.pending = new Map();
    for (let start = 0; start < batch.length; start += LAST_SEEN_ROWS_PER_STATEMENT) {
      const rows = batch.slice(start, start + LAST_SEEN_ROWS_PER_STATEMENT);
      try {
        await this.writeRows(rows);
      } catch (error) {
        // Put back what was not written; a newer time recorded meanwhile wins.
        for (const [id, time] of batch.slice(start)) this.record(id, time);
        throw error;
      }
    }
  }

  private async writeRows(rows: Array<[string, number]>): Promise<void> {
    const json = JSON.stringify(rows.map(([id, time]) => ({ id, seen: new Date(time) })));
    // The condition keeps a newer time written by a join or by another replica.
    await this.db.execute(sql`
      update satellites as s set last_seen_at = v.seen
      from json_to_recordset(${json}::json) as v(id uuid, seen timestamptz)
      where s.id = v.id and (s.last_seen_at is null or s.last_seen_at < v.seen)
    `);
  }
}
