import type { IncomingHttpHeaders } from 'node:http';
import { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';
import { request } from './undici-core.js';
import { discardBody } from './body.js';
import { OciError, redactUrl, type OciErrorCode } from '../errors.js';
import type { Scope } from '../scope.js';
import type { AuthManager } from './auth.js';
import { MAX_REDIRECTS, USER_AGENT, type RetryPolicy, type Timeouts } from './defaults.js';
import { errorFromResponse, readBodyPrefix } from './response-errors.js';
import {
  isRetryableError,
  isRetryableStatus,
  retryAfterMs,
  RetryBudget,
  type Clock,
} from './retry.js';

export type HttpMethod = 'GET' | 'HEAD' | 'PUT' | 'POST' | 'PATCH' | 'DELETE';

/** A request body; a factory makes it replayable after a 401 or a retry. */
export type RequestBody = Buffer | (() => Readable);

export interface RequestSpec {
  method: HttpMethod;
  /** Registry host the request belongs to; selects credentials and tokens. */
  host: string;
  url: URL;
  scopes: readonly Scope[];
  headers?: Record<string, string>;
  body?: RequestBody;
  /** Statuses returned to the caller; any other status raises an `OciError`. */
  expect: readonly number[];
  /** Whether a failed attempt may be repeated; defaults to true for GET, HEAD and DELETE. */
  idempotent?: boolean;
  /** Follow 3xx responses (GET and HEAD only). */
  followRedirects?: boolean;
  notFoundCode?: OciErrorCode;
  signal?: AbortSignal;
}

export interface HttpResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: Readable;
  /** URL that produced this response, after redirects. */
  url: URL;
  redirected: boolean;
}

export interface RequesterOptions {
  dispatcher: Dispatcher;
  timeouts: Timeouts;
  retry: RetryPolicy;
  clock: Clock;
  random: () => number;
  auth: AuthManager;
  userAgent?: string;
}

const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);
// An expired pre-signed redirect target returns one of these, and the registry issues a new one.
const EXPIRED_TARGET_STATUSES = new Set([400, 401, 403]);

/** Returns the first value of a header. */
export function headerValue(headers: IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/** Translates an undici or socket error into an `OciError` that names the host. */
export function networkError(
  error: unknown,
  method: string,
  url: URL,
  timeouts: Timeouts,
): OciError {
  if (error instanceof OciError) return error;
  const code = (error as { code?: unknown } | null)?.code;
  const message = (error as Error | null)?.message ?? String(error);
  const host = url.host;
  const options = { method, url: url.toString(), cause: error };
  if (code === 'UND_ERR_CONNECT_TIMEOUT') {
    return new OciError(
      'TIMEOUT',
      `Connecting to ${host} timed out after ${timeouts.connectMs} ms (${method} ${redactUrl(url)}); check that the registry is reachable.`,
      options,
    );
  }
  if (code === 'UND_ERR_HEADERS_TIMEOUT') {
    return new OciError(
      'TIMEOUT',
      `${host} sent no response headers within ${timeouts.headersMs} ms (${method} ${redactUrl(url)}); the registry is overloaded or the link is stalled.`,
      options,
    );
  }
  if (code === 'UND_ERR_BODY_TIMEOUT') {
    return new OciError(
      'TIMEOUT',
      `${host} sent no body data for ${timeouts.bodyIdleMs} ms (${method} ${redactUrl(url)}); the link is stalled.`,
      options,
    );
  }
  if ((error as Error | null)?.name === 'AbortError' || code === 'ABORT_ERR') {
    return new OciError('ABORTED', `${method} ${redactUrl(url)} was aborted.`, options);
  }
  return new OciError(
    'NETWORK_ERROR',
    `${method} ${redactUrl(url)} failed on the connection to ${host}: ${typeof code === 'string' ? `${code} ` : ''}${message}; check the network path to the registry.`,
    options,
  );
}

/**
 * Sends registry requests: authentication with one re-send after a 401, redirects with
 * `Authorization` dropped across origins, retries with backoff for idempotent requests,
 * and typed errors for unexpected statuses.
 */
export class Requester {
  readonly timeouts: Timeouts;
  readonly clock: Clock;

  constructor(private readonly options: RequesterOptions) {
    this.timeouts = options.timeouts;
    this.clock = options.clock;
  }

  async request(spec: RequestSpec): Promise<HttpResponse> {
    const idempotent = spec.idempotent ?? ['GET', 'HEAD', 'DELETE'].includes(spec.method);
    const budget = new RetryBudget(this.options.retry, this.clock, this.options.random);
    let returnedToRegistry = false;
    for (;;) {
      budget.start();
      let response: HttpResponse;
      try {
        response = await this.sendAuthenticated(spec);
      } catch (error) {
        if (idempotent && isRetryableError(error) && (await budget.wait(undefined, spec.signal))) {
          continue;
        }
        throw this.finalError(error, budget);
      }
      if (spec.expect.includes(response.status)) return response;

      if (
        response.redirected &&
        EXPIRED_TARGET_STATUSES.has(response.status) &&
        !returnedToRegistry
      ) {
        // Go back to the registry once for a fresh redirect instead of failing on a stale one.
        returnedToRegistry = true;
        discardBody(response.body);
        continue;
      }
      const retryAfter = retryAfterMs(
        response.headers['retry-after'],
        this.clock.now(),
        this.options.retry,
      );
      const text = await this.errorText(spec, response);
      const error = errorFromResponse(
        {
          method: spec.method,
          url: response.url.toString(),
          status: response.status,
          ...(spec.notFoundCode !== undefined ? { notFoundCode: spec.notFoundCode } : {}),
          ...(retryAfter !== undefined ? { retryAfterSeconds: retryAfter / 1000 } : {}),
        },
        text,
      );
      if (
        idempotent &&
        isRetryableStatus(response.status) &&
        (await budget.wait(retryAfter, spec.signal))
      ) {
        continue;
      }
      throw this.finalError(error, budget);
    }
  }

  private finalError(error: unknown, budget: RetryBudget): unknown {
    if (!budget.deadlineExceeded() || !(error instanceof OciError)) return error;
    return new OciError(
      'DEADLINE_EXCEEDED',
      `Gave up after ${budget.attempt} attempts because the ${this.options.retry.deadlineMs} ms deadline passed; last error: ${error.message}`,
      {
        ...(error.status !== undefined ? { status: error.status } : {}),
        ...(error.method !== undefined ? { method: error.method } : {}),
        ...(error.url !== undefined ? { url: error.url } : {}),
        cause: error,
      },
    );
  }

  private async errorText(spec: RequestSpec, response: HttpResponse): Promise<string> {
    // docker-registry 2.8 sends 416 with a Content-Length it never fills and then closes the
    // socket, so its body is never read.
    if (spec.method === 'HEAD' || response.status === 416) {
      discardBody(response.body);
      return '';
    }
    return readBodyPrefix(response.body);
  }

  private async sendAuthenticated(spec: RequestSpec): Promise<HttpResponse> {
    const auth = this.options.auth;
    const authorization = await auth.authorization(spec.host, spec.scopes);
    const first = await this.sendFollowingRedirects(spec, authorization);
    if (first.status !== 401 || first.redirected) return first;

    const challenge = first.headers['www-authenticate'];
    const text = await this.errorText(spec, first);
    const next = await auth.onUnauthorized(spec.host, challenge, spec.scopes, authorization);
    if (next === undefined) {
      throw errorFromResponse(
        { method: spec.method, url: first.url.toString(), status: 401 },
        text,
      );
    }
    return this.sendFollowingRedirects(spec, next);
  }

  private async sendFollowingRedirects(
    spec: RequestSpec,
    authorization: string | undefined,
  ): Promise<HttpResponse> {
    const headers: Record<string, string> = {
      'user-agent': this.options.userAgent ?? USER_AGENT,
      // Bytes are hashed as received, so no content coding is requested.
      'accept-encoding': 'identity',
      ...spec.headers,
    };
    if (authorization !== undefined) headers.authorization = authorization;
    const origin = spec.url.origin;
    let url = spec.url;
    for (let hops = 0; ; hops++) {
      const response = await this.send(spec, url, headers);
      const location = headerValue(response.headers, 'location');
      const redirectable =
        spec.followRedirects === true && (spec.method === 'GET' || spec.method === 'HEAD');
      if (!redirectable || !REDIRECT_STATUSES.has(response.status) || location === undefined) {
        return { ...response, url, redirected: hops > 0 };
      }
      discardBody(response.body);
      if (hops >= MAX_REDIRECTS) {
        throw new OciError(
          'TOO_MANY_REDIRECTS',
          `${spec.method} ${redactUrl(spec.url)} was redirected more than ${MAX_REDIRECTS} times; check the registry's storage redirect configuration.`,
          { method: spec.method, url: spec.url.toString(), status: response.status },
        );
      }
      url = new URL(location, url);
      // Credentials for the registry must not reach another origin, e.g. a blob store.
      if (url.origin !== origin) delete headers.authorization;
    }
  }

  private async send(
    spec: RequestSpec,
    url: URL,
    headers: Record<string, string>,
  ): Promise<Omit<HttpResponse, 'url' | 'redirected'>> {
    let body: Buffer | Readable | undefined;
    if (spec.body !== undefined) body = typeof spec.body === 'function' ? spec.body() : spec.body;
    try {
      const response = await request(url, {
        dispatcher: this.options.dispatcher,
        method: spec.method,
        headers,
        ...(body !== undefined ? { body } : {}),
        headersTimeout: this.timeouts.headersMs,
        bodyTimeout: this.timeouts.bodyIdleMs,
        ...(spec.signal !== undefined ? { signal: spec.signal } : {}),
      });
      return { status: response.statusCode, headers: response.headers, body: response.body };
    } catch (error) {
      if (body instanceof Readable) body.destroy();
      throw networkError(error, spec.method, url, this.timeouts);
    }
  }
}
