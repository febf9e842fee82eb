import type { FastifyRequest } from 'fastify';
import type { z } from 'zod';
import { badRequest, unprocessable } from './errors.js';
import type { HarborStore, SecurityContext } from './store.js';

/** Counters that tests read to see what the double was asked. */
export interface HarborDoubleCounters {
  /** Requests per `METHOD /route` pattern, e.g. `POST /api/v2.0/robots`. */
  requests: Map<string, number>;
  robotsCreated: number;
  robotsUpdated: number;
  robotsDeleted: number;
  secretsRefreshed: number;
  /** Token requests the registry's token service passed to the double. */
  tokenRequests: number;
  /** Token requests rejected because the credentials were wrong, disabled or expired. */
  tokenRejections: number;
}

export function createCounters(): HarborDoubleCounters {
  return {
    requests: new Map(),
    robotsCreated: 0,
    robotsUpdated: 0,
    robotsDeleted: 0,
    secretsRefreshed: 0,
    tokenRequests: 0,
    tokenRejections: 0,
  };
}

export interface RouteContext {
  store: HarborStore;
  counters: HarborDoubleCounters;
}

/** Splits an HTTP basic `Authorization` header. Any other scheme counts as no credentials. */
export function parseBasicAuth(header: string | undefined): {
  username?: string;
  password?: string;
} {
  if (!header?.startsWith('Basic ')) return {};
  const decoded = Buffer.from(header.slice('Basic '.length), 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) return {};
  return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

export function securityContext(store: HarborStore, request: FastifyRequest): SecurityContext {
  const { username, password } = parseBasicAuth(request.headers.authorization);
  return store.authenticate(username, password);
}

/** Parses a JSON body, with Harbor's 422 for a missing body and 400 for one that fails the schema. */
export function parseBody<T extends z.ZodType>(schema: T, body: unknown, name: string): z.infer<T> {
  if (body === undefined || body === null) throw unprocessable(`${name} in body is required`);
  const result = schema.safeParse(body);
  if (!result.success) {
    const issue = result.error.issues[0];
    const where = issue && issue.path.length > 0 ? issue.path.join('.') : name;
    throw badRequest(`parsing ${name} body failed at ${where}: ${issue?.message ?? 'invalid'}`);
  }
  return result.data;
}

export function parseId(raw: string, name: string): number {
  if (!/^[0-9]+$/.test(raw)) throw unprocessable(`${name} in path must be of type int64: "${raw}"`);
  return Number(raw);
}

export type QueryString = Record<string, string | undefined>;
