import { sql } from 'drizzle-orm';
import { z } from 'zod';
import type { AppContext } from '../context.js';
import { AppError } from '../errors.js';
import type { ZodApp } from '../http/types.js';

export function registerHealthRoutes(
  app: ZodApp,
  context: AppContext,
  health: { isReady: () => boolean },
): void {
  app.get(
    '/healthz',
    {
      schema: {
        tags: ['health'],
        summary: 'Liveness: the process is running',
        response: { 200: z.object({ status: z.literal('ok') }) },
      },
    },
    () => ({ status: 'ok' as const }),
  );

  app.get(
    '/readyz',
    {
      schema: {
        tags: ['health'],
        summary: 'Readiness: the database answers and migrations are applied',
        response: { 200: z.object({ status: z.literal('ready') }) },
      },
    },
    async () => {
      if (!health.isReady()) {
        throw new AppError('NOT_READY', 'Ground Control is starting or shutting down');
      }
      try {
        await context.db.execute(sql`select 1 from users limit 1`);
      } catch (error) {
        throw new AppError(
          'NOT_READY',
          'the database query failed; check DATABASE_URL and that the database is running',
          {
            cause: error,
          },
        );
      }
      return { status: 'ready' as const };
    },
  );

  app.get('/metrics', { schema: { hide: true } }, async (_request, reply) => {
    const body = await context.metrics.registry.metrics();
    return reply.type(context.metrics.registry.contentType).send(body);
  });

  app.get('/openapi.json', { schema: { hide: true } }, () => app.swagger());
}
