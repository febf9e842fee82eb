import type { KeyObject } from 'node:crypto';
import {
  PROTOCOL_VERSION,
  PROTOCOL_VERSION_HEADER,
  SATELLITE_API_PREFIX,
  desiredStateSchema,
  errorEnvelopeSchema,
  joinResponseSchema,
  statusResponseSchema,
} from '@edge/contract';
import type {
  DesiredState,
  Ed25519PublicJwk,
  JoinResponse,
  StatusReport,
  StatusResponse,
} from '@edge/contract';
import { request } from 'undici';
import type { Dispatcher } from 'undici';
import type { z } from 'zod';
import type { ClockOffset } from './clock.js';
import { SatelliteError } from './errors.js';
import type { SatelliteErrorCode } from './errors.js';
import { signSatelliteJwt } from './identity.js';

/** Time allowed for join and status calls, in milliseconds. */
export const GROUND_CONTROL_REQUEST_TIMEOUT_MS = 30_000;
/** Extra time beyond the long-poll `wait` before a state request counts as hung, in ms. */
export const LONG_POLL_GRACE_MS = 15_000;
/** Largest Ground Control response body read, in bytes: desired states of thousands of artifacts. */
export const MAX_RESPONSE_BYTES = 32 * 1024 * 1024;

export type StateResult =
  | { changed: true; state: DesiredState; etag: string | undefined }
  | { changed: false; etag: string | undefined };

/** Error from Ground Control with its HTTP status and contract error code. */
export class GroundControlError extends SatelliteError {
  readonly status: number;
  readonly remoteCode: string;

  constructor(status: number, remoteCode: string, message: string) {
    super(localCodeFor(status, remoteCode), message);
    this.status = status;
    this.remoteCode = remoteCode;
  }
}

/**
 * Client of the satellite protocol. Responses are parsed with the contract's loose schemas, so
 * fields added by a newer Ground Control are ignored. Every response's `Date` header updates
 * the clock offset used to sign request JWTs.
 */
export class GroundControlClient {
  readonly #baseUrl: string;
  readonly #dispatcher: Dispatcher;
  readonly #clock: ClockOffset;
  #identity: { satelliteId: string; privateKey: KeyObject } | undefined;

  constructor(options: { baseUrl: string; dispatcher: Dispatcher; clock: ClockOffset }) {
    this.#baseUrl = options.baseUrl.replace(/\/+$/, '');
    this.#dispatcher = options.dispatcher;
    this.#clock = options.clock;
  }

  setIdentity(satelliteId: string, privateKey: KeyObject): void {
    this.#identity = { satelliteId, privateKey };
  }

  async join(input: {
    token: string;
    publicKey: Ed25519PublicJwk;
    hostname: string;
    version: string;
  }): Promise<JoinResponse> {
    const body = { protocolVersion: PROTOCOL_VERSION, ...input };
    const response = await this.#send('POST', '/join', { body, authenticated: false });
    return this.#parse(response, joinResponseSchema, 'join');
  }

  /** Fetches the desired state, holding the request up to `waitSeconds` while it is unchanged. */
  async getState(options: {
    etag?: string | undefined;
    waitSeconds: number;
    signal?: AbortSignal;
  }): Promise<StateResult> {
    const headers: Record<string, string> = {};
    if (options.etag) headers['if-none-match'] = options.etag;
    const response = await this.#send('GET', `/state?wait=${options.waitSeconds}`, {
      headers,
      authenticated: true,
      timeoutMs: options.waitSeconds * 1000 + LONG_POLL_GRACE_MS,
      ...(options.signal ? { signal: options.signal } : {}),
    });
    const etag = headerValue(response.headers.etag);
    if (response.statusCode === 304) {
      await response.body.dump();
      return { changed: false, etag: etag ?? options.etag };
    }
    const state = await this.#parse(response, desiredStateSchema, 'state');
    return { changed: true, state, etag };
  }

  async postStatus(report: StatusReport): Promise<StatusResponse> {
    const response = await this.#send('POST', '/status', { body: report, authenticated: true });
    return this.#parse(response, statusResponseSchema, 'status');
  }

  async #send(
    method: 'GET' | 'POST',
    path: string,
    options: {
      body?: unknown;
      headers?: Record<string, string>;
      authenticated: boolean;
      timeoutMs?: number;
      signal?: AbortSignal;
    },
  ): Promise<Dispatcher.ResponseData> {
    const headers: Record<string, string> = {
      accept: 'application/json',
      [PROTOCOL_VERSION_HEADER]: String(PROTOCOL_VERSION),
      ...options.headers,
    };
    if (options.authenticated) {
      if (!this.#identity) throw new TypeError('GroundControlClient.setIdentity must run first');
      const jwt = await signSatelliteJwt(
        this.#identity.satelliteId,
        this.#identity.privateKey,
        this.#clock,
      );
      headers.authorization = `Bearer ${jwt}`;
    }
    if (options.body !== undefined) headers['content-type'] = 'application/json';
    const url = `${this.#baseUrl}${SATELLITE_API_PREFIX}${path}`;
    const timeoutMs = options.timeoutMs ?? GROUND_CONTROL_REQUEST_TIMEOUT_MS;
    const sentAt = Date.now();
    let response: Dispatcher.ResponseData;
    try {
      response = await request(url, {
        method,
        headers,
        dispatcher: this.#dispatcher,
        headersTimeout: timeoutMs,
        bodyTimeout: timeoutMs,
        ...(options.body !== undefined ? { body: JSON.stringify(options.body) } : {}),
        ...(options.signal ? { signal: options.signal } : {}),
      });
    } catch (error) {
      if (options.signal?.aborted) throw error;
      throw new SatelliteError(
        'GROUND_CONTROL_UNREACHABLE',
        `${method} ${url} failed: ${(error as Error).message}. Check the Ground Control URL, the network and any HTTPS_PROXY setting.`,
        { cause: error },
      );
    }
    this.#clock.observe(headerValue(response.headers.date), sentAt);
    if (response.statusCode >= 400) await this.#throwForStatus(method, url, response);
    return response;
  }

  async #throwForStatus(
    method: string,
    url: string,
    response: Dispatcher.ResponseData,
  ): Promise<never> {
    const text = await readLimited(response, 64 * 1024).catch(() => '');
    let remoteCode = `HTTP_${response.statusCode}`;
    let remoteMessage = text.slice(0, 300);
    try {
      const envelope = errorEnvelopeSchema.parse(JSON.parse(text));
      remoteCode = envelope.error.code;
      remoteMessage = envelope.error.message;
    } catch {
      // Not the contract's envelope (a proxy or load balancer answered); keep the raw text.
    }
    if (response.statusCode >= 500 || response.statusCode === 429) {
      throw new SatelliteError(
        'GROUND_CONTROL_UNREACHABLE',
        `${method} ${url} returned ${response.statusCode} ${remoteCode}: ${remoteMessage}. The satellite retries with backoff.`,
      );
    }
    throw new GroundControlError(
      response.statusCode,
      remoteCode,
      `${method} ${url} was rejected with ${response.statusCode} ${remoteCode}: ${remoteMessage}`,
    );
  }

  async #parse<T extends z.ZodType>(
    response: Dispatcher.ResponseData,
    schema: T,
    what: string,
  ): Promise<z.output<T>> {
    const text = await readLimited(response, MAX_RESPONSE_BYTES);
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      throw new SatelliteError(
        'GROUND_CONTROL_RESPONSE_INVALID',
        `Ground Control's ${what} response is not JSON (status ${response.statusCode}). Check that the URL points at Ground Control, not at a proxy page.`,
      );
    }
    const parsed = schema.safeParse(json);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw new SatelliteError(
        'GROUND_CONTROL_RESPONSE_INVALID',
        `Ground Control's ${what} response does not match protocol version ${PROTOCOL_VERSION}: ${issue?.path.join('.') ?? ''} ${issue?.message ?? ''}. Upgrade the satellite or Ground Control.`,
      );
    }
    return parsed.data;
  }
}

function localCodeFor(status: number, remoteCode: string): SatelliteErrorCode {
  if (remoteCode === 'SATELLITE_REVOKED') return 'SATELLITE_REVOKED';
  if (remoteCode.startsWith('JOIN_')) return 'JOIN_REJECTED';
  if (status === 401) return 'IDENTITY_REJECTED';
  return 'GROUND_CONTROL_REJECTED';
}

function headerValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

async function readLimited(response: Dispatcher.ResponseData, limit: number): Promise<string> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of response.body) {
    const buffer = chunk as Buffer;
    total += buffer.length;
    if (total > limit) {
      response.body.destroy();
      throw new SatelliteError(
        'GROUND_CONTROL_RESPONSE_INVALID',
        `Ground Control's response is larger than ${limit} bytes; the satellite stopped reading it.`,
      );
    }
    chunks.push(buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}
