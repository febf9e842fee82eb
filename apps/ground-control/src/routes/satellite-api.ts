import { and, eq, isNull, sql } from 'drizzle-orm';
import type { FastifyRequest } from 'fastify';
import { z } from 'zod';
import {
  MIN_PROTOCOL_VERSION,
  PROTOCOL_VERSION,
  PROTOCOL_VERSION_HEADER,
  SATELLITE_API_PREFIX,
  STATE_WAIT_MAX_SECONDS,
  desiredStateSchema,
  joinRequestSchema,
  joinResponseSchema,
  stateQuerySchema,
  statusReportSchema,
  statusResponseSchema,
} from '@edge/contract';
import { SATELLITE_CHANNEL, type AuthenticatedSatellite } from '../auth/satellite.js';
import type { AppContext } from '../context.js';
import { hashToken } from '../crypto/tokens.js';
import { notify } from '../db/database.js';
import { joinTokens, satellites } from '../db/schema.js';
import { recordAudit } from '../domain/audit.js';
import { recordStatus } from '../domain/status.js';
import { AppError } from '../errors.js';
import { ERROR_RESPONSES, type ZodApp } from '../http/types.js';

/** Status reports list up to 10,000 artifacts, so their body limit is above the default. */
const STATUS_BODY_LIMIT_BYTES = 8 * 1024 * 1024;

const satelliteSecurity = [{ satelliteJwt: [] }];

declare module 'fastify' {
  interface FastifyRequest {
    satellite: AuthenticatedSatellite | null;
  }
}

function satelliteOf(request: FastifyRequest): AuthenticatedSatellite {
  if (request.satellite === null) {
    throw new AppError('SATELLITE_TOKEN_INVALID', 'route has no satellite authentication hook');
  }
  return request.satellite;
}

function checkProtocolVersion(version: number): void {
  if (version < MIN_PROTOCOL_VERSION) {
    throw new AppError(
      'PROTOCOL_VERSION_UNSUPPORTED',
      `protocol version ${version} is no longer served; upgrade the satellite to one that ` +
        `speaks version ${MIN_PROTOCOL_VERSION} to ${PROTOCOL_VERSION}`,
      { details: { supported: { min: MIN_PROTOCOL_VERSION, max: PROTOCOL_VERSION } } },
    );
  }
}

function headerVersion(request: FastifyRequest): number {
  const value = request.headers[PROTOCOL_VERSION_HEADER];
  if (value === undefined) return 1;
  const version = Number(value);
  if (!Number.isInteger(version) || version < 1) {
    throw new AppError(
      'VALIDATION_FAILED',
      `header ${PROTOCOL_VERSION_HEADER} must be a positive integer`,
    );
  }
  return version;
}

function etagOf(revision: number): string {
  return `"${revision}"`;
}

/** Classifies a join token that the consuming update did not match. */
async function joinFailure(context: AppContext, tokenHash: string): Promise<AppError> {
  const [row] = await context.db
    .select()
    .from(joinTokens)
    .where(eq(joinTokens.tokenHash, tokenHash));
  if (row === undefined) {
    return new AppError(
      'JOIN_TOKEN_INVALID',
      'join token is unknown; ask an operator for a new one',
    );
  }
  if (row.revokedAt !== null) {
    return new AppError(
      'JOIN_TOKEN_REVOKED',
      'join token was replaced or revoked; ask an operator for a new one',
    );
  }
  if (row.usedAt !== null) {
    return new AppError(
      'JOIN_TOKEN_USED',
      'join token was already used; a joined satellite keeps its identity in its data folder, ' +
        'otherwise ask an operator for a new token',
    );
  }
  return new AppError(
    'JOIN_TOKEN_EXPIRED',
    `join token expired at ${row.expiresAt.toISOString()}; ask an operator for a new one`,
  );
}

export function registerSatelliteApiRoutes(app: ZodApp, context: AppContext): void {
  const tags = ['satellite protocol'];
  // Authentication runs before validation, like the operator API's role check.
  const authenticate = async (request: FastifyRequest): Promise<void> => {
    request.satellite = await context.satelliteAuth.authenticate(request.headers.authorization);
  };

  app.post(
    `${SATELLITE_API_PREFIX}/join`,
    {
      schema: {
        tags,
        summary: 'Join with a one-time token and register the public key',
        body: joinRequestSchema,
        response: { 200: joinResponseSchema, ...ERROR_RESPONSES },
      },
    },
    async (request) => {
      checkProtocolVersion(request.body.protocolVersion);
      const tokenHash = hashToken(request.body.token);
      const now = new Date(context.now());
      const joined = await context.db.transaction(async (tx) => {
        // The conditional update consumes the token: of two racing joins exactly one matches.
        const [consumed] = await tx
          .update(joinTokens)
          .set({ usedAt: now })
          .where(
            and(
              eq(joinTokens.tokenHash, tokenHash),
              isNull(joinTokens.usedAt),
              isNull(joinTokens.revokedAt),
              sql`${joinTokens.expiresAt} > ${now}`,
            ),
          )
          .returning({ satelliteId: joinTokens.satelliteId });
        if (consumed === undefined) return undefined;
        const [satellite] = await tx
          .update(satellites)
          .set({
            publicKey: request.body.publicKey,
            hostname: request.body.hostname,
            version: request.body.version,
            state: 'active',
            joinedAt: now,
            lastSeenAt: now,
          })
          .where(
            and(eq(satellites.id, consumed.satelliteId), sql`${satellites.state} <> 'revoked'`),
          )
          .returning({ id: satellites.id, name: satellites.name });
        if (satellite === undefined) return undefined;
        await recordAudit(tx, {
          actor: `satellite:${satellite.id}`,
          action: 'satellite.join',
          target: `satellite:${satellite.name}`,
          details: { hostname: request.body.hostname, version: request.body.version },
        });
        await notify(tx, SATELLITE_CHANNEL, satellite.id);
        return satellite;
      });
      if (joined === undefined) {
        const failure = await joinFailure(context, tokenHash);
        context.metrics.joins.inc({ result: failure.code });
        request.log.warn({ code: failure.code }, 'satellite join rejected');
        throw failure;
      }
      context.satelliteAuth.evict(joined.id);
      context.metrics.joins.inc({ result: 'ok' });
      request.log.info({ satelliteId: joined.id, satellite: joined.name }, 'satellite joined');
      return { protocolVersion: PROTOCOL_VERSION, satelliteId: joined.id, name: joined.name };
    },
  );

  app.get(
    `${SATELLITE_API_PREFIX}/state`,
    {
      onRequest: authenticate,
      schema: {
        tags,
        summary: 'Desired state; ETag, If-None-Match and long-polling with ?wait=N',
        security: satelliteSecurity,
        querystring: stateQuerySchema,
        response: { 200: desiredStateSchema, 304: z.null(), ...ERROR_RESPONSES },
      },
    },
    async (request, reply) => {
      checkProtocolVersion(headerVersion(request));
      const satellite = satelliteOf(request);
      const waitSeconds = Math.min(request.query.wait ?? 0, STATE_WAIT_MAX_SECONDS);
      const ifNoneMatch = request.headers['if-none-match'];
      context.lastSeen.record(satellite.id, context.now());

      // Register before reading, so a change committed in between still wakes this request.
      const waiter =
        waitSeconds > 0 ? context.waiters.wait(satellite.id, waitSeconds * 1_000) : undefined;
      try {
        let revision = await context.states.revision(satellite.id);
        let changed = false;
        if (ifNoneMatch === etagOf(revision) && waiter !== undefined) {
          context.metrics.longPolls.inc();
          const onClose = (): void => waiter.cancel();
          // The response closes early when the satellite hangs up, which frees the waiter.
          reply.raw.once('close', onClose);
          try {
            changed = await waiter.changed;
          } finally {
            context.metrics.longPolls.dec();
            reply.raw.off('close', onClose);
          }
          // A satellite revoked while it waited gets the refusal now, not at its next poll.
          await context.satelliteAuth.authenticate(request.headers.authorization);
          if (!changed) revision = await context.states.revision(satellite.id);
        }
        // A woken poll builds its state directly: thousands wake together and share batches.
        const state = changed ? await context.states.state(satellite.id) : undefined;
        if (state !== undefined) revision = state.revision;
        if (ifNoneMatch === etagOf(revision)) {
          // No payload at all: a serialised `null` would add Content-Type and Content-Length: 4,
          // which a 304 must not carry, and clients then drop the keep-alive connection. Fastify
          // skips serialisation for an undefined payload; the schema's type only allows null.
          return reply
            .code(304)
            .header('etag', etagOf(revision))
            .removeHeader('content-type')
            .send(undefined as unknown as null);
        }
        const body = state ?? (await context.states.state(satellite.id));
        return reply.header('etag', etagOf(body.revision)).send(body);
      } finally {
        waiter?.cancel();
      }
    },
  );

  app.post(
    `${SATELLITE_API_PREFIX}/status`,
    {
      onRequest: authenticate,
      bodyLimit: STATUS_BODY_LIMIT_BYTES,
      schema: {
        tags,
        summary: 'Report applied revision, artifact states, storage and errors',
        security: satelliteSecurity,
        body: statusReportSchema,
        response: { 200: statusResponseSchema, ...ERROR_RESPONSES },
      },
    },
    async (request) => {
      checkProtocolVersion(request.body.protocolVersion);
      const satellite = satelliteOf(request);
      const desiredRevision = await recordStatus(context, satellite.id, request.body);
      context.metrics.statusReports.inc();
      return { protocolVersion: PROTOCOL_VERSION, desiredRevision };
    },
  );
}
