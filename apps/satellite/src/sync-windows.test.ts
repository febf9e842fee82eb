import { describe, expect, it } from 'vitest';
import { isInsideSyncWindows, isInsideWindow, localTime, parseClock } from './sync-windows.js';

describe('sync windows', () => {
  const night = { days: ['mon', 'tue'], start: '22:00', end: '06:00', timeZone: 'Europe/Berlin' };

  it('treats an empty list as always open', () => {
    expect(isInsideSyncWindows([], new Date('2026-12-04T12:00:00Z'))).toBe(true);
  });

  it('evaluates the local time of the zone', () => {
    // 2026-07-06 is a Monday; Berlin is UTC+2 in summer, so 20:30 UTC is 22:30 local.
    expect(localTime(new Date('2026-07-06T20:30:00Z'), 'Europe/Berlin')).toEqual({
      weekday: 1,
      minutes: 22 * 60 + 30,
    });
  });

  it.each([
    ['2026-07-06T20:30:00Z', true], // Monday 22:30 local
    ['2026-07-07T03:00:00Z', true], // Tuesday 05:00 local, morning part of Monday's window
    ['2026-07-07T04:30:00Z', false], // Tuesday 06:30 local
    ['2026-07-08T03:00:00Z', true], // Wednesday 05:00 local, morning part of Tuesday's window
    ['2026-07-09T03:00:00Z', false], // Thursday 05:00 local: Wednesday has no window
    ['2026-07-06T12:00:00Z', false], // Monday noon
  ])('window across midnight at %s is %s', (instant, expected) => {
    expect(isInsideWindow(night, new Date(instant))).toBe(expected);
  });

  it('handles a window within one day and numeric days', () => {
    const window = { days: [0], start: '09:00', end: '17:00', timeZone: 'America/New_York' };
    // 2026-12-06 is a Sunday; New York is UTC-5 in December.
    expect(isInsideWindow(window, new Date('2026-12-06T14:00:00Z'))).toBe(true);
    expect(isInsideWindow(window, new Date('2026-12-06T22:30:00Z'))).toBe(false);
    expect(isInsideWindow(window, new Date('2026-12-07T14:00:00Z'))).toBe(false);
  });

  it('rejects malformed times, days and zones', () => {
    expect(() => parseClock('7:00')).toThrow(RangeError);
    expect(() => parseClock('24:30')).toThrow(RangeError);
    expect(parseClock('24:00')).toBe(1440);
    const now = new Date();
    expect(() => isInsideWindow({ ...night, days: ['funday'] }, now)).toThrow(/funday/);
    expect(() => isInsideWindow({ ...night, timeZone: 'Mars/Olympus' }, now)).toThrow(RangeError);
  });
});
