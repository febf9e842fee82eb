import { and, eq, gt, isNull, or, sql } from 'drizzle-orm';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Role } from '@edge/contract';
import type { AppContext } from '../context.js';
import { apiTokens, sessions, users } from '../db/schema.js';
import { AppError, forbidden, unauthenticated } from '../errors.js';
import { TOKEN_PREFIX, hashToken } from '../crypto/tokens.js';

export interface Principal {
  userId: string;
  username: string;
  role: Role;
  /** Name of the API token used, or null for a login session. */
  tokenName: string | null;
}

declare module 'fastify' {
  interface FastifyRequest {
    principal: Principal | null;
  }
}

export function actorOf(principal: Principal): string {
  return principal.tokenName === null
    ? `user:${principal.username}`
    : `token:${principal.username}/${principal.tokenName}`;
}

/** Minimum pause between `last_used_at` writes of one API token, in milliseconds. */
const TOKEN_USE_WRITE_INTERVAL_MS = 60_000;

async function resolvePrincipal(context: AppContext, token: string): Promise<Principal | null> {
  const tokenHash = hashToken(token);
  const now = new Date(context.now());
  if (token.startsWith(TOKEN_PREFIX.session)) {
    const [row] = await context.db
      .select({ userId: users.id, username: users.username, role: users.role })
      .from(sessions)
      .innerJoin(users, eq(users.id, sessions.userId))
      .where(and(eq(sessions.tokenHash, tokenHash), gt(sessions.expiresAt, now)));
    return row === undefined ? null : { ...row, tokenName: null };
  }
  if (token.startsWith(TOKEN_PREFIX.apiToken)) {
    const [row] = await context.db
      .select({
        id: apiTokens.id,
        name: apiTokens.name,
        lastUsedAt: apiTokens.lastUsedAt,
        userId: users.id,
        username: users.username,
        role: users.role,
      })
      .from(apiTokens)
      .innerJoin(users, eq(users.id, apiTokens.userId))
      .where(
        and(
          eq(apiTokens.tokenHash, tokenHash),
          or(isNull(apiTokens.expiresAt), gt(apiTokens.expiresAt, now)),
        ),
      );
    if (row === undefined) return null;
    if (
      row.lastUsedAt === null ||
      now.getTime() - row.lastUsedAt.getTime() > TOKEN_USE_WRITE_INTERVAL_MS
    ) {
      await context.db.update(apiTokens).set({ lastUsedAt: now }).where(eq(apiTokens.id, row.id));
    }
    return { userId: row.userId, username: row.username, role: row.role, tokenName: row.name };
  }
  return null;
}

/**
 * Returns an onRequest hook that requires a session or API token with at least the given role.
 * It runs before body validation, so an anonymous caller learns nothing about the schemas.
 */
export function requireRole(context: AppContext, role: Role) {
  return async (request: FastifyRequest, _reply: FastifyReply): Promise<void> => {
    const header = request.headers.authorization;
    const match = /^Bearer (\S+)$/.exec(header ?? '');
    if (match === null) {
      throw unauthenticated(
        'missing Authorization header: log in at POST /api/v1/auth/login and send "Bearer <token>"',
      );
    }
    const principal = await resolvePrincipal(context, match[1]!);
    if (principal === null) {
      throw unauthenticated('session or API token is unknown or expired; log in again');
    }
    request.principal = principal;
    if (role === 'admin' && principal.role !== 'admin') {
      throw forbidden(`user "${principal.username}" has role viewer; this call needs role admin`);
    }
  };
}

export function principalOf(request: FastifyRequest): Principal {
  if (request.principal === null) {
    throw new AppError('UNAUTHENTICATED', 'route has no authentication hook');
  }
  return request.principal;
}

/** Deletes expired sessions and API tokens; run by the cleanup job. */
export async function deleteExpiredCredentials(context: AppContext): Promise<number> {
  const now = new Date(context.now());
  const expiredSessions = await context.db
    .delete(sessions)
    .where(sql`${sessions.expiresAt} <= ${now}`)
    .returning({ id: sessions.id });
  const expiredTokens = await context.db
    .delete(apiTokens)
    .where(sql`${apiTokens.expiresAt} <= ${now}`)
    .returning({ id: apiTokens.id });
  return expiredSessions.length + expiredTokens.length;
}
