import { describe, expect, it } from 'vitest';
import { backoffDelayMs } from './backoff.js';

describe('backoffDelayMs', () => {
  const policy = { initialMs: 1000, maxMs: 8000, multiplier: 2 };

  it('grows exponentially within the jitter range', () => {
    expect(backoffDelayMs(policy, 1, () => 0)).toBe(500);
    expect(backoffDelayMs(policy, 1, () => 1)).toBe(1000);
    expect(backoffDelayMs(policy, 3, () => 0)).toBe(2000);
    expect(backoffDelayMs(policy, 3, () => 1)).toBe(4000);
  });

  it('caps the delay', () => {
    expect(backoffDelayMs(policy, 30, () => 1)).toBe(8000);
    expect(backoffDelayMs(policy, 30, () => 0)).toBe(4000);
  });
});
