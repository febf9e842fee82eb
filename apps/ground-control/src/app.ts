import { randomUUID } from 'node:crypto';
import fastifySwagger from '@fastify/swagger';
import fastifySwaggerUi from '@fastify/swagger-ui';
import Fastify, { LogController, type FastifyInstance } from 'fastify';
import {
  jsonSchemaTransform,
  jsonSchemaTransformObject,
  serializerCompiler,
  validatorCompiler,
  type ZodTypeProvider,
} from 'fastify-type-provider-zod';
import pino, { type Logger } from 'pino';
import { SATELLITE_CHANNEL, SatelliteAuthenticator } from './auth/satellite.js';
import type { Config } from './config.js';
import type { AppContext } from './context.js';
import { SecretBox, loadOrCreateKey } from './crypto/secrets.js';
import { openDatabase, type Database } from './db/database.js';
import { ensureAdmin } from './domain/bootstrap.js';
import { HarborCredentials, type HarborClientFactory } from './domain/harbor-credentials.js';
import { LastSeenRecorder } from './domain/last-seen.js';
import { ReportTimes } from './domain/report-times.js';
import { recordStatus } from './domain/status.js';
import { StateService } from './domain/state-service.js';
import { STATE_CHANNEL, StateWaiters } from './domain/state-waiters.js';
import { installErrorHandlers } from './http/error-handler.js';
import { ConnectionTracker } from './http/connections.js';
import type { ZodApp } from './http/types.js';
import { Jobs } from './jobs.js';
import { Metrics } from './metrics.js';
import { registerRoutes } from './routes/index.js';
import { OciUpstreamClient, type UpstreamClient } from './upstream/client.js';

/** Version reported in the OpenAPI document and `/healthz`. */
export const GROUND_CONTROL_VERSION = '0.1.0';

/** Paths of logged fields that may contain secrets; pino replaces them with `[redacted]`. */
export const REDACTED_LOG_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  '*.password',
  '*.token',
  '*.secret',
  '*.credential',
  '*.pullCredential',
];

export interface BuildOptions {
  /** An opened database to use instead of opening one from the config (tests share one). */
  database?: Database;
  /** Close the database on app close; default true when buildApp opened it. */
  closeDatabase?: boolean;
  logger?: Logger;
  upstream?: UpstreamClient;
  harborClientFactory?: HarborClientFactory;
  /** Start the scheduled jobs (re-resolution, rotation, cleanup); default true. */
  jobs?: boolean;
  now?: () => number;
}

export function createLogger(config: Config, destination?: pino.DestinationStream): Logger {
  return pino(
    {
      level: config.logLevel,
      redact: { paths: REDACTED_LOG_PATHS, censor: '[redacted]' },
      base: { service: 'ground-control' },
    },
    destination,
  );
}

/**
 * Builds the Fastify app: opens and migrates the database, loads the encryption key, creates
 * the admin account on the first start, and registers every route. Listening is left to the
 * caller, so tests drive the app through `inject`.
 */
export async function buildApp(
  config: Config,
  options: BuildOptions = {},
): Promise<{ app: FastifyInstance; context: AppContext }> {
  const logger = options.logger ?? createLogger(config);
  const database =
    options.database ??
    (await openDatabase({
      url: config.databaseUrl,
      dataDir: config.databaseUrl === undefined ? `${config.dataDir}/pglite` : undefined,
      poolSize: config.databasePoolSize,
      logger,
    }));
  const ownsDatabase = options.closeDatabase ?? options.database === undefined;
  const now = options.now ?? Date.now;
  let ready = false;

  try {
    await database.migrate();
    const key = await loadOrCreateKey(config.encryptionKey, config.dataDir, logger);
    const secrets = new SecretBox(key, config.encryptionKeysOld);
    await ensureAdmin(database.db, {
      adminPassword: config.adminPassword,
      dataDir: config.dataDir,
      logger,
    });
    const metrics = new Metrics();
    const waiters = new StateWaiters();
    const states = new StateService(database.db, secrets, () => database.listening);
    const reportTimes = new ReportTimes(database.db);
    const lastSeen = new LastSeenRecorder(database.db, logger, reportTimes);
    const satelliteAuth = new SatelliteAuthenticator(database.db, now);
    const upstream = options.upstream ?? new OciUpstreamClient();
    const context: AppContext = {
      config,
      database,
      db: database.db,
      secrets,
      logger,
      waiters,
      states,
      lastSeen,
      reportTimes,
      satelliteAuth,
      upstream,
      harbor: new HarborCredentials(
        { db: database.db, secrets, logger, config, now },
        options.harborClientFactory,
      ),
      metrics,
      now,
    };
    reportTimes.setStoreReport(async (satelliteId, report, timeMs) => {
      await recordStatus(context, satelliteId, report, { receivedAtMs: timeMs });
    });
    await database.listen(STATE_CHANNEL, (payload) => {
      // Invalidate first, so a woken long poll cannot read the old revision from memory.
      states.onNotification(payload);
      waiters.onNotification(payload);
    });
    await database.listen(SATELLITE_CHANNEL, (payload) => satelliteAuth.evict(payload));

    const app = (
      Fastify({
        loggerInstance: logger,
        bodyLimit: config.bodyLimitBytes,
        trustProxy: config.trustProxy,
        // The onResponse hook below writes one access line per request instead.
        logController: new LogController({
          disableRequestLogging: true,
          requestIdLogLabel: 'reqId',
        }),
        genReqId: () => randomUUID(),
        // Long polls hold requests up to a minute, so the default timeouts stay off.
        requestTimeout: 0,
      }) as unknown as FastifyInstance
    ).withTypeProvider<ZodTypeProvider>();
    const connections = new ConnectionTracker(app.server);
    app.setValidatorCompiler(validatorCompiler);
    app.setSerializerCompiler(serializerCompiler);
    app.decorateRequest('principal', null);
    app.decorateRequest('satellite', null);
    installErrorHandlers(app);
    installAccessLog(app, metrics);

    await app.register(fastifySwagger, {
      openapi: {
        openapi: '3.1.0',
        info: {
          title: 'Ground Control',
          version: GROUND_CONTROL_VERSION,
          description:
            'Operator API (/api/v1) and satellite protocol (/satellite/v1) of Ground Control.',
        },
        components: {
          securitySchemes: {
            bearerAuth: { type: 'http', scheme: 'bearer' },
            satelliteJwt: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' },
          },
        },
      },
      transform: jsonSchemaTransform,
      transformObject: jsonSchemaTransformObject,
    });
    await app.register(fastifySwaggerUi, { routePrefix: '/docs' });

    registerRoutes(app, context, { isReady: () => ready });

    const jobs = new Jobs(context);
    app.addHook('onReady', () => {
      ready = true;
      lastSeen.start();
      if (options.jobs ?? true) jobs.start();
    });
    app.addHook('preClose', () => {
      ready = false;
      waiters.close();
      connections.closeIdle();
    });
    app.addHook('onClose', async () => {
      await jobs.stop();
      await lastSeen.stop();
      if (options.upstream === undefined) await upstream.close();
      if (ownsDatabase) await database.close();
    });
    return { app: app as unknown as FastifyInstance, context };
  } catch (error) {
    if (ownsDatabase) await database.close();
    throw error;
  }
}

function installAccessLog(app: ZodApp, metrics: Metrics): void {
  app.addHook('onResponse', (request, reply, done) => {
    const route = request.routeOptions.url ?? 'unknown';
    const durationMs = Math.round(reply.elapsedTime);
    const status = reply.statusCode;
    metrics.httpRequests.inc({ method: request.method, route, status: String(status) });
    metrics.httpDuration.observe({ route }, durationMs / 1_000);
    const line = {
      reqId: request.id,
      method: request.method,
      route,
      path: request.url.split('?')[0],
      status,
      durationMs,
    };
    if (status >= 500) request.log.error(line, 'request failed');
    else if (status >= 400) request.log.warn(line, 'request rejected');
    else request.log.info(line, 'request done');
    done();
  });
}
