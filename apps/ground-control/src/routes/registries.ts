import { eq } from 'drizzle-orm';
import { z } from 'zod';
import {
  createRegistrySchema,
  nameParamsSchema,
  registryListSchema,
  registrySchema,
  updateRegistrySchema,
} from '@edge/contract';
import { actorOf, principalOf, requireRole } from '../auth/operator.js';
import type { AppContext } from '../context.js';
import { groups, registries, selections } from '../db/schema.js';
import { recordAudit } from '../domain/audit.js';
import { upstreamOf } from '../domain/resolution.js';
import { bumpRevisions } from '../domain/revisions.js';
import { registryView } from '../domain/views.js';
import { AppError, alreadyExists, inUse, notFound } from '../errors.js';
import { ERROR_RESPONSES, bearerAuth, type ZodApp } from '../http/types.js';

type RegistryRow = typeof registries.$inferSelect;

export function registerRegistryRoutes(app: ZodApp, context: AppContext): void {
  const viewer = requireRole(context, 'viewer');
  const admin = requireRole(context, 'admin');
  const tags = ['registries'];
  const security = bearerAuth;

  async function registryByName(name: string): Promise<RegistryRow> {
    const [row] = await context.db.select().from(registries).where(eq(registries.name, name));
    if (row === undefined) throw notFound('registry', name);
    return row;
  }

  /**
   * Checks that Ground Control reaches the registry with its own credential; for Harbor also
   * that the account may manage robot accounts.
   */
  async function check(row: RegistryRow): Promise<void> {
    try {
      if (row.kind === 'harbor') await context.harbor.check(row);
      await context.upstream.ping(upstreamOf(context, row));
    } catch (error) {
      throw new AppError(
        'REGISTRY_CHECK_FAILED',
        `connectivity check of registry "${row.name}" failed: ${(error as Error).message}; ` +
          'fix the URL or credential, or send skipCheck: true',
        { details: { registry: row.name, url: row.url } },
      );
    }
  }

  app.get(
    '/api/v1/registries',
    {
      onRequest: viewer,
      schema: {
        tags,
        security,
        summary: 'List registries; secrets are never returned',
        response: { 200: registryListSchema, ...ERROR_RESPONSES },
      },
    },
    async () => {
      const rows = await context.db.select().from(registries).orderBy(registries.name);
      return { items: rows.map(registryView) };
    },
  );

  app.get(
    '/api/v1/registries/:name',
    {
      onRequest: viewer,
      schema: {
        tags,
        security,
        summary: 'Read a registry',
        params: nameParamsSchema,
        response: { 200: registrySchema, ...ERROR_RESPONSES },
      },
    },
    async (request) => registryView(await registryByName(request.params.name)),
  );

  app.post(
    '/api/v1/registries',
    {
      onRequest: admin,
      schema: {
        tags,
        security,
        summary: 'Add an upstream registry; its connectivity is checked first',
        body: createRegistrySchema,
        response: { 201: registrySchema, ...ERROR_RESPONSES },
      },
    },
    async (request, reply) => {
      const body = request.body;
      if (body.kind === 'oci' && body.apiUrl !== undefined) {
        throw new AppError('VALIDATION_FAILED', 'apiUrl applies to kind harbor only');
      }
      if (body.kind === 'harbor' && body.pullCredential !== undefined) {
        throw new AppError(
          'VALIDATION_FAILED',
          'pullCredential applies to kind oci only; Harbor satellites get their own robot accounts',
        );
      }
      const candidate = {
        name: body.name,
        kind: body.kind,
        url: body.url,
        apiUrl: body.apiUrl ?? null,
        satelliteUrl: body.satelliteUrl ?? null,
        caBundle: body.caBundle ?? null,
        insecure: body.insecure ?? false,
        localPrefix: body.localPrefix ?? null,
        credentialUsername: body.credential?.username ?? null,
        credentialSecret:
          body.credential === undefined ? null : context.secrets.encrypt(body.credential.password),
        pullUsername: body.pullCredential?.username ?? null,
        pullSecret:
          body.pullCredential === undefined
            ? null
            : context.secrets.encrypt(body.pullCredential.password),
      };
      const now = new Date(context.now());
      if (body.skipCheck !== true) {
        await check({ ...candidate, id: '', createdAt: now, updatedAt: now });
      }
      const rows = await context.db
        .insert(registries)
        .values(candidate)
        .onConflictDoNothing()
        .returning();
      const row = rows[0];
      if (row === undefined) throw alreadyExists('registry', body.name);
      await recordAudit(context.db, {
        actor: actorOf(principalOf(request)),
        action: 'registry.create',
        target: `registry:${row.name}`,
        details: { kind: row.kind, url: row.url },
      });
      return reply.code(201).send(registryView(row));
    },
  );

  app.patch(
    '/api/v1/registries/:name',
    {
      onRequest: admin,
      schema: {
        tags,
        security,
        summary: 'Change a registry; satellites that use it get a new revision',
        params: nameParamsSchema,
        body: updateRegistrySchema,
        response: { 200: registrySchema, ...ERROR_RESPONSES },
      },
    },
    async (request) => {
      const body = request.body;
      const existing = await registryByName(request.params.name);
      const encrypt = (value: { password: string } | null | undefined, current: string | null) =>
        value === undefined
          ? current
          : value === null
            ? null
            : context.secrets.encrypt(value.password);
      const next: RegistryRow = {
        ...existing,
        url: body.url ?? existing.url,
        apiUrl: body.apiUrl === undefined ? existing.apiUrl : body.apiUrl,
        satelliteUrl: body.satelliteUrl === undefined ? existing.satelliteUrl : body.satelliteUrl,
        caBundle: body.caBundle === undefined ? existing.caBundle : body.caBundle,
        insecure: body.insecure ?? existing.insecure,
        localPrefix: body.localPrefix === undefined ? existing.localPrefix : body.localPrefix,
        credentialUsername:
          body.credential === undefined
            ? existing.credentialUsername
            : (body.credential?.username ?? null),
        credentialSecret: encrypt(body.credential, existing.credentialSecret),
        pullUsername:
          body.pullCredential === undefined
            ? existing.pullUsername
            : (body.pullCredential?.username ?? null),
        pullSecret: encrypt(body.pullCredential, existing.pullSecret),
        updatedAt: new Date(context.now()),
      };
      if (body.skipCheck !== true) await check(next);
      const { id, createdAt: _createdAt, ...values } = next;
      const [row] = await context.db.transaction(async (tx) => {
        const updated = await tx
          .update(registries)
          .set(values)
          .where(eq(registries.id, id))
          .returning();
        await bumpRevisions(tx, { registryId: id });
        await recordAudit(tx, {
          actor: actorOf(principalOf(request)),
          action: 'registry.update',
          target: `registry:${existing.name}`,
          details: { fields: Object.keys(body) },
        });
        return updated;
      });
      return registryView(row!);
    },
  );

  app.delete(
    '/api/v1/registries/:name',
    {
      onRequest: admin,
      schema: {
        tags,
        security,
        summary: 'Delete a registry that no group selects from',
        params: nameParamsSchema,
        response: { 204: z.null(), ...ERROR_RESPONSES },
      },
    },
    async (request, reply) => {
      const existing = await registryByName(request.params.name);
      const users = await context.db
        .selectDistinct({ name: groups.name })
        .from(selections)
        .innerJoin(groups, eq(groups.id, selections.groupId))
        .where(eq(selections.registryId, existing.id));
      if (users.length > 0) {
        throw inUse(
          'registry',
          existing.name,
          users.map((group) => `group:${group.name}`),
        );
      }
      await context.db.delete(registries).where(eq(registries.id, existing.id));
      await recordAudit(context.db, {
        actor: actorOf(principalOf(request)),
        action: 'registry.delete',
        target: `registry:${existing.name}`,
      });
      return reply.code(204).send(null);
    },
  );
}
