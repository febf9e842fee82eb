/** Time limits of one HTTP hop, in milliseconds. */
export interface Timeouts {
  /** TCP and TLS connection set-up. */
  connectMs: number;
  /** Wait for the response status line and headers after the request is sent. */
  headersMs: number;
  /** Maximum pause between two body chunks, after which a stalled stream fails. */
  bodyIdleMs: number;
}

// Long enough for a registry behind a slow proxy, short enough that a dead link is noticed
// well before an operator would give up on a sync.
export const DEFAULT_TIMEOUTS: Timeouts = {
  connectMs: 10_000,
  headersMs: 30_000,
  bodyIdleMs: 60_000,
};

/** Retry policy for idempotent requests. */
export interface RetryPolicy {
  /** Attempts per request including the first one. */
  maxAttempts: number;
  /** First backoff in milliseconds; each retry doubles it, with full jitter. */
  baseDelayMs: number;
  /** Cap on one backoff in milliseconds. */
  maxDelayMs: number;
  /** Cap on a server's `Retry-After` in milliseconds, so a hostile value cannot park a sync. */
  maxRetryAfterMs: number;
  /** Overall time budget of one call in milliseconds, retries and backoff included. */
  deadlineMs: number;
}

export const DEFAULT_RETRY_POLICY: RetryPolicy = {
  maxAttempts: 5,
  baseDelayMs: 200,
  maxDelayMs: 10_000,
  maxRetryAfterMs: 60_000,
  deadlineMs: 10 * 60_000,
};

/** HTTP statuses worth retrying: timeouts, rate limits and transient server failures. */
export const RETRYABLE_STATUSES: ReadonlySet<number> = new Set([408, 429, 500, 502, 503, 504]);

/** Error codes of undici and Node sockets that mean the connection failed, not the request. */
export const RETRYABLE_NETWORK_CODES: ReadonlySet<string> = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
  'UND_ERR_SOCKET',
  'UND_ERR_CLOSED',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
]);

/** Redirect hops followed for blob GET and HEAD; registries use one, CDNs sometimes two. */
export const MAX_REDIRECTS = 5;

/** Bytes of an error body read to find the registry error envelope. */
export const ERROR_BODY_MAX_BYTES = 64 * 1024;

/** Bytes of a token endpoint response read at most; real tokens are a few KiB. */
export const TOKEN_RESPONSE_MAX_BYTES = 1024 * 1024;

/** Token lifetime assumed when the token response has no `expires_in` (Docker token spec). */
export const DEFAULT_TOKEN_LIFETIME_SECONDS = 60;

/** Tokens are renewed this share of their lifetime early, at most `TOKEN_RENEW_MAX_MS`. */
export const TOKEN_RENEW_FRACTION = 0.1;
export const TOKEN_RENEW_MAX_MS = 10_000;

/** Chunk size of a chunked (PATCH) upload in bytes. */
export const DEFAULT_UPLOAD_CHUNK_BYTES = 16 * 1024 * 1024;

/**
 * Resumes in a row that bring no new bytes before a blob download fails. A resume that makes
 * progress resets the count, so a link that drops every few MiB still finishes.
 */
export const MAX_STALLED_RESUMES = 5;

/** Attempts of one blob upload; docker-registry 2.8 cannot resume, so each one restarts. */
export const MAX_UPLOAD_ATTEMPTS = 5;

/** Pages followed in tags/list and _catalog before the listing counts as a loop. */
export const MAX_PAGES = 10_000;

/** Page size requested from tags/list and _catalog. */
export const DEFAULT_PAGE_SIZE = 1000;

/** Bytes of a JSON listing (tags page, catalog page, token) read at most. */
export const LISTING_MAX_BYTES = 16 * 1024 * 1024;

export const USER_AGENT = 'edge-oci/0.1';
