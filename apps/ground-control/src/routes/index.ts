import type { AppContext } from '../context.js';
import type { ZodApp } from '../http/types.js';
import { registerAuditRoutes } from './audit.js';
import { registerAuthRoutes } from './auth.js';
import { registerConfigRoutes } from './configs.js';
import { registerFleetRoutes } from './fleet.js';
import { registerGroupRoutes } from './groups.js';
import { registerHealthRoutes } from './health.js';
import { registerRegistryRoutes } from './registries.js';
import { registerSatelliteApiRoutes } from './satellite-api.js';
import { registerSatelliteRoutes } from './satellites.js';
import { registerUserRoutes } from './users.js';

export function registerRoutes(
  app: ZodApp,
  context: AppContext,
  health: { isReady: () => boolean },
): void {
  registerHealthRoutes(app, context, health);
  registerAuthRoutes(app, context);
  registerUserRoutes(app, context);
  registerRegistryRoutes(app, context);
  registerGroupRoutes(app, context);
  registerConfigRoutes(app, context);
  registerSatelliteRoutes(app, context);
  registerFleetRoutes(app, context);
  registerAuditRoutes(app, context);
  registerSatelliteApiRoutes(app, context);
}
