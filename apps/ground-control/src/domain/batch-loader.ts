export interface BatchLoaderOptions {
  /** Maximum ids per call of the load function. */
  maxBatch: number;
  /** Maximum calls of the load function running at once. Each uses one pool connection. */
  maxConcurrent: number;
}

interface PendingLoad<V> {
  resolve: (value: V | undefined) => void;
  reject: (error: unknown) => void;
}

/**
 * Collects the ids requested within one turn of the event loop and loads them with one call,
 * so a thousand requests woken by the same notification cost a few queries. Ids requested
 * while the concurrency limit is reached wait and join the next batch. Concurrent requests for
 * the same id share one load.
 */
export class BatchLoader<V> {
  private readonly queued = new Map<string, PendingLoad<V>[]>();
  private scheduled = false;
  private running = 0;

  constructor(
    private readonly loadMany: (ids: string[]) => Promise<Map<string, V>>,
    private readonly options: BatchLoaderOptions,
  ) {}

  /** Resolves with the value of one id, or undefined when the load function returned none. */
  load(id: string): Promise<V | undefined> {
    return new Promise((resolve, reject) => {
      const waiting = this.queued.get(id);
      if (waiting === undefined) this.queued.set(id, [{ resolve, reject }]);
      else waiting.push({ resolve, reject });
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    // setImmediate, not a microtask, so requests parsed in the same I/O phase share a batch.
    setImmediate(() => {
      this.scheduled = false;
      this.dispatch();
    });
  }

  private dispatch(): void {
    while (this.running < this.options.maxConcurrent && this.queued.size > 0) {
      const batch = new Map<string, PendingLoad<V>[]>();
      for (const [id, waiting] of this.queued) {
        if (batch.size >= this.options.maxBatch) break;
        batch.set(id, waiting);
        this.queued.delete(id);
      }
      this.running++;
      void this.run(batch).finally(() => {
        this.running--;
        this.dispatch();
      });
    }
  }

  private async run(batch: Map<string, PendingLoad<V>[]>): Promise<void> {
    try {
      const values = await this.loadMany([...batch.keys()]);
      for (const [id, waiting] of batch) {
        const value = values.get(id);
        for (const pending of waiting) pending.resolve(value);
      }
    } catch (error) {
      for (const waiting of batch.values()) for (const pending of waiting) pending.reject(error);
    }
  }
}
