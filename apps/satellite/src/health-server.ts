import Fastify from 'fastify';
import type { FastifyInstance } from 'fastify';
import type { Registry } from 'prom-client';

/** Serves /healthz (process alive), /readyz (local registry usable) and /metrics. */
export async function startHealthServer(options: {
  listen: { host: string; port: number };
  metrics: Registry[];
  ready: () => { ready: boolean; reason?: string };
}): Promise<{ app: FastifyInstance; url: string }> {
  const app = Fastify({ logger: false });
  app.get('/healthz', () => Promise.resolve({ status: 'ok' }));
  app.get('/readyz', (_request, reply) => {
    const state = options.ready();
    return reply.code(state.ready ? 200 : 503).send({
      status: state.ready ? 'ready' : 'not ready',
      ...(state.reason ? { reason: state.reason } : {}),
    });
  });
  app.get('/metrics', async (_request, reply) => {
    const texts = await Promise.all(options.metrics.map((registry) => registry.metrics()));
    return reply
      .header('content-type', options.metrics[0]?.contentType ?? 'text/plain; version=0.0.4')
      .send(texts.join('\n'));
  });
  const url = await app.listen({ host: options.listen.host, port: options.listen.port });
  return { app, url };
}
