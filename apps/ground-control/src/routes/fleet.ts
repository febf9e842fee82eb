import { sql } from 'drizzle-orm';
import {
  DEFAULT_PAGE_LIMIT,
  DEFAULT_SATELLITE_CONFIG,
  FLEET_CATEGORIES,
  fleetQuerySchema,
  fleetSchema,
  type Fleet,
  type FleetCategory,
} from '@edge/contract';
import { requireRole } from '../auth/operator.js';
import { queryRows } from '../db/database.js';
import type { AppContext } from '../context.js';
import { decodeCursor, encodeCursor } from '../http/cursor.js';
import { ERROR_RESPONSES, bearerAuth, type ZodApp } from '../http/types.js';

/** A satellite is stale after this many poll intervals without contact. */
export const STALE_POLL_INTERVALS = 3;

/**
 * Builds the query of one row per satellite with its fleet category. The poll interval comes
 * from the config that applies to the satellite (its own, else its highest-priority group's), as
 * in the desired state.
 */
function fleetQuery(now: Date) {
  return sql`
    with base as (
      select s.id, s.name, s.state, s.joined_at, s.desired_revision,
        st.applied_revision, st.phase, st.present_count,
        greatest(st.received_at, s.last_seen_at) as last_seen,
        coalesce(
          (select (c.settings->>'pollIntervalSeconds')::int from configs c
            where c.id = coalesce(s.config_id, (
              select g.config_id from satellite_groups sg join groups g on g.id = sg.group_id
              where sg.satellite_id = s.id and g.config_id is not null
              order by g.priority desc, g.name asc limit 1))),
          ${DEFAULT_SATELLITE_CONFIG.pollIntervalSeconds}) as poll_interval,
        (select count(distinct (sel.registry_id, sel.repository, coalesce(sel.tag, ''), sel.resolved_digest))
          from selections sel join satellite_groups sg on sg.group_id = sel.group_id
          where sg.satellite_id = s.id and sel.resolved_digest is not null) as desired_artifacts
      from satellites s left join satellite_status st on st.satellite_id = s.id
    )
    select id, name, desired_revision, applied_revision, last_seen,
      -- NOTE: a count difference; present artifacts that left the desired state hide missing ones.
      greatest(0, desired_artifacts - coalesce(present_count, 0))::int as missing,
      case
        when state = 'revoked' then 'revoked'
        when joined_at is null then 'never-seen'
        when last_seen is null
          or last_seen < ${now}::timestamptz - make_interval(secs => ${STALE_POLL_INTERVALS} * poll_interval) then 'stale'
        when phase = 'failed' then 'failed'
        when phase = 'in-sync' and applied_revision = desired_revision then 'in-sync'
        else 'syncing'
      end as category
    from base`;
}

interface FleetRow {
  id: string;
  name: string;
  desired_revision: string | number;
  applied_revision: string | number | null;
  last_seen: Date | string | null;
  missing: number;
  category: FleetCategory;
}

function toIso(value: Date | string | null): string | null {
  if (value === null) return null;
  return (value instanceof Date ? value : new Date(value)).toISOString();
}

export function registerFleetRoutes(app: ZodApp, context: AppContext): void {
  app.get(
    '/api/v1/fleet',
    {
      onRequest: requireRole(context, 'viewer'),
      schema: {
        tags: ['fleet'],
        security: bearerAuth,
        summary:
          'Counts and list of satellites in sync, syncing, failed, stale (no contact for three ' +
          'poll intervals), never seen or revoked, with desired and applied revisions',
        querystring: fleetQuerySchema,
        response: { 200: fleetSchema, ...ERROR_RESPONSES },
      },
    },
    async (request): Promise<Fleet> => {
      const now = new Date(context.now());
      const limit = request.query.limit ?? DEFAULT_PAGE_LIMIT;
      const counted = await queryRows<{ category: FleetCategory; count: number }>(
        context.db,
        sql`select category, count(*)::int as count from (${fleetQuery(now)}) fleet group by category`,
      );
      const counts = Object.fromEntries(
        FLEET_CATEGORIES.map((category) => [category, 0]),
      ) as Record<FleetCategory, number>;
      let total = 0;
      for (const row of counted) {
        counts[row.category] = Number(row.count);
        total += Number(row.count);
      }
      const after = request.query.cursor === undefined ? null : decodeCursor(request.query.cursor);
      const category = request.query.category ?? null;
      const rows = await queryRows<FleetRow>(
        context.db,
        sql`
        select * from (${fleetQuery(now)}) fleet
        where (${category}::text is null or category = ${category}::text)
          and (${after}::text is null or name > ${after}::text)
        order by name limit ${limit + 1}`,
      );
      const page = rows.slice(0, limit);
      return {
        counts: { total, ...counts },
        items: page.map((row) => ({
          id: row.id,
          name: row.name,
          category: row.category,
          desiredRevision: Number(row.desired_revision),
          appliedRevision: row.applied_revision === null ? null : Number(row.applied_revision),
          missingArtifacts: Number(row.missing),
          lastSeenAt: toIso(row.last_seen),
        })),
        nextCursor: rows.length > limit ? encodeCursor(page[page.length - 1]!.name) : null,
      };
    },
  );
}
