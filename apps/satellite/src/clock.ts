/**
 * Tracks the offset between this machine's clock and Ground Control's, taken from the `Date`
 * header of its responses, so that JWT `iat`/`exp` stay valid on a site whose clock drifts.
 * `Date` has one-second resolution, so the offset is accurate to about a second.
 */
export class ClockOffset {
  #offsetMs = 0;

  constructor(private readonly localNow: () => number = Date.now) {}

  /** Records the server time of a response; `sentAt` is the local time the request was sent. */
  observe(dateHeader: string | undefined, sentAt: number, receivedAt = this.localNow()): void {
    if (!dateHeader) return;
    const serverMs = Date.parse(dateHeader);
    if (Number.isNaN(serverMs)) return;
    // The server stamped the response somewhere between send and receive; take the midpoint.
    // `Date` truncates to whole seconds, so add half a second as the expected truncation.
    const localMidpoint = (sentAt + receivedAt) / 2;
    this.#offsetMs = Math.round(serverMs + 500 - localMidpoint);
  }

  get offsetMs(): number {
    return this.#offsetMs;
  }

  /** Current time on Ground Control's clock, in milliseconds since the epoch. */
  now(): number {
    return this.localNow() + this.#offsetMs;
  }
}
