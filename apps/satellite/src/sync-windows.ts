/**
 * A time window in which copying may run. `days` are weekday names (`mon` … `sun`, or full
 * English names, any case) or numbers 0-6 with 0 = Sunday; an empty list means every day.
 * `start` and `end` are `HH:MM` in the IANA `timeZone`; a window whose end is not after its
 * start runs past midnight into the next day.
 */
export interface SyncWindow {
  days: readonly (string | number)[];
  start: string;
  end: string;
  timeZone: string;
}

const WEEKDAYS = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'] as const;
const MINUTES_PER_DAY = 24 * 60;

/** Returns true when copying is allowed at `now`: no windows configured, or `now` is inside one. */
export function isInsideSyncWindows(windows: readonly SyncWindow[], now: Date): boolean {
  if (windows.length === 0) return true;
  return windows.some((window) => isInsideWindow(window, now));
}

export function isInsideWindow(window: SyncWindow, now: Date): boolean {
  const { weekday, minutes } = localTime(now, window.timeZone);
  const start = parseClock(window.start);
  const end = parseClock(window.end);
  const days = normaliseDays(window.days);
  const dayAllowed = (day: number): boolean => days.size === 0 || days.has(day);

  if (start < end) return dayAllowed(weekday) && minutes >= start && minutes < end;
  // The window runs past midnight: the evening part belongs to its own day, the morning part to
  // the day before.
  const previousDay = (weekday + 6) % 7;
  return (dayAllowed(weekday) && minutes >= start) || (dayAllowed(previousDay) && minutes < end);
}

/** Parses `HH:MM` (00:00-24:00) into minutes after midnight. */
export function parseClock(value: string): number {
  const match = /^(\d{2}):(\d{2})$/.exec(value);
  const hours = Number(match?.[1]);
  const minutes = Number(match?.[2]);
  if (!match || hours > 24 || minutes > 59 || (hours === 24 && minutes !== 0)) {
    throw new RangeError(
      `Invalid sync window time "${value}": expected HH:MM between 00:00 and 24:00.`,
    );
  }
  return hours * 60 + minutes;
}

function normaliseDays(days: readonly (string | number)[]): Set<number> {
  const result = new Set<number>();
  for (const day of days) {
    if (typeof day === 'number') {
      if (!Number.isInteger(day) || day < 0 || day > 6) {
        throw new RangeError(`Invalid sync window day ${day}: expected 0-6 with 0 = Sunday.`);
      }
      result.add(day);
      continue;
    }
    const index = WEEKDAYS.indexOf(day.slice(0, 3).toLowerCase() as (typeof WEEKDAYS)[number]);
    if (index < 0) throw new RangeError(`Invalid sync window day "${day}": expected mon … sun.`);
    result.add(index);
  }
  return result;
}

const formatters = new Map<string, Intl.DateTimeFormat>();

/** Returns the weekday (0 = Sunday) and minutes after midnight of `now` in `timeZone`. */
export function localTime(now: Date, timeZone: string): { weekday: number; minutes: number } {
  let formatter = formatters.get(timeZone);
  if (!formatter) {
    // Throws RangeError for an unknown IANA zone, which the desired-state validation reports.
    formatter = new Intl.DateTimeFormat('en-US', {
      timeZone,
      weekday: 'short',
      hour: '2-digit',
      minute: '2-digit',
      hourCycle: 'h23',
    });
    formatters.set(timeZone, formatter);
  }
  const parts = formatter.formatToParts(now);
  const part = (type: Intl.DateTimeFormatPartTypes): string =>
    parts.find((entry) => entry.type === type)?.value ?? '';
  const weekday = WEEKDAYS.indexOf(part('weekday').toLowerCase() as (typeof WEEKDAYS)[number]);
  const minutes = Number(part('hour')) * 60 + Number(part('minute'));
  return { weekday, minutes: minutes % MINUTES_PER_DAY };
}

export function isValidTimeZone(timeZone: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone });
    return true;
  } catch {
    return false;
  }
}
