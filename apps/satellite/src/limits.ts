/** A counting semaphore whose limit can change while it runs (config updates without restart). */
export class Semaphore {
  #limit: number;
  #active = 0;
  readonly #waiting: (() => void)[] = [];

  constructor(limit: number) {
    this.#limit = Math.max(1, limit);
  }

  setLimit(limit: number): void {
    this.#limit = Math.max(1, limit);
    this.#drain();
  }

  get active(): number {
    return this.#active;
  }

  async run<T>(task: () => Promise<T>): Promise<T> {
    if (this.#active >= this.#limit) {
      await new Promise<void>((resolve) => this.#waiting.push(resolve));
    } else {
      this.#active += 1;
    }
    try {
      return await task();
    } finally {
      this.#active -= 1;
      this.#drain();
    }
  }

  #drain(): void {
    while (this.#active < this.#limit && this.#waiting.length > 0) {
      this.#active += 1;
      this.#waiting.shift()?.();
    }
  }
}

/**
 * Token bucket shared by every download, so the configured bandwidth limit holds across all
 * concurrent transfers. `take` waits until the bytes fit; a null rate means no limit.
 */
export class BandwidthLimiter {
  #rate: number | null;
  #tokens = 0;
  #updatedAt: number;
  #queue: Promise<void> = Promise.resolve();

  constructor(
    bytesPerSecond: number | null,
    private readonly now: () => number = Date.now,
    private readonly sleep: (ms: number) => Promise<void> = defaultSleep,
  ) {
    this.#rate = bytesPerSecond;
    this.#updatedAt = now();
  }

  setRate(bytesPerSecond: number | null): void {
    this.#refill();
    this.#rate = bytesPerSecond;
  }

  get rate(): number | null {
    return this.#rate;
  }

  /** Waits until `bytes` may pass. Callers are served in order. */
  take(bytes: number): Promise<void> {
    const next = this.#queue.then(() => this.#takeNow(bytes));
    this.#queue = next.catch(() => undefined);
    return next;
  }

  async #takeNow(bytes: number): Promise<void> {
    for (;;) {
      const rate = this.#rate;
      if (rate === null) return;
      this.#refill();
      // Allow one second of burst, so a chunk larger than the rate still passes eventually.
      const needed = Math.min(bytes, rate);
      if (this.#tokens >= needed) {
        this.#tokens -= bytes;
        return;
      }
      await this.sleep(Math.ceil(((needed - this.#tokens) / rate) * 1000));
    }
  }

  #refill(): void {
    const now = this.now();
    const elapsed = (now - this.#updatedAt) / 1000;
    this.#updatedAt = now;
    if (this.#rate === null) {
      this.#tokens = 0;
      return;
    }
    this.#tokens = Math.min(this.#rate, this.#tokens + elapsed * this.#rate);
  }
}

function defaultSleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
