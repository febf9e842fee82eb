import type { Readable } from 'node:stream';
import { z } from 'zod';
import { OciError, redactUrl, type OciErrorCode, type RegistryErrorEntry } from '../errors.js';
import { ERROR_BODY_MAX_BYTES } from './defaults.js';

const envelopeSchema = z.object({
  errors: z
    .array(
      z.looseObject({
        code: z.string(),
        message: z.string().optional(),
        detail: z.unknown().optional(),
      }),
    )
    .min(1),
});

// Registry codes taken over as they are; TOOMANYREQUESTS is the spelling in the spec's table.
const REGISTRY_CODES: Record<string, OciErrorCode> = {
  BLOB_UNKNOWN: 'BLOB_UNKNOWN',
  BLOB_UPLOAD_INVALID: 'BLOB_UPLOAD_INVALID',
  BLOB_UPLOAD_UNKNOWN: 'BLOB_UPLOAD_UNKNOWN',
  DIGEST_INVALID: 'DIGEST_INVALID',
  MANIFEST_BLOB_UNKNOWN: 'MANIFEST_BLOB_UNKNOWN',
  MANIFEST_INVALID: 'MANIFEST_INVALID',
  MANIFEST_UNKNOWN: 'MANIFEST_UNKNOWN',
  NAME_INVALID: 'NAME_INVALID',
  NAME_UNKNOWN: 'NAME_UNKNOWN',
  SIZE_INVALID: 'SIZE_INVALID',
  UNAUTHORIZED: 'UNAUTHORIZED',
  DENIED: 'DENIED',
  UNSUPPORTED: 'UNSUPPORTED',
  TOOMANYREQUESTS: 'TOO_MANY_REQUESTS',
  TOO_MANY_REQUESTS: 'TOO_MANY_REQUESTS',
};

/** Reads at most `maxBytes` of a body as text and destroys the rest, never raising. */
export async function readBodyPrefix(
  body: Readable,
  maxBytes = ERROR_BODY_MAX_BYTES,
): Promise<string> {
  const chunks: Buffer[] = [];
  let length = 0;
  try {
    for await (const chunk of body as AsyncIterable<Buffer>) {
      const room = maxBytes - length;
      chunks.push(chunk.length > room ? chunk.subarray(0, room) : chunk);
      length += Math.min(chunk.length, room);
      if (length >= maxBytes) break;
    }
  } catch {
    // A body cut short still yields what arrived; the status alone decides the error.
  } finally {
    body.on('error', () => undefined);
    body.destroy();
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** Parses the registry error envelope; undefined for any other body, JSON or not. */
export function parseErrorEnvelope(text: string): RegistryErrorEntry[] | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  const result = envelopeSchema.safeParse(value);
  return result.success ? result.data.errors : undefined;
}

function codeForStatus(status: number, notFound: OciErrorCode): OciErrorCode {
  if (status === 401) return 'UNAUTHORIZED';
  if (status === 403) return 'DENIED';
  if (status === 404) return notFound;
  if (status === 429) return 'TOO_MANY_REQUESTS';
  if (status === 408) return 'TIMEOUT';
  if (status >= 500) return 'SERVER_ERROR';
  return 'HTTP_ERROR';
}

function nextStep(code: OciErrorCode): string {
  switch (code) {
    case 'UNAUTHORIZED':
      return 'check the credentials configured for this registry';
    case 'DENIED':
      return 'grant the account access to this repository';
    case 'TOO_MANY_REQUESTS':
      return 'slow down or raise the rate limit of this account';
    case 'MANIFEST_UNKNOWN':
    case 'BLOB_UNKNOWN':
    case 'NAME_UNKNOWN':
    case 'NOT_FOUND':
      return 'check the repository, tag or digest';
    case 'SERVER_ERROR':
      return 'retry later or check the registry logs';
    default:
      return 'check the request and the registry logs';
  }
}

export interface ResponseErrorContext {
  method: string;
  url: string;
  status: number;
  /** Code used for a 404 without an envelope, e.g. `MANIFEST_UNKNOWN` for a manifest GET. */
  notFoundCode?: OciErrorCode;
  retryAfterSeconds?: number;
}

/**
 * Builds the error for an unexpected response from its status and, when present, the first
 * entry of the registry error envelope. A 429 stays `TOO_MANY_REQUESTS` whatever the body is.
 */
export function errorFromResponse(context: ResponseErrorContext, bodyText: string): OciError {
  const entries = parseErrorEnvelope(bodyText);
  const fallback = codeForStatus(context.status, context.notFoundCode ?? 'NOT_FOUND');
  let code = fallback;
  const first = entries?.[0];
  if (context.status !== 429 && first !== undefined) {
    code = REGISTRY_CODES[first.code] ?? fallback;
  }
  let reason: string;
  if (first !== undefined) {
    reason = `${first.code}${first.message ? `: ${first.message}` : ''}`;
  } else {
    const text = bodyText.trim().replace(/\s+/g, ' ').slice(0, 200);
    reason = text === '' ? 'no error body' : JSON.stringify(text);
  }
  const options: ConstructorParameters<typeof OciError>[2] = {
    status: context.status,
    method: context.method,
    url: context.url,
  };
  if (entries !== undefined) options.registryErrors = entries;
  if (context.retryAfterSeconds !== undefined)
    options.retryAfterSeconds = context.retryAfterSeconds;
  return new OciError(
    code,
    `${context.method} ${redactUrl(context.url)} failed with HTTP ${context.status} (${reason}); ${nextStep(code)}.`,
    options,
  );
}
