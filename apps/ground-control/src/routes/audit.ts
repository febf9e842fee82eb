import { and, desc, eq, lt, type SQL } from 'drizzle-orm';
import { DEFAULT_PAGE_LIMIT, auditListSchema, auditQuerySchema } from '@edge/contract';
import { requireRole } from '../auth/operator.js';
import type { AppContext } from '../context.js';
import { auditLog } from '../db/schema.js';
import { decodeCursor, encodeCursor } from '../http/cursor.js';
import { AppError } from '../errors.js';
import { ERROR_RESPONSES, bearerAuth, type ZodApp } from '../http/types.js';

export function registerAuditRoutes(app: ZodApp, context: AppContext): void {
  app.get(
    '/api/v1/audit',
    {
      onRequest: requireRole(context, 'admin'),
      schema: {
        tags: ['audit'],
        security: bearerAuth,
        summary: 'Audit log, newest first: every mutating operator call, join, revoke and rotation',
        querystring: auditQuerySchema,
        response: { 200: auditListSchema, ...ERROR_RESPONSES },
      },
    },
    async (request) => {
      const limit = request.query.limit ?? DEFAULT_PAGE_LIMIT;
      const conditions: SQL[] = [];
      if (request.query.action !== undefined)
        conditions.push(eq(auditLog.action, request.query.action));
      if (request.query.cursor !== undefined) {
        const before = Number(decodeCursor(request.query.cursor));
        if (!Number.isSafeInteger(before)) {
          throw new AppError(
            'VALIDATION_FAILED',
            'cursor is invalid; pass nextCursor from the last page',
          );
        }
        conditions.push(lt(auditLog.id, before));
      }
      const rows = await context.db
        .select()
        .from(auditLog)
        .where(and(...conditions))
        .orderBy(desc(auditLog.id))
        .limit(limit + 1);
      const page = rows.slice(0, limit);
      return {
        items: page.map((row) => ({
          id: String(row.id),
          time: row.time.toISOString(),
          actor: row.actor,
          action: row.action,
          target: row.target,
          details: row.details,
        })),
        nextCursor: rows.length > limit ? encodeCursor(String(page[page.length - 1]!.id)) : null,
      };
    },
  );
}
