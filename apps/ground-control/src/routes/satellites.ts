import { and, asc, desc, eq, gt, inArray, isNull, sql, type SQL } from 'drizzle-orm';
import { z } from 'zod';
import {
  DEFAULT_JOIN_TOKEN_TTL_SECONDS,
  DEFAULT_PAGE_LIMIT,
  createSatelliteSchema,
  createdSatelliteSchema,
  joinTokenSchema,
  nameParamsSchema,
  newJoinTokenSchema,
  satelliteListQuerySchema,
  satelliteListSchema,
  satelliteSchema,
  satelliteStatusSchema,
  updateSatelliteSchema,
  type Satellite,
  type StatusReport,
} from '@edge/contract';
import { actorOf, principalOf, requireRole } from '../auth/operator.js';
import { SATELLITE_CHANNEL } from '../auth/satellite.js';
import type { AppContext } from '../context.js';
import { generateToken, hashToken } from '../crypto/tokens.js';
import { notify, type Db } from '../db/database.js';
import {
  configs,
  groups,
  joinTokens,
  satelliteEvents,
  satelliteGroups,
  satelliteStatus,
  satellites,
} from '../db/schema.js';
import { recordAudit } from '../domain/audit.js';
import { configIdByName, groupIdsByName } from '../domain/lookup.js';
import { bumpRevisions, notifyStateChanged } from '../domain/revisions.js';
import { satelliteView } from '../domain/views.js';
import { AppError, alreadyExists, notFound } from '../errors.js';
import { ERROR_RESPONSES, bearerAuth, type ZodApp } from '../http/types.js';
import { decodeCursor, encodeCursor } from '../http/cursor.js';

/** Events returned with a satellite's status; the full history is bounded separately. */
const STATUS_EVENTS_SHOWN = 50;

type SatelliteRow = typeof satellites.$inferSelect;

export async function loadSatelliteViews(db: Db, rows: SatelliteRow[]): Promise<Satellite[]> {
  if (rows.length === 0) return [];
  const ids = rows.map((row) => row.id);
  const memberships = await db
    .select({ satelliteId: satelliteGroups.satelliteId, name: groups.name })
    .from(satelliteGroups)
    .innerJoin(groups, eq(groups.id, satelliteGroups.groupId))
    .where(inArray(satelliteGroups.satelliteId, ids))
    .orderBy(asc(groups.name));
  const statuses = await db
    .select({
      satelliteId: satelliteStatus.satelliteId,
      appliedRevision: satelliteStatus.appliedRevision,
      phase: satelliteStatus.phase,
      receivedAt: satelliteStatus.receivedAt,
    })
    .from(satelliteStatus)
    .where(inArray(satelliteStatus.satelliteId, ids));
  const configIds = rows.map((row) => row.configId).filter((id): id is string => id !== null);
  const configRows =
    configIds.length === 0
      ? []
      : await db
          .select({ id: configs.id, name: configs.name })
          .from(configs)
          .where(inArray(configs.id, configIds));
  return rows.map((row) => {
    const status = statuses.find((entry) => entry.satelliteId === row.id);
    return satelliteView(row, {
      groups: memberships
        .filter((entry) => entry.satelliteId === row.id)
        .map((entry) => entry.name),
      config: configRows.find((config) => config.id === row.configId)?.name ?? null,
      appliedRevision: status?.appliedRevision ?? null,
      phase: status?.phase ?? null,
      receivedAt: status?.receivedAt ?? null,
    });
  });
}

function reportOf(stored: Record<string, unknown>): StatusReport {
  // Stored reports were validated against the status schema when they arrived.
  return stored as unknown as StatusReport;
}

/** Voids the unused join tokens of a satellite and issues a new one. */
async function issueJoinToken(
  db: Db,
  satelliteId: string,
  ttlSeconds: number,
  now: number,
): Promise<{ token: string; expiresAt: string }> {
  await db
    .update(joinTokens)
    .set({ revokedAt: new Date(now) })
    .where(
      and(
        eq(joinTokens.satelliteId, satelliteId),
        isNull(joinTokens.usedAt),
        isNull(joinTokens.revokedAt),
      ),
    );
  const token = generateToken('joinToken');
  const expiresAt = new Date(now + ttlSeconds * 1_000);
  await db.insert(joinTokens).values({ satelliteId, tokenHash: hashToken(token), expiresAt });
  return { token, expiresAt: expiresAt.toISOString() };
}

export function registerSatelliteRoutes(app: ZodApp, context: AppContext): void {
  const viewer = requireRole(context, 'viewer');
  const admin = requireRole(context, 'admin');
  const tags = ['satellites'];
  const security = bearerAuth;

  async function satelliteByName(name: string): Promise<SatelliteRow> {
    const [row] = await context.db.select().from(satellites).where(eq(satellites.name, name));
    if (row === undefined) throw notFound('satellite', name);
    return row;
  }

  async function viewOf(name: string): Promise<Satellite> {
    const [view] = await loadSatelliteViews(context.db, [await satelliteByName(name)]);
    return view!;
  }

  app.get(
    '/api/v1/satellites',
    {
      onRequest: viewer,
      schema: {
        tags,
        security,
        summary: 'List satellites by name, filtered by label and state, with cursor pagination',
        querystring: satelliteListQuerySchema,
        response: { 200: satelliteListSchema, ...ERROR_RESPONSES },
      },
    },
    async (request) => {
      const { label, state, cursor } = request.query;
      const limit = request.query.limit ?? DEFAULT_PAGE_LIMIT;
      const conditions: SQL[] = [];
      if (label !== undefined) {
        const separator = label.indexOf('=');
        const filter = { [label.slice(0, separator)]: label.slice(separator + 1) };
        conditions.push(sql`${satellites.labels} @> ${JSON.stringify(filter)}::jsonb`);
      }
      if (state !== undefined) conditions.push(eq(satellites.state, state));
      if (cursor !== undefined) conditions.push(gt(satellites.name, decodeCursor(cursor)));
      const rows = await context.db
        .select()
        .from(satellites)
        .where(and(...conditions))
        .orderBy(asc(satellites.name))
        .limit(limit + 1);
      const page = rows.slice(0, limit);
      return {
        items: await loadSatelliteViews(context.db, page),
        nextCursor: rows.length > limit ? encodeCursor(page[page.length - 1]!.name) : null,
      };
    },
  );

  app.get(
    '/api/v1/satellites/:name',
    {
      onRequest: viewer,
      schema: {
        tags,
        security,
        summary: 'Read a satellite',
        params: nameParamsSchema,
        response: { 200: satelliteSchema, ...ERROR_RESPONSES },
      },
    },
    async (request) => viewOf(request.params.name),
  );

  app.post(
    '/api/v1/satellites',
    {
      onRequest: admin,
      schema: {
        tags,
        security,
        summary: 'Create a satellite; the answer carries its join token, shown only once',
        body: createSatelliteSchema,
        response: { 201: createdSatelliteSchema, ...ERROR_RESPONSES },
      },
    },
    async (request, reply) => {
      const body = request.body;
      const result = await context.db.transaction(async (tx) => {
        const configId = await configIdByName(tx, body.config);
        const groupIds = await groupIdsByName(tx, body.groups ?? []);
        const rows = await tx
          .insert(satellites)
          .values({ name: body.name, labels: body.labels ?? {}, configId })
          .onConflictDoNothing()
          .returning({ id: satellites.id });
        const row = rows[0];
        if (row === undefined) throw alreadyExists('satellite', body.name);
        if (groupIds.length > 0) {
          await tx
            .insert(satelliteGroups)
            .values(groupIds.map((groupId) => ({ satelliteId: row.id, groupId })));
        }
        const joinToken = await issueJoinToken(
          tx,
          row.id,
          body.joinTokenTtlSeconds ?? DEFAULT_JOIN_TOKEN_TTL_SECONDS,
          context.now(),
        );
        await recordAudit(tx, {
          actor: actorOf(principalOf(request)),
          action: 'satellite.create',
          target: `satellite:${body.name}`,
          details: { groups: body.groups ?? [], labels: body.labels ?? {} },
        });
        return { joinToken, satelliteId: row.id };
      });
      await context.harbor.syncSatellites([result.satelliteId]);
      return reply
        .code(201)
        .send({ satellite: await viewOf(body.name), joinToken: result.joinToken });
    },
  );

  app.patch(
    '/api/v1/satellites/:name',
    {
      onRequest: admin,
      schema: {
        tags,
        security,
        summary: 'Change labels, groups (replaced as a whole) or config of a satellite',
        params: nameParamsSchema,
        body: updateSatelliteSchema,
        response: { 200: satelliteSchema, ...ERROR_RESPONSES },
      },
    },
    async (request) => {
      const body = request.body;
      const existing = await satelliteByName(request.params.name);
      await context.db.transaction(async (tx) => {
        const configId =
          body.config === undefined ? existing.configId : await configIdByName(tx, body.config);
        await tx
          .update(satellites)
          .set({ labels: body.labels ?? existing.labels, configId })
          .where(eq(satellites.id, existing.id));
        if (body.groups !== undefined) {
          const groupIds = await groupIdsByName(tx, body.groups);
          await tx.delete(satelliteGroups).where(eq(satelliteGroups.satelliteId, existing.id));
          if (groupIds.length > 0) {
            await tx
              .insert(satelliteGroups)
              .values(groupIds.map((groupId) => ({ satelliteId: existing.id, groupId })));
          }
        }
        if (body.groups !== undefined || body.config !== undefined) {
          await bumpRevisions(tx, { satelliteIds: [existing.id] });
        }
        await recordAudit(tx, {
          actor: actorOf(principalOf(request)),
          action: 'satellite.update',
          target: `satellite:${existing.name}`,
          details: { fields: Object.keys(body) },
        });
      });
      if (body.groups !== undefined) await context.harbor.syncSatellites([existing.id]);
      return viewOf(existing.name);
    },
  );

  app.post(
    '/api/v1/satellites/:name/join-token',
    {
      onRequest: admin,
      schema: {
        tags,
        security,
        summary:
          'Issue a new join token, voiding unused earlier ones; a joined satellite may join again with it',
        params: nameParamsSchema,
        body: newJoinTokenSchema.optional(),
        response: { 201: joinTokenSchema, ...ERROR_RESPONSES },
      },
    },
    async (request, reply) => {
      const existing = await satelliteByName(request.params.name);
      if (existing.state === 'revoked') {
        throw new AppError(
          'CONFLICT',
          `satellite "${existing.name}" is revoked; delete it and create it again`,
        );
      }
      const token = await context.db.transaction(async (tx) => {
        const issued = await issueJoinToken(
          tx,
          existing.id,
          request.body?.ttlSeconds ?? DEFAULT_JOIN_TOKEN_TTL_SECONDS,
          context.now(),
        );
        await recordAudit(tx, {
          actor: actorOf(principalOf(request)),
          action: 'satellite.join-token',
          target: `satellite:${existing.name}`,
        });
        return issued;
      });
      return reply.code(201).send(token);
    },
  );

  app.post(
    '/api/v1/satellites/:name/revoke',
    {
      onRequest: admin,
      schema: {
        tags,
        security,
        summary:
          'Revoke a satellite: its calls are rejected at once and its join tokens voided. ' +
          'Registry tokens it obtained earlier keep working until they expire, and a static ' +
          'kind oci credential is shared, so it cannot be revoked per satellite.',
        params: nameParamsSchema,
        response: { 200: satelliteSchema, ...ERROR_RESPONSES },
      },
    },
    async (request) => {
      const existing = await satelliteByName(request.params.name);
      const now = new Date(context.now());
      await context.db.transaction(async (tx) => {
        await tx
          .update(satellites)
          .set({ state: 'revoked', revokedAt: now })
          .where(eq(satellites.id, existing.id));
        await tx
          .update(joinTokens)
          .set({ revokedAt: now })
          .where(and(eq(joinTokens.satelliteId, existing.id), isNull(joinTokens.revokedAt)));
        await notify(tx, SATELLITE_CHANNEL, existing.id);
        await notifyStateChanged(tx, [existing.id]);
        await recordAudit(tx, {
          actor: actorOf(principalOf(request)),
          action: 'satellite.revoke',
          target: `satellite:${existing.name}`,
        });
      });
      context.satelliteAuth.evict(existing.id);
      // Deletes its Harbor robots; a failure is logged and the credential job retries it.
      await context.harbor.syncSatellites([existing.id]);
      return viewOf(existing.name);
    },
  );

  app.delete(
    '/api/v1/satellites/:name',
    {
      onRequest: admin,
      schema: {
        tags,
        security,
        summary: 'Delete a satellite with its status history',
        params: nameParamsSchema,
        response: { 204: z.null(), ...ERROR_RESPONSES },
      },
    },
    async (request, reply) => {
      const existing = await satelliteByName(request.params.name);
      try {
        await context.harbor.removeSatellite(existing.id);
      } catch (error) {
        // NOTE: the robot stays in Harbor, because its row goes with the satellite.
        request.log.error(
          { err: error, satelliteId: existing.id },
          'deleting the Harbor robot failed; delete robot sat-<satellite id> in Harbor by hand',
        );
      }
      await context.db.transaction(async (tx) => {
        await tx.delete(satellites).where(eq(satellites.id, existing.id));
        await notify(tx, SATELLITE_CHANNEL, existing.id);
        await notifyStateChanged(tx, [existing.id]);
        await recordAudit(tx, {
          actor: actorOf(principalOf(request)),
          action: 'satellite.delete',
          target: `satellite:${existing.name}`,
        });
      });
      context.satelliteAuth.evict(existing.id);
      return reply.code(204).send(null);
    },
  );

  app.get(
    '/api/v1/satellites/:name/status',
    {
      onRequest: viewer,
      schema: {
        tags,
        security,
        summary: 'Latest status report and recent events of a satellite',
        params: nameParamsSchema,
        response: { 200: satelliteStatusSchema, ...ERROR_RESPONSES },
      },
    },
    async (request) => {
      const existing = await satelliteByName(request.params.name);
      const [status] = await context.db
        .select()
        .from(satelliteStatus)
        .where(eq(satelliteStatus.satelliteId, existing.id));
      const events = await context.db
        .select()
        .from(satelliteEvents)
        .where(eq(satelliteEvents.satelliteId, existing.id))
        .orderBy(desc(satelliteEvents.id))
        .limit(STATUS_EVENTS_SHOWN);
      return {
        satelliteId: existing.id,
        name: existing.name,
        desiredRevision: existing.desiredRevision,
        report: status === undefined ? null : reportOf(status.report),
        receivedAt: status?.receivedAt.toISOString() ?? null,
        events: events.map((event) => ({
          time: event.time.toISOString(),
          kind: event.kind,
          message: event.message,
          details: event.details,
        })),
      };
    },
  );
}
