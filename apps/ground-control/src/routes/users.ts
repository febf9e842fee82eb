import { eq } from 'drizzle-orm';
import { z } from 'zod';
import {
  createUserSchema,
  nameParamsSchema,
  updateUserSchema,
  userListSchema,
  userSchema,
} from '@edge/contract';
import { actorOf, principalOf, requireRole } from '../auth/operator.js';
import { hashPassword } from '../auth/passwords.js';
import type { AppContext } from '../context.js';
import { sessions, users } from '../db/schema.js';
import { recordAudit } from '../domain/audit.js';
import { userView } from '../domain/views.js';
import { AppError, alreadyExists, notFound } from '../errors.js';
import { ERROR_RESPONSES, bearerAuth, type ZodApp } from '../http/types.js';

export function registerUserRoutes(app: ZodApp, context: AppContext): void {
  const admin = requireRole(context, 'admin');
  const tags = ['users'];
  const security = bearerAuth;

  app.get(
    '/api/v1/users',
    {
      onRequest: admin,
      schema: {
        tags,
        security,
        summary: 'List users',
        response: { 200: userListSchema, ...ERROR_RESPONSES },
      },
    },
    async () => {
      const rows = await context.db.select().from(users).orderBy(users.username);
      return { items: rows.map(userView) };
    },
  );

  app.post(
    '/api/v1/users',
    {
      onRequest: admin,
      schema: {
        tags,
        security,
        summary: 'Create a user',
        body: createUserSchema,
        response: { 201: userSchema, ...ERROR_RESPONSES },
      },
    },
    async (request, reply) => {
      const { username, password, role } = request.body;
      const rows = await context.db
        .insert(users)
        .values({ username, role, passwordHash: await hashPassword(password) })
        .onConflictDoNothing()
        .returning();
      const row = rows[0];
      if (row === undefined) throw alreadyExists('user', username);
      await recordAudit(context.db, {
        actor: actorOf(principalOf(request)),
        action: 'user.create',
        target: `user:${username}`,
        details: { role },
      });
      return reply.code(201).send(userView(row));
    },
  );

  app.patch(
    '/api/v1/users/:name',
    {
      onRequest: admin,
      schema: {
        tags,
        security,
        summary: 'Change the password or role of a user; a new password ends its sessions',
        params: nameParamsSchema,
        body: updateUserSchema,
        response: { 200: userSchema, ...ERROR_RESPONSES },
      },
    },
    async (request) => {
      const { password, role } = request.body;
      const [existing] = await context.db
        .select()
        .from(users)
        .where(eq(users.username, request.params.name));
      if (existing === undefined) throw notFound('user', request.params.name);
      if (role === 'viewer' && existing.role === 'admin')
        await assertAnotherAdmin(context, existing.id);
      const rows = await context.db
        .update(users)
        .set({
          ...(role !== undefined ? { role } : {}),
          ...(password !== undefined
            ? { passwordHash: await hashPassword(password), failedLogins: 0, lockedUntil: null }
            : {}),
          updatedAt: new Date(context.now()),
        })
        .where(eq(users.id, existing.id))
        .returning();
      if (password !== undefined)
        await context.db.delete(sessions).where(eq(sessions.userId, existing.id));
      await recordAudit(context.db, {
        actor: actorOf(principalOf(request)),
        action: 'user.update',
        target: `user:${existing.username}`,
        details: { role: role ?? null, passwordChanged: password !== undefined },
      });
      return userView(rows[0]!);
    },
  );

  app.delete(
    '/api/v1/users/:name',
    {
      onRequest: admin,
      schema: {
        tags,
        security,
        summary: 'Delete a user with its sessions and API tokens',
        params: nameParamsSchema,
        response: { 204: z.null(), ...ERROR_RESPONSES },
      },
    },
    async (request, reply) => {
      const [existing] = await context.db
        .select()
        .from(users)
        .where(eq(users.username, request.params.name));
      if (existing === undefined) throw notFound('user', request.params.name);
      if (existing.role === 'admin') await assertAnotherAdmin(context, existing.id);
      await context.db.delete(users).where(eq(users.id, existing.id));
      await recordAudit(context.db, {
        actor: actorOf(principalOf(request)),
        action: 'user.delete',
        target: `user:${existing.username}`,
      });
      return reply.code(204).send(null);
    },
  );
}

/** Keeps at least one admin, so the operators cannot lock themselves out of user management. */
async function assertAnotherAdmin(context: AppContext, userId: string): Promise<void> {
  const admins = await context.db
    .select({ id: users.id })
    .from(users)
    .where(eq(users.role, 'admin'));
  if (!admins.some((row) => row.id !== userId)) {
    throw new AppError('CONFLICT', 'this is the only admin; create another admin first');
  }
}
