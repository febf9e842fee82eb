import type { IncomingMessage } from 'node:http';
import type { FastifyReply } from 'fastify';
import { RegistryError } from '../errors.js';

/** Body of a distribution-spec error response. */
export function errorEnvelope(code: string, message: string, detail?: unknown): unknown {
  return { errors: [{ code, message, ...(detail === undefined ? {} : { detail }) }] };
}

export function sendError(reply: FastifyReply, error: RegistryError): FastifyReply {
  return reply
    .code(error.status)
    .type('application/json')
    .send(errorEnvelope(error.code, error.message, error.detail));
}

export function etagOf(digest: string): string {
  return `"${digest}"`;
}

/** True when an If-None-Match header lists the ETag (or `*`). */
export function matchesIfNoneMatch(header: string | undefined, etag: string): boolean {
  if (header === undefined) return false;
  return header.split(',').some((value) => {
    const trimmed = value.trim().replace(/^W\//, '');
    return trimmed === '*' || trimmed === etag;
  });
}

/**
 * Media types listed in Accept, without parameters; null when the client accepts anything
 * (no header, `* / *` or `application/*`).
 */
export function acceptedMediaTypes(header: string | string[] | undefined): Set<string> | null {
  if (header === undefined) return null;
  const values = (Array.isArray(header) ? header : [header])
    .flatMap((value) => value.split(','))
    .map((value) => (value.split(';')[0] ?? '').trim().toLowerCase())
    .filter((value) => value.length > 0);
  if (values.length === 0 || values.includes('*/*') || values.includes('application/*'))
    return null;
  return new Set(values);
}

export type RangeRequest =
  | { kind: 'none' }
  | { kind: 'satisfiable'; start: number; end: number }
  | { kind: 'unsatisfiable' };

/**
 * Parses a single `bytes=` range against a blob of `size` bytes (RFC 9110). A header this server
 * does not handle (several ranges, another unit, bad syntax) is ignored, as RFC 9110 allows, and
 * the whole blob is sent.
 */
export function parseRange(header: string | undefined, size: number): RangeRequest {
  if (header === undefined) return { kind: 'none' };
  const match = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!match) return { kind: 'none' };
  const [, first = '', last = ''] = match;
  if (first === '' && last === '') return { kind: 'none' };
  if (first === '') {
    const suffix = Number(last);
    if (suffix === 0 || size === 0) return { kind: 'unsatisfiable' };
    return { kind: 'satisfiable', start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = Number(first);
  const end = last === '' ? size - 1 : Math.min(Number(last), size - 1);
  if (last !== '' && Number(last) < start) return { kind: 'none' };
  if (start >= size) return { kind: 'unsatisfiable' };
  return { kind: 'satisfiable', start, end };
}

/** Reads a request body of at most `limit` bytes; SIZE_INVALID (413) beyond it. */
export async function readBody(request: IncomingMessage, limit: number): Promise<Buffer> {
  const declared = Number(request.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) {
    request.resume();
    throw tooLarge(limit);
  }
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of request as AsyncIterable<Buffer>) {
    total += chunk.length;
    if (total > limit) {
      request.resume();
      throw tooLarge(limit);
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

function tooLarge(limit: number): RegistryError {
  return new RegistryError(
    'SIZE_INVALID',
    `manifest is larger than the limit of ${limit} bytes: push a smaller manifest`,
    undefined,
    { status: 413 },
  );
}

export function firstHeader(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

/** True when the request announces a body (non-zero Content-Length or chunked encoding). */
export function hasBody(request: IncomingMessage): boolean {
  const length = request.headers['content-length'];
  if (length !== undefined) return Number(length) > 0;
  return request.headers['transfer-encoding'] !== undefined;
}
