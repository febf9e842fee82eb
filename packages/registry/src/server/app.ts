import type { AddressInfo } from 'node:net';
import Fastify, {
  LogController,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
} from 'fastify';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { RegistryError, isRegistryError } from '../errors.js';
import type { OciStore } from '../store/store.js';
import { Authenticator, type AuthOptions } from './auth.js';
import { deleteBlob, getBlob, headBlob, type BlobServing } from './blobs.js';
import { BufferPool } from './file-body.js';
import { errorEnvelope, firstHeader, sendError } from './http-util.js';
import { listCatalog, listReferrers, listTags } from './listing.js';
import { deleteManifest, getManifest, putManifest } from './manifests.js';
import { createRegistryMetrics, type RegistryMetrics } from './metrics.js';
import { matchRoute, type RouteMatch } from './route-match.js';
import { cancelUpload, finishUpload, patchUpload, startUpload, uploadStatus } from './uploads.js';

export interface RegistryServerOptions {
  store: OciStore;
  /** Accept uploads, manifest PUTs and deletes (default false: pull only). */
  push?: boolean;
  auth?: AuthOptions;
  tls?: { cert: string | Buffer; key: string | Buffer };
  logger?: Logger | boolean;
  /** prom-client registry to register the metrics in; a new one by default. */
  metricsRegistry?: Registry;
}

declare module 'fastify' {
  interface FastifyRequest {
    registryRoute?: RouteMatch;
    /** Code of the error envelope sent, for the access log. */
    registryErrorCode?: string;
  }
  interface FastifyInstance {
    metricsRegistry: Registry;
  }
}

const WRITE_METHODS = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

function unsupported(method: string, path: string): RegistryError {
  return new RegistryError(
    'UNSUPPORTED',
    `${method} is not supported on ${path.split('?')[0] ?? ''}`,
  );
}

type Handler = (
  request: FastifyRequest,
  reply: FastifyReply,
  match: RouteMatch,
) => Promise<FastifyReply>;

function dispatcher(store: OciStore, metrics: RegistryMetrics): Handler {
  const blobs: BlobServing = { pool: new BufferPool(), metrics };
  return async (request, reply, match) => {
    const method = request.method;
    const repository = match.repository ?? '';
    const reference = match.reference ?? '';
    switch (match.operation) {
      case 'base':
        if (method === 'GET' || method === 'HEAD') return reply.type('application/json').send({});
        break;
      case 'catalog':
        if (method === 'GET') return listCatalog(request, reply, store);
        break;
      case 'tags_list':
        if (method === 'GET') return listTags(request, reply, store, repository);
        break;
      case 'referrers':
        if (method === 'GET') return listReferrers(request, reply, store, repository, reference);
        break;
      case 'manifest':
        if (method === 'GET' || method === 'HEAD') {
          return getManifest(request, reply, store, metrics, repository, reference);
        }
        if (method === 'PUT') return putManifest(request, reply, store, repository, reference);
        if (method === 'DELETE') return deleteManifest(reply, store, repository, reference);
        break;
      case 'blob':
        if (method === 'GET') return getBlob(request, reply, store, blobs, reference);
        if (method === 'HEAD') return headBlob(request, reply, store, reference);
        if (method === 'DELETE') return deleteBlob(reply, store, reference);
        break;
      case 'upload_start':
        if (method === 'POST') return startUpload(request, reply, store, repository);
        break;
      case 'upload':
        if (method === 'PATCH') return patchUpload(request, reply, store, repository, reference);
        if (method === 'PUT') return finishUpload(request, reply, store, repository, reference);
        if (method === 'GET') return uploadStatus(reply, store, repository, reference);
        if (method === 'DELETE') return cancelUpload(reply, store, reference);
        break;
      case 'metrics':
      case 'unknown':
        break;
    }
    if (match.operation === 'unknown') {
      throw new RegistryError(
        'NAME_UNKNOWN',
        `no registry endpoint at ${request.url.split('?')[0] ?? ''}`,
        undefined,
        {
          status: 404,
        },
      );
    }
    throw unsupported(method, request.url);
  };
}

function fastifyLoggerOptions(logger: Logger | boolean | undefined): Record<string, unknown> {
  if (logger === undefined || typeof logger === 'boolean') return { logger: logger ?? false };
  return { loggerInstance: logger };
}

/**
 * Builds the OCI distribution (1.1) HTTP API over `store` as a Fastify instance, with an access
 * log line per request and Prometheus metrics at `/metrics`.
 */
export function createRegistryServer(options: RegistryServerOptions): Promise<FastifyInstance> {
  const app = Fastify({
    ...fastifyLoggerOptions(options.logger),
    // The onResponse hook below writes the one access-log line per request.
    logController: new LogController({ disableRequestLogging: true }),
    exposeHeadRoutes: false,
    ...(options.tls ? { https: { cert: options.tls.cert, key: options.tls.key } } : {}),
  }) as unknown as FastifyInstance;
  const metrics = createRegistryMetrics(options.metricsRegistry);
  const auth = new Authenticator(options.auth);
  const handle = dispatcher(options.store, metrics);
  app.decorate('metricsRegistry', metrics.registry);
  app.decorateRequest('registryRoute', undefined);
  app.decorateRequest('registryErrorCode', undefined);

  // Bodies are streamed by the handlers (blobs) or read with a size limit (manifests).
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', (_request, _payload, done) => {
    done(null, undefined);
  });

  app.addHook('onRequest', async (request, reply) => {
    reply.header('Docker-Distribution-API-Version', 'registry/2.0');
    request.registryRoute = matchRoute(request.url);
    if (request.registryRoute.operation === 'metrics') return;
    const write = WRITE_METHODS.has(request.method);
    if (write && !options.push) {
      throw new RegistryError(
        'UNSUPPORTED',
        'this registry is read-only: start it with push enabled to upload or delete',
        undefined,
        {
          status: 405,
        },
      );
    }
    auth.authorize(firstHeader(request.headers.authorization), write ? 'push' : 'pull');
  });

  app.addHook('onResponse', async (request, reply) => {
    const operation = request.registryRoute?.operation ?? 'unknown';
    const status = reply.statusCode;
    const durationMs = reply.elapsedTime;
    metrics.requests.inc({ method: request.method, operation, status: String(status) });
    metrics.duration.observe({ operation }, durationMs / 1000);
    const line = {
      method: request.method,
      path: request.url.split('?')[0],
      operation,
      repository: request.registryRoute?.repository,
      status,
      code: request.registryErrorCode,
      bytes: Number(reply.getHeader('content-length') ?? 0),
      durationMs: Math.round(durationMs * 10) / 10,
    };
    if (status >= 500) request.log.error(line, 'request failed');
    else request.log.info(line, 'request');
  });

  app.setErrorHandler(async (error, request, reply) => {
    if (isRegistryError(error)) {
      request.registryErrorCode = error.code;
      if (error.code === 'UNAUTHORIZED') {
        reply.header('WWW-Authenticate', `Basic realm="${auth.realm}"`);
      }
      return sendError(reply, error);
    }
    request.registryErrorCode = 'UNKNOWN';
    request.log.error({ err: error }, 'request handler failed');
    return reply
      .code(500)
      .type('application/json')
      .send(
        errorEnvelope(
          'UNKNOWN',
          `internal error while handling the request; see the server log for request ${request.id}`,
        ),
      );
  });

  app.get('/metrics', async (_request, reply) => {
    return reply.type(metrics.registry.contentType).send(await metrics.registry.metrics());
  });
  app.route({
    method: ['GET', 'HEAD', 'PUT', 'POST', 'PATCH', 'DELETE'],
    url: '/v2',
    handler: (request, reply) =>
      handle(request, reply, request.registryRoute ?? { operation: 'unknown' }),
  });
  app.route({
    method: ['GET', 'HEAD', 'PUT', 'POST', 'PATCH', 'DELETE'],
    url: '/v2/*',
    handler: (request, reply) =>
      handle(request, reply, request.registryRoute ?? { operation: 'unknown' }),
  });
  app.setNotFoundHandler(async (request, reply) =>
    sendError(
      reply,
      new RegistryError(
        'NAME_UNKNOWN',
        `no registry endpoint at ${request.url.split('?')[0] ?? ''}`,
        undefined,
        { status: 404 },
      ),
    ),
  );
  return Promise.resolve(app);
}

export interface RunningRegistryServer {
  url: string;
  app: FastifyInstance;
  close(): Promise<void>;
}

/** Creates the server and listens on `listen` (port 0 picks a free port). */
export async function startRegistryServer(
  options: RegistryServerOptions & { listen: { host: string; port: number } },
): Promise<RunningRegistryServer> {
  const app = await createRegistryServer(options);
  await app.listen({ host: options.listen.host, port: options.listen.port });
  const address = app.server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const url = `${options.tls ? 'https' : 'http'}://${host}:${address.port}`;
  return { url, app, close: () => app.close() };
}
