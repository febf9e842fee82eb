// Test double of Harbor's REST API v2.0 (https://github.com/goharbor/harbor, document
// api/v2.0/swagger.yaml as of Harbor v2.15). It exists for tests because no real Harbor can run
// on this machine. It imitates the robot account, project, health, ping and systeminfo endpoints with
// Harbor's status codes, snake_case JSON fields, `{ errors: [{ code, message }] }` envelope,
// `X-Request-Id`, `X-Total-Count` and `Link` headers, HTTP basic auth for users and robots, and
// the `robot$` name prefix. State lives in memory and ends with `stop()`.

import { randomUUID } from 'node:crypto';
import { STATUS_CODES } from 'node:http';
import Fastify from 'fastify';
import type { FastifyError, FastifyInstance } from 'fastify';
import { startRegistry } from '../registry.js';
import type { RegistryHandle } from '../registry.js';
import { createCounters } from './context.js';
import type { HarborDoubleCounters } from './context.js';
import { HarborApiError, errorBody } from './errors.js';
import { registerProjectRoutes } from './routes-projects.js';
import { registerRobotRoutes } from './routes-robots.js';
import { registerSystemRoutes } from './routes-system.js';
import type { SystemState } from './routes-system.js';
import { HarborStore, createClock } from './store.js';
import type { HarborClock, HarborProjectRecord, HarborUser } from './store.js';
import { createTokenAuthorizer } from './token-authorizer.js';
import type { HarborTokenGrant, HarborTokenRequest } from './token-authorizer.js';
import { robotToJson } from './views.js';
import type { RobotJson } from './views.js';

/** Harbor's documented default password of the `admin` account. */
const DEFAULT_ADMIN_PASSWORD = 'Harbor12345';
const DEFAULT_ROBOT_PREFIX = 'robot$';
const IMITATED_VERSION = 'v2.15.0-test-double';

export interface StartHarborDoubleOptions {
  /** The system admin account the double starts with, by default `admin` / `Harbor12345`. */
  admin?: { username?: string; password?: string };
  /** Robot name prefix (Harbor's `robot_name_prefix` setting), by default `robot$`. */
  robotPrefix?: string;
  /** Projects created at start and owned by the admin account, private unless `public` is set. */
  projects?: (string | { name: string; public?: boolean })[];
  /**
   * Starts a real docker-registry in token mode next to the API, whose token server grants what
   * `authorizeToken` decides. Off by default.
   */
  registry?: { tokenTtlSeconds?: number };
  /** Serves HTTPS with this PEM key and certificate in place of plain HTTP. */
  tls?: { key: string; cert: string };
}

export interface HarborDouble {
  /** Base URL `http://127.0.0.1:PORT` (`https` with `tls`). The API lives under `/api/v2.0`. */
  url: string;
  apiUrl: string;
  admin: { username: string; password: string };
  robotPrefix: string;
  clock: HarborClock;
  counters: HarborDoubleCounters;
  /**
   * The registry started with the `registry` option. Its token server plays Harbor's
   * `/service/token`, but with its own URL and the service name `edge-testkit-registry`.
   */
  registry?: RegistryHandle;
  /** Creates a project owned by the admin account. */
  createProject(name: string, options?: { public?: boolean }): HarborProjectRecord;
  /** Adds a user without the system admin role unless `sysadmin` is set. */
  createUser(username: string, password: string, options?: { sysadmin?: boolean }): HarborUser;
  /** Lists every robot as the API renders it (never with its secret). */
  listRobots(): RobotJson[];
  /** Marks a component unhealthy in `/health`, or healthy again with `undefined`. */
  setComponentHealth(name: string, error: string | undefined): void;
  /** Grants registry access for credentials the way Harbor's token service does. */
  authorizeToken(request: HarborTokenRequest): Promise<HarborTokenGrant>;
  stop(): Promise<void>;
}

function installErrorHandling(app: FastifyInstance): void {
  app.addHook('onRequest', async (request, reply) => {
    const requestId = request.headers['x-request-id'];
    reply.header(
      'X-Request-Id',
      typeof requestId === 'string' && requestId !== '' ? requestId : randomUUID(),
    );
  });
  app.setNotFoundHandler((request, reply) => {
    void reply
      .code(404)
      .send(
        errorBody('NOT_FOUND', `no route for ${request.method} ${request.url.split('?')[0] ?? ''}`),
      );
  });
  app.setErrorHandler((error: FastifyError | HarborApiError, _request, reply) => {
    if (error instanceof HarborApiError) {
      return reply.code(error.status).send(errorBody(error.code, error.message));
    }
    // Harbor turns request-binding failures (bad JSON, wrong media type, oversized body) into
    // their own status with the status text as code, e.g. 415 UNSUPPORTED_MEDIA_TYPE.
    const status = error.statusCode ?? 500;
    if (status >= 400 && status < 500) {
      const code = (STATUS_CODES[status] ?? 'Bad Request').toUpperCase().replace(/ /g, '_');
      return reply.code(status).send(errorBody(code, error.message));
    }
    return reply.code(500).send(errorBody('UNKNOWN', 'internal server error'));
  });
}

function createApp(tls: StartHarborDoubleOptions['tls']): FastifyInstance {
  // Harbor declares HEAD only where its document lists it, so fastify must not add one per GET.
  const common = { logger: false, exposeHeadRoutes: false };
  if (!tls) return Fastify(common);
  return Fastify({ ...common, https: tls });
}

/** Starts the Harbor double on 127.0.0.1 on a free port. */
export async function startHarborDouble(
  options: StartHarborDoubleOptions = {},
): Promise<HarborDouble> {
  const robotPrefix = options.robotPrefix ?? DEFAULT_ROBOT_PREFIX;
  const clock = createClock();
  const store = new HarborStore(robotPrefix, clock);
  const counters = createCounters();
  const admin = {
    username: options.admin?.username ?? 'admin',
    password: options.admin?.password ?? DEFAULT_ADMIN_PASSWORD,
  };
  const adminUser = store.addUser(admin.username, admin.password, true);
  for (const project of options.projects ?? []) {
    const spec = typeof project === 'string' ? { name: project } : project;
    store.addProject(spec.name, spec.public ?? false, adminUser);
  }

  const app = createApp(options.tls);
  // Harbor's API consumes JSON only, so a text body gets 415 as there.
  app.removeContentTypeParser('text/plain');
  installErrorHandling(app);
  app.addHook('onResponse', (request, _reply, done) => {
    const route = `${request.method} ${request.routeOptions.url ?? 'unknown'}`;
    counters.requests.set(route, (counters.requests.get(route) ?? 0) + 1);
    done();
  });
  const system: SystemState = { unhealthy: new Map(), version: IMITATED_VERSION, externalUrl: '' };
  const ctx = { store, counters };
  registerSystemRoutes(app, ctx, system);
  registerProjectRoutes(app, ctx);
  registerRobotRoutes(app, ctx);

  await app.listen({ host: '127.0.0.1', port: 0 });
  const address = app.server.address();
  if (address === null || typeof address === 'string') {
    await app.close();
    throw new Error('Harbor double failed to read its listening port; check the fastify version');
  }
  const url = `${options.tls ? 'https' : 'http'}://127.0.0.1:${address.port}`;
  system.externalUrl = url;
  const authorizeToken = createTokenAuthorizer(store, counters);

  let registry: RegistryHandle | undefined;
  if (options.registry) {
    try {
      registry = await startRegistry({
        auth: 'token',
        tokenAuthorizer: authorizeToken,
        ...(options.registry.tokenTtlSeconds === undefined
          ? {}
          : { tokenTtlSeconds: options.registry.tokenTtlSeconds }),
      });
    } catch (err) {
      await app.close();
      throw err;
    }
    system.registryUrl = registry.host;
  }

  return {
    url,
    apiUrl: `${url}/api/v2.0`,
    admin,
    robotPrefix,
    clock,
    counters,
    createProject: (name, projectOptions) =>
      store.addProject(name, projectOptions?.public ?? false, adminUser),
    createUser: (username, password, userOptions) =>
      store.addUser(username, password, userOptions?.sysadmin ?? false),
    listRobots: () => [...store.robots.values()].map((robot) => robotToJson(store, robot)),
    setComponentHealth: (name, error) => {
      if (error === undefined) system.unhealthy.delete(name);
      else system.unhealthy.set(name, error);
    },
    ...(registry === undefined ? {} : { registry }),
    authorizeToken,
    stop: async () => {
      try {
        await registry?.stop();
      } finally {
        await app.close();
      }
    },
  };
}
