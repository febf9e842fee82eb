import { asc, eq, inArray } from 'drizzle-orm';
import { z } from 'zod';
import {
  createGroupSchema,
  groupListSchema,
  groupSchema,
  nameParamsSchema,
  resolveResultSchema,
  updateGroupSchema,
  type Group,
  type Selection,
} from '@edge/contract';
import { actorOf, principalOf, requireRole } from '../auth/operator.js';
import type { AppContext } from '../context.js';
import type { Db } from '../db/database.js';
import { configs, groups, registries, satelliteGroups, selections } from '../db/schema.js';
import { recordAudit } from '../domain/audit.js';
import { configIdByName, registryIdsByName } from '../domain/lookup.js';
import { resolveGroup } from '../domain/resolution.js';
import { bumpRevisions } from '../domain/revisions.js';
import { groupView, selectionView } from '../domain/views.js';
import { alreadyExists, notFound } from '../errors.js';
import { ERROR_RESPONSES, bearerAuth, type ZodApp } from '../http/types.js';

export async function loadGroupViews(
  db: Db,
  rows: (typeof groups.$inferSelect)[],
): Promise<Group[]> {
  if (rows.length === 0) return [];
  const ids = rows.map((row) => row.id);
  const selectionRows = await db
    .select({ selection: selections, registryName: registries.name })
    .from(selections)
    .innerJoin(registries, eq(registries.id, selections.registryId))
    .where(inArray(selections.groupId, ids))
    .orderBy(asc(selections.position));
  const configIds = rows.map((row) => row.configId).filter((id): id is string => id !== null);
  const configRows =
    configIds.length === 0
      ? []
      : await db
          .select({ id: configs.id, name: configs.name })
          .from(configs)
          .where(inArray(configs.id, configIds));
  return rows.map((row) =>
    groupView(
      row,
      configRows.find((config) => config.id === row.configId)?.name ?? null,
      selectionRows
        .filter((entry) => entry.selection.groupId === row.id)
        .map((entry) => selectionView(entry.selection, entry.registryName)),
    ),
  );
}

function selectionKey(value: {
  registryId: string;
  repository: string;
  tag: string | null;
  digest: string | null;
  platforms: string[] | null;
  includeReferrers: boolean;
}): string {
  return JSON.stringify([
    value.registryId,
    value.repository,
    value.tag,
    value.digest,
    value.platforms === null ? null : [...value.platforms].sort(),
    value.includeReferrers,
  ]);
}

/**
 * Replaces the selections of a group. Selections that stay the same keep their resolution, so
 * member satellites keep those artifacts while the new ones resolve.
 */
/**
 * Resolves a group's selections after they were replaced and bumps its members' revisions
 * once. Without this order the members would first receive a state without the new, still
 * unresolved selections, and a second state once they resolve. When resolution changes
 * nothing or fails, the replacement itself still needs the bump.
 */
async function resolveReplacedSelections(context: AppContext, groupId: string): Promise<void> {
  let bumped = false;
  try {
    bumped = await resolveGroup(context, groupId);
  } finally {
    if (!bumped) await bumpRevisions(context.db, { groupIds: [groupId] });
  }
}

async function replaceSelections(db: Db, groupId: string, wanted: Selection[]): Promise<void> {
  const registryIds = await registryIdsByName(
    db,
    wanted.map((selection) => selection.registry),
  );
  const old = await db.select().from(selections).where(eq(selections.groupId, groupId));
  const oldByKey = new Map(
    old.map((row) => [selectionKey({ ...row, platforms: row.platforms ?? null }), row]),
  );
  await db.delete(selections).where(eq(selections.groupId, groupId));
  if (wanted.length === 0) return;
  await db.insert(selections).values(
    wanted.map((selection, position) => {
      const base = {
        groupId,
        position,
        registryId: registryIds.get(selection.registry)!,
        repository: selection.repository,
        tag: selection.tag ?? null,
        digest: selection.digest ?? null,
        platforms: selection.platforms ?? null,
        includeReferrers: selection.includeReferrers ?? false,
      };
      const previous = oldByKey.get(selectionKey(base));
      return previous === undefined
        ? base
        : {
            ...base,
            resolvedDigest: previous.resolvedDigest,
            resolvedMediaType: previous.resolvedMediaType,
            resolvedSize: previous.resolvedSize,
            referrers: previous.referrers,
            resolvedAt: previous.resolvedAt,
            errorCode: previous.errorCode,
            errorMessage: previous.errorMessage,
          };
    }),
  );
}

export function registerGroupRoutes(app: ZodApp, context: AppContext): void {
  const viewer = requireRole(context, 'viewer');
  const admin = requireRole(context, 'admin');
  const tags = ['groups'];
  const security = bearerAuth;

  async function groupByName(name: string): Promise<typeof groups.$inferSelect> {
    const [row] = await context.db.select().from(groups).where(eq(groups.name, name));
    if (row === undefined) throw notFound('group', name);
    return row;
  }

  async function viewOf(name: string): Promise<Group> {
    const [view] = await loadGroupViews(context.db, [await groupByName(name)]);
    return view!;
  }

  app.get(
    '/api/v1/groups',
    {
      onRequest: viewer,
      schema: {
        tags,
        security,
        summary: 'List groups with their selections and resolutions',
        response: { 200: groupListSchema, ...ERROR_RESPONSES },
      },
    },
    async () => {
      const rows = await context.db.select().from(groups).orderBy(groups.name);
      return { items: await loadGroupViews(context.db, rows) };
    },
  );

  app.get(
    '/api/v1/groups/:name',
    {
      onRequest: viewer,
      schema: {
        tags,
        security,
        summary: 'Read a group',
        params: nameParamsSchema,
        response: { 200: groupSchema, ...ERROR_RESPONSES },
      },
    },
    async (request) => viewOf(request.params.name),
  );

  app.post(
    '/api/v1/groups',
    {
      onRequest: admin,
      schema: {
        tags,
        security,
        summary: 'Create a group; its selections are resolved before the answer',
        body: createGroupSchema,
        response: { 201: groupSchema, ...ERROR_RESPONSES },
      },
    },
    async (request, reply) => {
      const body = request.body;
      const groupId = await context.db.transaction(async (tx) => {
        const configId = await configIdByName(tx, body.config);
        const rows = await tx
          .insert(groups)
          .values({
            name: body.name,
            description: body.description ?? '',
            priority: body.priority ?? 0,
            configId,
          })
          .onConflictDoNothing()
          .returning({ id: groups.id });
        const row = rows[0];
        if (row === undefined) throw alreadyExists('group', body.name);
        await replaceSelections(tx, row.id, body.selections ?? []);
        await recordAudit(tx, {
          actor: actorOf(principalOf(request)),
          action: 'group.create',
          target: `group:${body.name}`,
          details: { selections: (body.selections ?? []).length },
        });
        return row.id;
      });
      await resolveGroup(context, groupId);
      return reply.code(201).send(await viewOf(body.name));
    },
  );

  app.patch(
    '/api/v1/groups/:name',
    {
      onRequest: admin,
      schema: {
        tags,
        security,
        summary: 'Update a group; `selections`, when given, replaces all of them',
        params: nameParamsSchema,
        body: updateGroupSchema,
        response: { 200: groupSchema, ...ERROR_RESPONSES },
      },
    },
    async (request) => {
      const body = request.body;
      const group = await groupByName(request.params.name);
      await context.db.transaction(async (tx) => {
        const configId =
          body.config === undefined ? group.configId : await configIdByName(tx, body.config);
        await tx
          .update(groups)
          .set({
            description: body.description ?? group.description,
            priority: body.priority ?? group.priority,
            configId,
            updatedAt: new Date(context.now()),
          })
          .where(eq(groups.id, group.id));
        if (body.selections !== undefined) await replaceSelections(tx, group.id, body.selections);
        // New selections are resolved first, so members get one new revision, not two.
        if (body.selections === undefined) await bumpRevisions(tx, { groupIds: [group.id] });
        await recordAudit(tx, {
          actor: actorOf(principalOf(request)),
          action: 'group.update',
          target: `group:${group.name}`,
          details: { fields: Object.keys(body) },
        });
      });
      if (body.selections !== undefined) {
        await resolveReplacedSelections(context, group.id);
        await context.harbor.syncSatellites(await context.harbor.membersOf([group.id]));
      }
      return viewOf(group.name);
    },
  );

  app.put(
    '/api/v1/groups/:name/selections',
    {
      onRequest: admin,
      schema: {
        tags,
        security,
        summary: 'Replace every selection of a group',
        params: nameParamsSchema,
        body: updateGroupSchema.shape.selections.unwrap(),
        response: { 200: groupSchema, ...ERROR_RESPONSES },
      },
    },
    async (request) => {
      const group = await groupByName(request.params.name);
      await context.db.transaction(async (tx) => {
        await replaceSelections(tx, group.id, request.body);
        await recordAudit(tx, {
          actor: actorOf(principalOf(request)),
          action: 'group.selections.replace',
          target: `group:${group.name}`,
          details: { selections: request.body.length },
        });
      });
      await resolveReplacedSelections(context, group.id);
      await context.harbor.syncSatellites(await context.harbor.membersOf([group.id]));
      return viewOf(group.name);
    },
  );

  app.post(
    '/api/v1/groups/:name/resolve',
    {
      onRequest: admin,
      schema: {
        tags,
        security,
        summary: 'Resolve the tags and referrers of a group now',
        params: nameParamsSchema,
        response: { 200: resolveResultSchema, ...ERROR_RESPONSES },
      },
    },
    async (request) => {
      const group = await groupByName(request.params.name);
      const changed = await resolveGroup(context, group.id);
      await recordAudit(context.db, {
        actor: actorOf(principalOf(request)),
        action: 'group.resolve',
        target: `group:${group.name}`,
        details: { changed },
      });
      return { group: await viewOf(group.name), changed };
    },
  );

  app.delete(
    '/api/v1/groups/:name',
    {
      onRequest: admin,
      schema: {
        tags,
        security,
        summary: 'Delete a group; its satellites lose its artifacts',
        params: nameParamsSchema,
        response: { 204: z.null(), ...ERROR_RESPONSES },
      },
    },
    async (request, reply) => {
      const group = await groupByName(request.params.name);
      const members = await context.harbor.membersOf([group.id]);
      await context.db.transaction(async (tx) => {
        await bumpRevisions(tx, { groupIds: [group.id] });
        await tx.delete(satelliteGroups).where(eq(satelliteGroups.groupId, group.id));
        await tx.delete(groups).where(eq(groups.id, group.id));
        await recordAudit(tx, {
          actor: actorOf(principalOf(request)),
          action: 'group.delete',
          target: `group:${group.name}`,
        });
      });
      await context.harbor.syncSatellites(members);
      return reply.code(204).send(null);
    },
  );
}
