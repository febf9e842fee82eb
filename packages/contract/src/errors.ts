import { z } from 'zod';

/**
 * Stable error codes shared by the operator API and the satellite protocol, with the HTTP status
 * each one is sent with. Clients branch on `code`, never on `message`.
 */
export const ERROR_STATUS = {
  VALIDATION_FAILED: 400,
  BODY_TOO_LARGE: 400,
  PROTOCOL_VERSION_UNSUPPORTED: 400,
  REGISTRY_CHECK_FAILED: 400,
  UNAUTHENTICATED: 401,
  INVALID_CREDENTIALS: 401,
  JOIN_TOKEN_INVALID: 401,
  JOIN_TOKEN_USED: 401,
  JOIN_TOKEN_EXPIRED: 401,
  JOIN_TOKEN_REVOKED: 401,
  SATELLITE_TOKEN_INVALID: 401,
  SATELLITE_TOKEN_EXPIRED: 401,
  SATELLITE_CLOCK_SKEW: 401,
  FORBIDDEN: 403,
  SATELLITE_REVOKED: 403,
  NOT_FOUND: 404,
  ROUTE_NOT_FOUND: 404,
  ALREADY_EXISTS: 409,
  CONFLICT: 409,
  IN_USE: 409,
  RATE_LIMITED: 429,
  ACCOUNT_LOCKED: 429,
  INTERNAL: 500,
  NOT_AVAILABLE: 501,
  UPSTREAM_FAILED: 502,
  NOT_READY: 503,
} as const;

export type ErrorCode = keyof typeof ERROR_STATUS;

export const ERROR_CODES = Object.keys(ERROR_STATUS) as [ErrorCode, ...ErrorCode[]];

export const errorCodeSchema = z.enum(ERROR_CODES);

/**
 * Error envelope of every non-2xx response. Loose, so that a newer server may add fields to it
 * without breaking older satellites.
 */
export const errorEnvelopeSchema = z
  .looseObject({
    error: z.looseObject({
      // A plain string rather than the enum, so that an old client still parses a code added later.
      code: z.string(),
      message: z.string(),
      details: z.record(z.string(), z.unknown()).optional(),
      requestId: z.string().optional(),
    }),
  })
  .meta({ id: 'ErrorEnvelope' });

export type ErrorEnvelope = z.infer<typeof errorEnvelopeSchema>;
