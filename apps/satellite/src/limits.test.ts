import { describe, expect, it } from 'vitest';
import { BandwidthLimiter, Semaphore } from './limits.js';

describe('Semaphore', () => {
  it('never runs more tasks than its limit, and follows limit changes', async () => {
    const semaphore = new Semaphore(2);
    let running = 0;
    let peak = 0;
    const gates: (() => void)[] = [];
    const task = () =>
      semaphore.run(async () => {
        running += 1;
        peak = Math.max(peak, running);
        await new Promise<void>((resolve) => gates.push(resolve));
        running -= 1;
      });
    const all = Promise.all([task(), task(), task(), task()]);
    await new Promise((resolve) => setImmediate(resolve));
    expect(running).toBe(2);
    semaphore.setLimit(3);
    await new Promise((resolve) => setImmediate(resolve));
    expect(running).toBe(3);
    while (gates.length > 0 || running > 0) {
      gates.shift()?.();
      await new Promise((resolve) => setImmediate(resolve));
    }
    await all;
    expect(peak).toBe(3);
  });
});

describe('BandwidthLimiter', () => {
  it('spaces transfers by the configured rate on a simulated clock', async () => {
    let now = 0;
    const sleeps: number[] = [];
    const limiter = new BandwidthLimiter(
      1000,
      () => now,
      (ms) => {
        sleeps.push(ms);
        now += ms;
        return Promise.resolve();
      },
    );
    for (let index = 0; index < 5; index += 1) await limiter.take(500);
    // 2500 bytes at 1000 bytes/s with an empty bucket take 2.5 s of simulated time.
    expect(now).toBe(2500);
    expect(sleeps.length).toBeGreaterThan(0);
  });

  it('passes everything without a rate', async () => {
    const limiter = new BandwidthLimiter(
      null,
      () => 0,
      () => {
        throw new Error('must not sleep');
      },
    );
    await limiter.take(10_000_000);
    expect(limiter.rate).toBeNull();
  });
});
