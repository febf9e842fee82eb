import { eq, or } from 'drizzle-orm';
import { z } from 'zod';
import {
  configDocumentSchema,
  configListSchema,
  createConfigSchema,
  nameParamsSchema,
  updateConfigSchema,
} from '@edge/contract';
import { actorOf, principalOf, requireRole } from '../auth/operator.js';
import type { AppContext } from '../context.js';
import { configs, groups, satellites } from '../db/schema.js';
import { recordAudit } from '../domain/audit.js';
import { bumpRevisions } from '../domain/revisions.js';
import { configView } from '../domain/views.js';
import { alreadyExists, inUse, notFound } from '../errors.js';
import { ERROR_RESPONSES, bearerAuth, type ZodApp } from '../http/types.js';

export function registerConfigRoutes(app: ZodApp, context: AppContext): void {
  const viewer = requireRole(context, 'viewer');
  const admin = requireRole(context, 'admin');
  const tags = ['configs'];
  const security = bearerAuth;

  async function configByName(name: string): Promise<typeof configs.$inferSelect> {
    const [row] = await context.db.select().from(configs).where(eq(configs.name, name));
    if (row === undefined) throw notFound('config', name);
    return row;
  }

  app.get(
    '/api/v1/configs',
    {
      onRequest: viewer,
      schema: {
        tags,
        security,
        summary: 'List config documents',
        response: { 200: configListSchema, ...ERROR_RESPONSES },
      },
    },
    async () => {
      const rows = await context.db.select().from(configs).orderBy(configs.name);
      return { items: rows.map(configView) };
    },
  );

  app.get(
    '/api/v1/configs/:name',
    {
      onRequest: viewer,
      schema: {
        tags,
        security,
        summary: 'Read a config document',
        params: nameParamsSchema,
        response: { 200: configDocumentSchema, ...ERROR_RESPONSES },
      },
    },
    async (request) => configView(await configByName(request.params.name)),
  );

  app.post(
    '/api/v1/configs',
    {
      onRequest: admin,
      schema: {
        tags,
        security,
        summary: 'Create a config document; fields left out take the defaults',
        body: createConfigSchema,
        response: { 201: configDocumentSchema, ...ERROR_RESPONSES },
      },
    },
    async (request, reply) => {
      const rows = await context.db
        .insert(configs)
        .values({
          name: request.body.name,
          description: request.body.description ?? '',
          settings: request.body.settings,
        })
        .onConflictDoNothing()
        .returning();
      const row = rows[0];
      if (row === undefined) throw alreadyExists('config', request.body.name);
      await recordAudit(context.db, {
        actor: actorOf(principalOf(request)),
        action: 'config.create',
        target: `config:${row.name}`,
      });
      return reply.code(201).send(configView(row));
    },
  );

  app.patch(
    '/api/v1/configs/:name',
    {
      onRequest: admin,
      schema: {
        tags,
        security,
        summary: 'Change a config document; `settings` replaces the whole document',
        params: nameParamsSchema,
        body: updateConfigSchema,
        response: { 200: configDocumentSchema, ...ERROR_RESPONSES },
      },
    },
    async (request) => {
      const existing = await configByName(request.params.name);
      const [row] = await context.db.transaction(async (tx) => {
        const updated = await tx
          .update(configs)
          .set({
            description: request.body.description ?? existing.description,
            settings: request.body.settings ?? existing.settings,
            updatedAt: new Date(context.now()),
          })
          .where(eq(configs.id, existing.id))
          .returning();
        await bumpRevisions(tx, { configId: existing.id });
        await recordAudit(tx, {
          actor: actorOf(principalOf(request)),
          action: 'config.update',
          target: `config:${existing.name}`,
        });
        return updated;
      });
      return configView(row!);
    },
  );

  app.delete(
    '/api/v1/configs/:name',
    {
      onRequest: admin,
      schema: {
        tags,
        security,
        summary: 'Delete a config document that no satellite or group uses',
        params: nameParamsSchema,
        response: { 204: z.null(), ...ERROR_RESPONSES },
      },
    },
    async (request, reply) => {
      const existing = await configByName(request.params.name);
      const satelliteUsers = await context.db
        .select({ name: satellites.name })
        .from(satellites)
        .where(eq(satellites.configId, existing.id));
      const groupUsers = await context.db
        .select({ name: groups.name })
        .from(groups)
        .where(or(eq(groups.configId, existing.id)));
      const referencedBy = [
        ...satelliteUsers.map((row) => `satellite:${row.name}`),
        ...groupUsers.map((row) => `group:${row.name}`),
      ];
      if (referencedBy.length > 0) throw inUse('config', existing.name, referencedBy);
      await context.db.delete(configs).where(eq(configs.id, existing.id));
      await recordAudit(context.db, {
        actor: actorOf(principalOf(request)),
        action: 'config.delete',
        target: `config:${existing.name}`,
      });
      return reply.code(204).send(null);
    },
  );
}
