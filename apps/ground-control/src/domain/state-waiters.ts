/** NOTIFY channel whose payload lists satellite ids (comma-separated) or `*` for all. */
export const STATE_CHANNEL = 'gc_state';

export interface Waiter {
  /** Resolves with true when a change for the satellite was signalled, false on timeout. */
  readonly changed: Promise<boolean>;
  cancel(): void;
}

/**
 * Long-poll requests waiting for a satellite's revision to change. Wake-ups come from
 * PostgreSQL NOTIFY, so a change made through any replica reaches the waiters on every replica.
 */
export class StateWaiters {
  private readonly waiting = new Map<string, Set<(changed: boolean) => void>>();
  private closed = false;

  get size(): number {
    let count = 0;
    for (const set of this.waiting.values()) count += set.size;
    return count;
  }

  /** Registers a waiter before the caller reads the revision, so no notification slips by. */
  wait(satelliteId: string, timeoutMs: number): Waiter {
    let settle: (changed: boolean) => void = () => undefined;
    const changed = new Promise<boolean>((resolve) => {
      settle = resolve;
    });
    if (this.closed) {
      settle(false);
      return { changed, cancel: () => undefined };
    }
    let set = this.waiting.get(satelliteId);
    if (set === undefined) {
      set = new Set();
      this.waiting.set(satelliteId, set);
    }
    const entries = set;
    const finish = (value: boolean): void => {
      clearTimeout(timer);
      entries.delete(finish);
      if (entries.size === 0 && this.waiting.get(satelliteId) === entries) {
        this.waiting.delete(satelliteId);
      }
      settle(value);
    };
    const timer = setTimeout(() => finish(false), timeoutMs);
    entries.add(finish);
    return { changed, cancel: () => finish(false) };
  }

  /** Handles a NOTIFY payload from the state channel. */
  onNotification(payload: string): void {
    if (payload === '*') {
      for (const set of [...this.waiting.values()]) for (const finish of [...set]) finish(true);
      return;
    }
    for (const id of payload.split(',')) {
      const set = this.waiting.get(id);
      if (set !== undefined) for (const finish of [...set]) finish(true);
    }
  }

  /** Releases every waiter as unchanged at shutdown, so long polls end with 304. */
  close(): void {
    this.closed = true;
    for (const set of [...this.waiting.values()]) for (const finish of [...set]) finish(false);
  }
}
