import { describe, expect, it } from 'vitest';
import { assertDurationDays, durationForExtension, expiresAtFromUnix } from './expiry.js';

const DAY_MS = 86_400_000;

describe('expiresAtFromUnix', () => {
  it('maps -1 to no expiry', () => {
    expect(expiresAtFromUnix(-1)).toBeNull();
  });

  it('converts Unix seconds', () => {
    expect(expiresAtFromUnix(1_700_000_000)?.toISOString()).toBe('2023-11-14T22:13:20.000Z');
  });
});

describe('durationForExtension', () => {
  const created = new Date('2026-01-01T00:00:00Z');

  it.each([
    { case: 'just created', nowMs: 0, extendDays: 30, expected: 30 },
    { case: 'ten days old', nowMs: 10 * DAY_MS, extendDays: 30, expected: 40 },
    { case: 'partial day rounds up', nowMs: 10 * DAY_MS + 1, extendDays: 30, expected: 41 },
    { case: 'clock behind creation', nowMs: -DAY_MS, extendDays: 7, expected: 7 },
  ])('computes days when $case', ({ nowMs, extendDays, expected }) => {
    const now = new Date(created.getTime() + nowMs);
    expect(durationForExtension(created, now, extendDays)).toBe(expected);
  });

  it('never expires before the extension', () => {
    const now = new Date(created.getTime() + 3.5 * DAY_MS);
    const duration = durationForExtension(created, now, 2);
    expect(created.getTime() + duration * DAY_MS).toBeGreaterThanOrEqual(
      now.getTime() + 2 * DAY_MS,
    );
  });

  it.each([0, -1, 1.5])('rejects extendDays %d', (extendDays) => {
    expect(() => durationForExtension(created, created, extendDays)).toThrow(TypeError);
  });
});

describe('assertDurationDays', () => {
  it.each([-1, 1, 365])('accepts %d', (days) => {
    expect(() => assertDurationDays(days)).not.toThrow();
  });

  it.each([0, -2, 0.5, Number.NaN])('rejects %d', (days) => {
    expect(() => assertDurationDays(days)).toThrow(TypeError);
  });
});
