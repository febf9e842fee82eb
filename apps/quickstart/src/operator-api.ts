import { request } from 'undici';
import type { z } from 'zod';
import { errorEnvelopeSchema, loginResponseSchema, OPERATOR_API_PREFIX } from '@edge/contract';
import { QuickstartError } from './errors.js';

/** Time allowed for one operator API request, in ms; group creation resolves tags first. */
const REQUEST_TIMEOUT_MS = 30_000;

type Method = 'GET' | 'POST' | 'PATCH' | 'DELETE';

/** Client of Ground Control's operator REST API, logged in with a session token. */
export class OperatorApi {
  #token = '';

  constructor(readonly baseUrl: string) {}

  /** Logs in with username and password and keeps the session token for later requests. */
  async login(username: string, password: string): Promise<void> {
    const response = await this.call('POST', '/auth/login', loginResponseSchema, {
      username,
      password,
    });
    this.#token = response.token;
  }

  /** GET that returns undefined on 404 NOT_FOUND instead of failing. */
  async find<S extends z.ZodType>(path: string, schema: S): Promise<z.infer<S> | undefined> {
    return this.send('GET', path, schema, undefined, true);
  }

  call<S extends z.ZodType>(
    method: Method,
    path: string,
    schema: S,
    body?: unknown,
  ): Promise<z.infer<S>> {
    return this.send(method, path, schema, body, false) as Promise<z.infer<S>>;
  }

  private async send<S extends z.ZodType>(
    method: Method,
    path: string,
    schema: S,
    body: unknown,
    notFoundIsUndefined: boolean,
  ): Promise<z.infer<S> | undefined> {
    const url = `${this.baseUrl}${OPERATOR_API_PREFIX}${path}`;
    const operation = `${method} ${OPERATOR_API_PREFIX}${path}`;
    let statusCode: number;
    let text: string;
    try {
      const response = await request(url, {
        method,
        headers: {
          ...(this.#token !== '' ? { authorization: `Bearer ${this.#token}` } : {}),
          ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
        },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        headersTimeout: REQUEST_TIMEOUT_MS,
        bodyTimeout: REQUEST_TIMEOUT_MS,
      });
      statusCode = response.statusCode;
      text = await response.body.text();
    } catch (error) {
      throw new QuickstartError(
        'GROUND_CONTROL_REQUEST_FAILED',
        `${operation} failed: ${error instanceof Error ? error.message : String(error)}; check that ` +
          `Ground Control runs at ${this.baseUrl} and read its log`,
        { cause: error },
      );
    }
    if (statusCode === 404 && notFoundIsUndefined) return undefined;
    if (statusCode >= 400) throw apiError(operation, statusCode, text);
    const parsed = schema.safeParse(text === '' ? null : JSON.parse(text));
    if (!parsed.success) {
      throw new QuickstartError(
        'GROUND_CONTROL_REQUEST_FAILED',
        `${operation} returned a body that does not match the operator API contract ` +
          `(${parsed.error.issues[0]?.message ?? 'invalid'}); Ground Control and the quickstart ` +
          'are from different builds: run pnpm build',
      );
    }
    return parsed.data;
  }
}

function apiError(operation: string, statusCode: number, text: string): QuickstartError {
  let detail = `HTTP ${statusCode}`;
  try {
    const envelope = errorEnvelopeSchema.safeParse(JSON.parse(text));
    if (envelope.success) {
      detail = `HTTP ${statusCode} ${envelope.data.error.code}: ${envelope.data.error.message}`;
    }
  } catch {
    // A body that is not JSON: report the status only.
  }
  return new QuickstartError('GROUND_CONTROL_REQUEST_FAILED', `${operation} failed with ${detail}`);
}
