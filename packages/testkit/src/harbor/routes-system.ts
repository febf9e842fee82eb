import type { FastifyInstance } from 'fastify';
import { securityContext } from './context.js';
import type { RouteContext } from './context.js';

// Health, ping and system information endpoints of Harbor v2.0. None of them needs credentials,
// but `/systeminfo` leaves out the deployment details for anonymous callers, as Harbor does.

/** Harbor's component names in `/health`. */
export const HARBOR_COMPONENTS = [
  'core',
  'database',
  'jobservice',
  'portal',
  'redis',
  'registry',
  'registryctl',
] as const;

export interface SystemState {
  /** Components reported as unhealthy, with their error text. */
  unhealthy: Map<string, string>;
  /** The value of `harbor_version` in `/systeminfo`. */
  version: string;
  /** The registry URL advertised in `/systeminfo`, once a registry is attached. */
  registryUrl?: string;
  externalUrl: string;
}

export function registerSystemRoutes(
  app: FastifyInstance,
  ctx: RouteContext,
  state: SystemState,
): void {
  app.get('/api/v2.0/ping', async (_request, reply) => {
    return reply.type('text/plain; charset=utf-8').send('Pong');
  });

  app.get('/api/v2.0/health', () => {
    const components = HARBOR_COMPONENTS.map((name) => {
      const error = state.unhealthy.get(name);
      return error === undefined
        ? { name, status: 'healthy' }
        : { name, status: 'unhealthy', error };
    });
    const healthy = components.every((component) => component.status === 'healthy');
    return { status: healthy ? 'healthy' : 'unhealthy', components };
  });

  app.get('/api/v2.0/systeminfo', (request) => {
    const security = securityContext(ctx.store, request);
    const general = {
      auth_mode: 'db_auth',
      primary_auth_mode: false,
      self_registration: false,
      banner_message: '',
      current_time: ctx.store.clock.now().toISOString(),
    };
    if (security.kind === 'anonymous') return general;
    return {
      ...general,
      harbor_version: state.version,
      external_url: state.externalUrl,
      registry_url: state.registryUrl ?? state.externalUrl,
      project_creation_restriction: 'everyone',
      has_ca_root: false,
      read_only: false,
      notification_enable: true,
      registry_storage_provider_name: 'filesystem',
    };
  });
}
