/** Latencies of one measured phase, in milliseconds, with their percentiles. */
export class LatencyRecorder {
  private readonly samples: number[] = [];

  record(milliseconds: number): void {
    this.samples.push(milliseconds);
  }

  get count(): number {
    return this.samples.length;
  }

  /** Returns the nearest-rank percentile (0 < p <= 100), or 0 without samples. */
  percentile(p: number): number {
    if (this.samples.length === 0) return 0;
    const sorted = [...this.samples].sort((x, y) => x - y);
    const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
    return sorted[Math.min(rank, sorted.length) - 1] ?? 0;
  }
}
