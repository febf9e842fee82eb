// Robot expiry arithmetic. Harbor stores a robot's lifetime as `duration` days counted from its
// creation time and reports `expires_at` in Unix seconds, with -1 meaning no expiry. Refreshing a
// secret does not move the expiry, so extending a robot means a PUT with a longer duration.

const MS_PER_DAY = 86_400_000;

/** Converts Harbor's `expires_at` into a Date, or null for a robot that never expires. */
export function expiresAtFromUnix(expiresAt: number): Date | null {
  return expiresAt === -1 ? null : new Date(expiresAt * 1000);
}

/**
 * Computes the `duration` (days from creation) that makes a robot created at `creationTime` expire
 * no earlier than `extendDays` after `now`. Whole days only, because Harbor's duration is in days.
 */
export function durationForExtension(creationTime: Date, now: Date, extendDays: number): number {
  if (!Number.isInteger(extendDays) || extendDays < 1) {
    throw new TypeError(
      `extendDays ${extendDays} is invalid: give a positive whole number of days`,
    );
  }
  const elapsedDays = Math.max(0, Math.ceil((now.getTime() - creationTime.getTime()) / MS_PER_DAY));
  return elapsedDays + extendDays;
}

/** Checks a lifetime given by the caller: -1 for no expiry or a positive whole number of days. */
export function assertDurationDays(durationDays: number): void {
  if (durationDays === -1 || (Number.isInteger(durationDays) && durationDays > 0)) return;
  throw new TypeError(
    `durationDays ${durationDays} is invalid: give -1 for no expiry or a positive whole number of days`,
  );
}
