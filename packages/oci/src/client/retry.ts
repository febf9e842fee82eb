import { setTimeout as delay } from 'node:timers/promises';
import { OciError } from '../errors.js';
import { parseRetryAfter } from '../headers.js';
import { RETRYABLE_NETWORK_CODES, RETRYABLE_STATUSES, type RetryPolicy } from './defaults.js';

/** Time source and sleep, injectable so retry tests run without real waiting. */
export interface Clock {
  now(): number;
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  sleep: async (ms, signal) => {
    await delay(ms, undefined, signal ? { signal } : undefined);
  },
};

/** Returns the backoff before retry number `retry` (1-based): full jitter over a capped doubling. */
export function backoffDelayMs(retry: number, policy: RetryPolicy, random: () => number): number {
  const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (retry - 1));
  return Math.floor(random() * ceiling);
}

/** Returns the wait that `Retry-After` requests, in milliseconds, capped by the policy. */
export function retryAfterMs(
  header: string | string[] | undefined,
  nowMs: number,
  policy: RetryPolicy,
): number | undefined {
  const value = Array.isArray(header) ? header[0] : header;
  const seconds = parseRetryAfter(value, nowMs);
  if (seconds === undefined) return undefined;
  return Math.min(seconds * 1000, policy.maxRetryAfterMs);
}

export function isRetryableStatus(status: number): boolean {
  return RETRYABLE_STATUSES.has(status);
}

/** Tells whether an error is a connection failure or timeout that a retry may cure. */
export function isRetryableError(error: unknown): boolean {
  if (error instanceof OciError) {
    if (error.code === 'TIMEOUT' || error.code === 'NETWORK_ERROR') return true;
    if (error.status !== undefined) return isRetryableStatus(error.status);
    return false;
  }
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && RETRYABLE_NETWORK_CODES.has(code);
}

/** Retry bookkeeping for one call: attempt count and overall deadline. */
export class RetryBudget {
  private attempts = 0;
  private stoppedByDeadline = false;
  private readonly deadline: number;

  constructor(
    private readonly policy: RetryPolicy,
    private readonly clock: Clock,
    private readonly random: () => number,
  ) {
    this.deadline = clock.now() + policy.deadlineMs;
  }

  get attempt(): number {
    return this.attempts;
  }

  /** Counts one attempt. */
  start(): void {
    this.attempts++;
  }

  /**
   * Waits before the next attempt and returns true, or returns false when the attempts or
   * the deadline are used up. `serverDelayMs` (from `Retry-After`) replaces the backoff.
   */
  async wait(serverDelayMs: number | undefined, signal?: AbortSignal): Promise<boolean> {
    if (this.attempts >= this.policy.maxAttempts) return false;
    const wait = serverDelayMs ?? backoffDelayMs(this.attempts, this.policy, this.random);
    if (this.clock.now() + wait > this.deadline) {
      this.stoppedByDeadline = true;
      return false;
    }
    await this.clock.sleep(wait, signal);
    return true;
  }

  /** Tells whether the deadline, not the attempt count, ended the retries. */
  deadlineExceeded(): boolean {
    return this.stoppedByDeadline || this.clock.now() >= this.deadline;
  }
}
