import { lt, sql } from 'drizzle-orm';
import { deleteExpiredCredentials } from './auth/operator.js';
import type { AppContext } from './context.js';
import { auditLog, groups, joinTokens, loginAttempts } from './db/schema.js';
import { resolveGroup } from './domain/resolution.js';
import { queryRows } from './db/database.js';

/** Pause between cleanup runs, in milliseconds. */
const CLEANUP_INTERVAL_MS = 10 * 60_000;
/** Used or expired join tokens are kept this long, so a late join still gets a precise error. */
const JOIN_TOKEN_RETENTION_MS = 30 * 86_400_000;
/** Advisory lock keys, one per job, so replicas never run the same job at once. */
const JOB_LOCK_KEYS = { resolve: 7_061_101, cleanup: 7_061_102, credentials: 7_061_103 } as const;

type JobName = keyof typeof JOB_LOCK_KEYS;

/**
 * Scheduled jobs: tag re-resolution, Harbor robot sync and rotation, and cleanup of expired
 * sessions, tokens and old audit entries. On PostgreSQL each run holds a transaction-level advisory lock, so with several
 * replicas one of them runs it and the others skip that round.
 */
export class Jobs {
  private readonly timers: NodeJS.Timeout[] = [];
  private readonly running = new Set<Promise<void>>();
  private stopped = false;

  constructor(private readonly context: AppContext) {}

  start(): void {
    const { resolveIntervalSeconds } = this.context.config;
    if (resolveIntervalSeconds > 0)
      this.every('resolve', resolveIntervalSeconds * 1_000, () => this.resolveAll());
    this.every('cleanup', CLEANUP_INTERVAL_MS, () => this.cleanup());
    const { credentialIntervalSeconds } = this.context.config;
    if (credentialIntervalSeconds > 0) {
      this.every('credentials', credentialIntervalSeconds * 1_000, () => this.credentials());
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const timer of this.timers) clearInterval(timer);
    await Promise.allSettled([...this.running]);
  }

  /** Runs a job now under its lock; returns false when another replica holds it. */
  async run(name: JobName, job: () => Promise<void>): Promise<boolean> {
    if (this.context.database.kind === 'pglite') {
      // PGlite serves one process, so no other replica can run the job at the same time.
      await job();
      return true;
    }
    return this.context.db.transaction(async (tx) => {
      const [row] = await queryRows<{ locked: boolean }>(
        tx,
        sql`select pg_try_advisory_xact_lock(${JOB_LOCK_KEYS[name]}) as locked`,
      );
      const locked = row?.locked === true;
      if (!locked) return false;
      await job();
      return true;
    });
  }

  private every(name: JobName, intervalMs: number, job: () => Promise<void>): void {
    const timer = setInterval(() => {
      if (this.stopped) return;
      const started = Date.now();
      const execution = this.run(name, job)
        .then((ran) => {
          if (ran)
            this.context.logger.debug({ job: name, durationMs: Date.now() - started }, 'job done');
        })
        .catch((error: unknown) => {
          this.context.logger.error(
            { err: error, job: name },
            'scheduled job failed; it runs again next interval',
          );
        })
        .finally(() => this.running.delete(execution));
      this.running.add(execution);
    }, intervalMs);
    timer.unref();
    this.timers.push(timer);
  }

  async resolveAll(): Promise<void> {
    const rows = await this.context.db.select({ id: groups.id }).from(groups);
    for (const row of rows) {
      if (this.stopped) return;
      await resolveGroup(this.context, row.id);
    }
  }

  /** Creates missing Harbor robots, fixes their projects and rotates secrets near expiry. */
  async credentials(): Promise<void> {
    const { harbor } = this.context;
    await harbor.syncSatellites(await harbor.satellitesToSync());
    await harbor.rotateExpiring();
  }

  async cleanup(): Promise<void> {
    const now = this.context.now();
    const removed = await deleteExpiredCredentials(this.context);
    await this.context.db
      .delete(loginAttempts)
      .where(lt(loginAttempts.windowStart, new Date(now - 3_600_000)));
    await this.context.db
      .delete(joinTokens)
      .where(lt(joinTokens.expiresAt, new Date(now - JOIN_TOKEN_RETENTION_MS)));
    const auditCutoff = new Date(now - this.context.config.auditRetentionDays * 86_400_000);
    await this.context.db.delete(auditLog).where(lt(auditLog.time, auditCutoff));
    this.context.logger.debug({ removedCredentials: removed }, 'cleanup done');
  }
}
