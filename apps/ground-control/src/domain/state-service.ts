import type { DesiredState } from '@edge/contract';
import { inArray } from 'drizzle-orm';
import type { SecretBox } from '../crypto/secrets.js';
import type { Db } from '../db/database.js';
import { satellites } from '../db/schema.js';
import { AppError } from '../errors.js';
import { BatchLoader } from './batch-loader.js';
import { buildDesiredStates } from './desired-state.js';
import { RevisionCache } from './revision-cache.js';

/** Revisions read per query; 1,000 ids stay far below PostgreSQL's 65,535 bind parameters. */
const REVISION_BATCH_SIZE = 1_000;
/** Desired states built per transaction; a batch of 250 takes tens of milliseconds. */
const STATE_BATCH_SIZE = 250;
/**
 * Batches of each kind running at once. Each uses one pool connection, so a wake-up storm
 * uses at most four and operator calls and heartbeats keep the rest of the pool.
 */
const MAX_CONCURRENT_BATCHES = 2;

function satelliteGone(): AppError {
  return new AppError('SATELLITE_TOKEN_INVALID', 'satellite no longer exists; join again');
}

/**
 * Serves revisions and desired states to the satellite protocol: revisions from an in-memory
 * cache kept correct by NOTIFY, and every database read batched across concurrent requests.
 */
export class StateService {
  readonly revisions: RevisionCache;
  private readonly revisionLoader: BatchLoader<number>;
  private readonly stateLoader: BatchLoader<DesiredState>;

  /** @param trusted whether notifications are being delivered now (the LISTEN connection is up) */
  constructor(
    private readonly db: Db,
    private readonly secrets: SecretBox,
    trusted: () => boolean,
  ) {
    this.revisions = new RevisionCache(trusted);
    this.revisionLoader = new BatchLoader((ids) => this.loadRevisions(ids), {
      maxBatch: REVISION_BATCH_SIZE,
      maxConcurrent: MAX_CONCURRENT_BATCHES,
    });
    this.stateLoader = new BatchLoader((ids) => this.loadStates(ids), {
      maxBatch: STATE_BATCH_SIZE,
      maxConcurrent: MAX_CONCURRENT_BATCHES,
    });
  }

  /** Returns the satellite's desired revision, from memory when the cache has it. */
  async revision(satelliteId: string): Promise<number> {
    const cached = this.revisions.get(satelliteId);
    if (cached !== undefined) return cached;
    const revision = await this.revisionLoader.load(satelliteId);
    if (revision === undefined) throw satelliteGone();
    return revision;
  }

  /** Builds the satellite's desired state, batched with concurrent requests for others. */
  async state(satelliteId: string): Promise<DesiredState> {
    const state = await this.stateLoader.load(satelliteId);
    if (state === undefined) throw satelliteGone();
    return state;
  }

  /** Handles a `gc_state` payload: comma-separated satellite ids, or `*` for all. */
  onNotification(payload: string): void {
    this.revisions.onNotification(payload);
  }

  private async loadRevisions(ids: string[]): Promise<Map<string, number>> {
    const read = this.revisions.beginRead(ids);
    let revisions: Map<string, number> | undefined;
    try {
      const rows = await this.db
        .select({ id: satellites.id, revision: satellites.desiredRevision })
        .from(satellites)
        .where(inArray(satellites.id, ids));
      revisions = new Map(rows.map((row) => [row.id, row.revision]));
      return revisions;
    } finally {
      this.revisions.finishRead(read, revisions);
    }
  }

  private async loadStates(ids: string[]): Promise<Map<string, DesiredState>> {
    const read = this.revisions.beginRead(ids);
    let revisions: Map<string, number> | undefined;
    try {
      // One snapshot for all queries, so each state's revision matches its content.
      const states = await this.db.transaction((tx) => buildDesiredStates(tx, this.secrets, ids), {
        isolationLevel: 'repeatable read',
        accessMode: 'read only',
      });
      revisions = new Map([...states].map(([id, state]) => [id, state.revision]));
      return states;
    } finally {
      this.revisions.finishRead(read, revisions);
    }
  }
}
