import { and, eq } from 'drizzle-orm';
import { z } from 'zod';
import {
  apiTokenListSchema,
  createApiTokenSchema,
  createdApiTokenSchema,
  loginRequestSchema,
  loginResponseSchema,
  nameParamsSchema,
  userSchema,
} from '@edge/contract';
import { login } from '../auth/login.js';
import { actorOf, principalOf, requireRole } from '../auth/operator.js';
import type { AppContext } from '../context.js';
import { generateToken, hashToken } from '../crypto/tokens.js';
import { apiTokens, sessions, users } from '../db/schema.js';
import { recordAudit } from '../domain/audit.js';
import { userView } from '../domain/views.js';
import { alreadyExists, notFound } from '../errors.js';
import { ERROR_RESPONSES, bearerAuth, type ZodApp } from '../http/types.js';

function tokenView(row: typeof apiTokens.$inferSelect) {
  return {
    id: row.id,
    name: row.name,
    createdAt: row.createdAt.toISOString(),
    expiresAt: row.expiresAt?.toISOString() ?? null,
    lastUsedAt: row.lastUsedAt?.toISOString() ?? null,
  };
}

export function registerAuthRoutes(app: ZodApp, context: AppContext): void {
  const viewer = requireRole(context, 'viewer');
  const admin = requireRole(context, 'admin');
  const tags = ['auth'];

  app.post(
    '/api/v1/auth/login',
    {
      schema: {
        tags,
        summary: 'Log in with username and password; returns a session token',
        body: loginRequestSchema,
        response: { 200: loginResponseSchema, ...ERROR_RESPONSES },
      },
    },
    async (request) => {
      const result = await login(context, request.ip, request.body.username, request.body.password);
      await recordAudit(context.db, {
        actor: `user:${result.user.username}`,
        action: 'auth.login',
        target: `user:${result.user.username}`,
      });
      return {
        token: result.token,
        expiresAt: result.expiresAt.toISOString(),
        user: userView(result.user),
      };
    },
  );

  app.delete(
    '/api/v1/auth/session',
    {
      onRequest: viewer,
      schema: {
        tags,
        summary: 'Log out: end the session of the bearer token',
        security: bearerAuth,
        response: { 204: z.null(), ...ERROR_RESPONSES },
      },
    },
    async (request, reply) => {
      const token = (request.headers.authorization ?? '').replace(/^Bearer /, '');
      await context.db.delete(sessions).where(eq(sessions.tokenHash, hashToken(token)));
      return reply.code(204).send(null);
    },
  );

  app.get(
    '/api/v1/auth/me',
    {
      onRequest: viewer,
      schema: {
        tags,
        summary: 'The user behind the bearer token',
        security: bearerAuth,
        response: { 200: userSchema, ...ERROR_RESPONSES },
      },
    },
    async (request) => {
      const principal = principalOf(request);
      const [row] = await context.db.select().from(users).where(eq(users.id, principal.userId));
      if (row === undefined) throw notFound('user', principal.username);
      return userView(row);
    },
  );

  app.get(
    '/api/v1/tokens',
    {
      onRequest: admin,
      schema: {
        tags,
        summary: "List the caller's API tokens",
        security: bearerAuth,
        response: { 200: apiTokenListSchema, ...ERROR_RESPONSES },
      },
    },
    async (request) => {
      const rows = await context.db
        .select()
        .from(apiTokens)
        .where(eq(apiTokens.userId, principalOf(request).userId))
        .orderBy(apiTokens.name);
      return { items: rows.map(tokenView) };
    },
  );

  app.post(
    '/api/v1/tokens',
    {
      onRequest: admin,
      schema: {
        tags,
        summary: 'Create an API token for the caller; the token is shown only in this response',
        security: bearerAuth,
        body: createApiTokenSchema,
        response: { 201: createdApiTokenSchema, ...ERROR_RESPONSES },
      },
    },
    async (request, reply) => {
      const principal = principalOf(request);
      const token = generateToken('apiToken');
      const expiresAt =
        request.body.expiresInDays === undefined
          ? null
          : new Date(context.now() + request.body.expiresInDays * 86_400_000);
      const rows = await context.db
        .insert(apiTokens)
        .values({
          userId: principal.userId,
          name: request.body.name,
          tokenHash: hashToken(token),
          expiresAt,
        })
        .onConflictDoNothing()
        .returning();
      const row = rows[0];
      if (row === undefined) throw alreadyExists('API token', request.body.name);
      await recordAudit(context.db, {
        actor: actorOf(principal),
        action: 'token.create',
        target: `token:${principal.username}/${row.name}`,
      });
      return reply.code(201).send({ apiToken: tokenView(row), token });
    },
  );

  app.delete(
    '/api/v1/tokens/:name',
    {
      onRequest: admin,
      schema: {
        tags,
        summary: "Delete one of the caller's API tokens",
        security: bearerAuth,
        params: nameParamsSchema,
        response: { 204: z.null(), ...ERROR_RESPONSES },
      },
    },
    async (request, reply) => {
      const principal = principalOf(request);
      const deleted = await context.db
        .delete(apiTokens)
        .where(and(eq(apiTokens.userId, principal.userId), eq(apiTokens.name, request.params.name)))
        .returning({ id: apiTokens.id });
      if (deleted.length === 0) throw notFound('API token', request.params.name);
      await recordAudit(context.db, {
        actor: actorOf(principal),
        action: 'token.delete',
        target: `token:${principal.username}/${request.params.name}`,
      });
      return reply.code(204).send(null);
    },
  );
}
