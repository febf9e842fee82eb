/** Exponential backoff with full jitter, capped. */
export interface BackoffPolicy {
  /** Delay before the first retry, in milliseconds. */
  initialMs: number;
  /** Upper bound of any delay, in milliseconds. */
  maxMs: number;
  /** Growth factor per failed attempt. */
  multiplier: number;
}

/** Ground Control polls: start at 1 s and cap at 60 s, so a site reconnects within a minute. */
export const GROUND_CONTROL_BACKOFF: BackoffPolicy = {
  initialMs: 1_000,
  maxMs: 60_000,
  multiplier: 2,
};

/** Failed artifacts: start at 5 s and cap at 5 min, so one broken artifact costs little. */
export const ARTIFACT_RETRY_BACKOFF: BackoffPolicy = {
  initialMs: 5_000,
  maxMs: 300_000,
  multiplier: 2,
};

/**
 * Returns the delay before retry number `attempt` (1-based). The delay is drawn uniformly from
 * half of the capped exponential value up to that value, so many satellites that lost Ground
 * Control at the same moment do not return in step.
 */
export function backoffDelayMs(
  policy: BackoffPolicy,
  attempt: number,
  random: () => number = Math.random,
): number {
  const exponent = Math.max(0, attempt - 1);
  const ceiling = Math.min(policy.maxMs, policy.initialMs * policy.multiplier ** exponent);
  return Math.round(ceiling / 2 + random() * (ceiling / 2));
}
