import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { Agent, request } from 'undici';
import type { Dispatcher } from 'undici';
import { HarborClientError, NEXT_STEP, errorCodeForStatus } from './errors.js';
import { harborErrorsSchema } from './schemas.js';

// HTTP transport of the Harbor client on undici 7: basic auth, one timeout for the whole exchange,
// bounded body reads, and errors mapped to `HarborClientError`. It never logs headers or bodies,
// so neither the account password nor a robot secret reaches the logs.

/** Time for one request including its body, in milliseconds, a wide bound for small JSON calls. */
export const DEFAULT_TIMEOUT_MS = 15_000;
/** Time to open the TCP and TLS connection, in milliseconds. */
const CONNECT_TIMEOUT_MS = 5_000;
/** Largest success body read, in bytes, room for a page of 100 robots with many projects each. */
const MAX_RESPONSE_BYTES = 4 * 1024 * 1024;
/** Largest error body read, in bytes, because Harbor's error envelope is a few hundred bytes. */
const MAX_ERROR_BYTES = 64 * 1024;
const TIMEOUT_ERROR_CODES = new Set([
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
]);

export interface HarborHttpOptions {
  /** Harbor's base URL, e.g. `https://harbor.example.com`, to which the client appends `/api/v2.0`. */
  url: string;
  username: string;
  password: string;
  timeoutMs?: number;
  /** PEM certificates to trust in place of the system store. */
  caBundle?: string;
  /** Skips TLS verification, for tests only. */
  insecureSkipTlsVerify?: boolean;
  logger?: Logger;
}

export interface HarborResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  /** Parsed JSON, or undefined for an empty body. */
  json: unknown;
}

export interface SendOptions {
  query?: Record<string, string>;
  body?: unknown;
  /** Send the account's credentials (default true). */
  authenticate?: boolean;
  /** Statuses that count as success. Any other becomes a `HarborClientError`. */
  expect: readonly number[];
}

function headerValue(headers: HarborResponse['headers'], name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/** A response body longer than the client reads. */
class BodyTooLargeError extends Error {
  constructor(readonly limit: number) {
    super(`response body exceeds ${limit} bytes`);
    this.name = 'BodyTooLargeError';
  }
}

async function readBody(body: Dispatcher.ResponseData['body'], limit: number): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    const buffer = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as Uint8Array);
    size += buffer.length;
    if (size > limit) {
      body.destroy();
      throw new BodyTooLargeError(limit);
    }
    chunks.push(buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

export class HarborHttp {
  readonly baseUrl: URL;
  readonly username: string;
  readonly #authorization: string;
  readonly #timeoutMs: number;
  readonly #dispatcher: Agent;
  readonly #logger: Logger | undefined;

  constructor(options: HarborHttpOptions) {
    let base: URL;
    try {
      base = new URL(options.url);
    } catch (err) {
      throw new TypeError(
        `Harbor URL ${JSON.stringify(options.url)} is invalid: give an absolute http(s) URL`,
        {
          cause: err,
        },
      );
    }
    if (base.protocol !== 'http:' && base.protocol !== 'https:') {
      throw new TypeError(`Harbor URL ${base.origin} is invalid: use http or https`);
    }
    this.baseUrl = base;
    this.username = options.username;
    this.#authorization = `Basic ${Buffer.from(`${options.username}:${options.password}`).toString('base64')}`;
    this.#timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.#logger = options.logger;
    this.#dispatcher = new Agent({
      connect: {
        timeout: CONNECT_TIMEOUT_MS,
        ...(options.caBundle === undefined ? {} : { ca: options.caBundle }),
        rejectUnauthorized: options.insecureSkipTlsVerify !== true,
      },
    });
  }

  /** Builds the URL of an API path such as `/robots`. */
  apiUrl(path: string, query?: Record<string, string>): URL {
    const prefix = this.baseUrl.pathname.replace(/\/+$/, '');
    const url = new URL(`${prefix}/api/v2.0${path}`, this.baseUrl);
    for (const [key, value] of Object.entries(query ?? {})) url.searchParams.set(key, value);
    return url;
  }

  async send(
    method: Dispatcher.HttpMethod,
    path: string,
    options: SendOptions,
  ): Promise<HarborResponse> {
    const url = this.apiUrl(path, options.query);
    const apiPath = url.pathname;
    const headers: Record<string, string> = {
      accept: 'application/json',
      'x-request-id': randomUUID(),
    };
    if (options.authenticate !== false) headers.authorization = this.#authorization;
    if (options.body !== undefined) headers['content-type'] = 'application/json';

    const started = Date.now();
    let response: Dispatcher.ResponseData;
    let text: string;
    try {
      response = await request(url, {
        method,
        headers,
        dispatcher: this.#dispatcher,
        signal: AbortSignal.timeout(this.#timeoutMs),
        ...(options.body === undefined ? {} : { body: JSON.stringify(options.body) }),
      });
      const success = options.expect.includes(response.statusCode);
      if (method === 'HEAD') {
        // A HEAD response has no body, but undici frees the connection only once it is consumed.
        await response.body.dump();
        text = '';
      } else {
        text = await readBody(response.body, success ? MAX_RESPONSE_BYTES : MAX_ERROR_BYTES);
      }
    } catch (err) {
      if (err instanceof BodyTooLargeError) {
        throw new HarborClientError(
          'HARBOR_INVALID_RESPONSE',
          `Harbor ${method} ${apiPath} returned a body over ${err.limit} bytes; ${NEXT_STEP.HARBOR_INVALID_RESPONSE}`,
          { method, path: apiPath, cause: err },
        );
      }
      throw this.#transportError(err, method, apiPath);
    }

    const requestId = headerValue(response.headers, 'x-request-id');
    this.#logger?.debug(
      {
        method,
        path: apiPath,
        status: response.statusCode,
        durationMs: Date.now() - started,
        harborRequestId: requestId,
      },
      'harbor request',
    );
    if (!options.expect.includes(response.statusCode)) {
      throw this.#statusError(response.statusCode, text, method, apiPath, requestId);
    }
    let json: unknown;
    if (text.trim() !== '') {
      try {
        json = JSON.parse(text);
      } catch (err) {
        throw new HarborClientError(
          'HARBOR_INVALID_RESPONSE',
          `Harbor ${method} ${apiPath} returned ${response.statusCode} with a body that is not JSON; ${NEXT_STEP.HARBOR_INVALID_RESPONSE}`,
          { status: response.statusCode, method, path: apiPath, requestId, cause: err },
        );
      }
    }
    return { status: response.statusCode, headers: response.headers, json };
  }

  /** Sends `GET /ping`, which needs no credentials and returns plain text. */
  async ping(): Promise<string> {
    const url = this.apiUrl('/ping');
    try {
      const response = await request(url, {
        method: 'GET',
        dispatcher: this.#dispatcher,
        signal: AbortSignal.timeout(this.#timeoutMs),
      });
      const text = await readBody(response.body, MAX_ERROR_BYTES);
      if (response.statusCode !== 200) {
        throw this.#statusError(
          response.statusCode,
          text,
          'GET',
          url.pathname,
          headerValue(response.headers, 'x-request-id'),
        );
      }
      return text.trim();
    } catch (err) {
      if (err instanceof HarborClientError) throw err;
      throw this.#transportError(err, 'GET', url.pathname);
    }
  }

  async close(): Promise<void> {
    await this.#dispatcher.close();
  }

  #transportError(err: unknown, method: string, path: string): HarborClientError {
    const code = (err as { code?: unknown }).code;
    const name = (err as { name?: unknown }).name;
    const timedOut =
      name === 'TimeoutError' || (typeof code === 'string' && TIMEOUT_ERROR_CODES.has(code));
    const target = `${this.baseUrl.origin}${path}`;
    if (timedOut) {
      return new HarborClientError(
        'HARBOR_TIMEOUT',
        `Harbor ${method} ${target} timed out after ${this.#timeoutMs} ms; ${NEXT_STEP.HARBOR_TIMEOUT}`,
        { method, path, cause: err },
      );
    }
    const reason = err instanceof Error ? err.message : String(err);
    return new HarborClientError(
      'HARBOR_UNREACHABLE',
      `Harbor ${method} ${target} failed: ${reason}; ${NEXT_STEP.HARBOR_UNREACHABLE}`,
      { method, path, cause: err },
    );
  }

  #statusError(
    status: number,
    text: string,
    method: string,
    path: string,
    requestId: string | undefined,
  ): HarborClientError {
    let harborCode: string | undefined;
    let harborMessage: string | undefined;
    try {
      const parsed = harborErrorsSchema.safeParse(JSON.parse(text));
      if (parsed.success) {
        harborCode = parsed.data.errors[0]?.code;
        harborMessage = parsed.data.errors[0]?.message;
      }
    } catch {
      // A body that is not the JSON envelope (an HTML page from a proxy, an empty HEAD body)
      // leaves only the status to report.
    }
    const code = errorCodeForStatus(status);
    const detail = harborMessage === undefined ? '' : `: ${harborMessage}`;
    const account =
      code === 'HARBOR_UNAUTHORIZED' || code === 'HARBOR_FORBIDDEN'
        ? ` for account ${this.username}`
        : '';
    return new HarborClientError(
      code,
      `Harbor ${method} ${path} returned ${status}${harborCode === undefined ? '' : ` ${harborCode}`}${account}${detail}; ${NEXT_STEP[code]}`,
      { status, method, path, harborCode, requestId },
    );
  }
}
