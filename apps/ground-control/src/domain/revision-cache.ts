/**
 * Upper bound of cached revisions, one small entry per satellite. Beyond it the cache starts
 * over, which costs one batched read per satellite.
 */
const MAX_CACHED_REVISIONS = 1_000_000;

/** A database read of some satellites' revisions that may be stored once it returns. */
export interface RevisionRead {
  readonly epoch: number;
  readonly ids: ReadonlySet<string>;
  /** Ids invalidated while the read ran; their values may predate the change. */
  readonly stale: Set<string>;
}

/**
 * The desired revision of each satellite, kept in memory so a conditional state request needs
 * no database round trip. The `gc_state` NOTIFY invalidates entries on every replica. A read
 * that started before an invalidation does not store its result, because its value may be
 * older than the change that caused the notification.
 */
export class RevisionCache {
  private readonly revisions = new Map<string, number>();
  private readonly reads = new Set<RevisionRead>();
  /** Incremented on every full clear, so reads that started before it store nothing. */
  private epoch = 0;

  /** @param trusted whether notifications are being delivered now (the LISTEN connection is up) */
  constructor(private readonly trusted: () => boolean) {}

  get size(): number {
    return this.revisions.size;
  }

  /** Returns the cached revision, or undefined when absent or while notifications may be lost. */
  get(satelliteId: string): number | undefined {
    if (!this.trusted()) return undefined;
    return this.revisions.get(satelliteId);
  }

  /** Registers a read before it queries the database; pass the result to `finishRead`. */
  beginRead(satelliteIds: Iterable<string>): RevisionRead {
    const read: RevisionRead = { epoch: this.epoch, ids: new Set(satelliteIds), stale: new Set() };
    this.reads.add(read);
    return read;
  }

  /** Stores what a read returned, except values an invalidation made doubtful meanwhile. */
  finishRead(read: RevisionRead, revisions: ReadonlyMap<string, number> | undefined): void {
    this.reads.delete(read);
    if (revisions === undefined || read.epoch !== this.epoch || !this.trusted()) return;
    for (const [id, revision] of revisions) {
      if (read.stale.has(id) || !read.ids.has(id)) continue;
      if (this.revisions.size >= MAX_CACHED_REVISIONS) this.revisions.clear();
      this.revisions.set(id, revision);
    }
  }

  /** Handles a `gc_state` payload: comma-separated satellite ids, or `*` for all. */
  onNotification(payload: string): void {
    if (payload === '*') {
      this.clear();
      return;
    }
    for (const id of payload.split(',')) {
      this.revisions.delete(id);
      for (const read of this.reads) if (read.ids.has(id)) read.stale.add(id);
    }
  }

  clear(): void {
    this.epoch++;
    this.revisions.clear();
  }
}
