import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { parseBody, securityContext } from './context.js';
import type { QueryString, RouteContext } from './context.js';
import { forbidden, notFound, unauthorized, unprocessable } from './errors.js';
import { linkHeader, matches, parsePage, parseQuery, slicePage } from './query.js';
import type { HarborProjectRecord, SecurityContext } from './store.js';
import { projectToJson } from './views.js';

// Project endpoints of Harbor v2.0: GET, HEAD and POST /projects, GET and DELETE
// /projects/{project_name_or_id}. Visibility follows Harbor. Anonymous callers get public
// projects, system admins get all, and a robot gets public projects plus those in its permissions.
// NOTE: project membership is not modelled, so a user without the admin role gets public projects.

const projectCreateSchema = z.object({
  project_name: z.string().default(''),
  public: z.boolean().optional(),
  metadata: z.object({ public: z.string().optional() }).optional(),
});

const PROJECT_QUERY_KEYS = ['name', 'public'] as const;

function canSeeProject(security: SecurityContext, project: HarborProjectRecord): boolean {
  if (project.public) return true;
  if (security.kind === 'user') return security.user.sysadmin;
  if (security.kind === 'robot') {
    return security.robot.permissions.some(
      (permission) =>
        permission.kind === 'project' &&
        (permission.projectId === '*' || permission.projectId === project.id),
    );
  }
  return false;
}

function parseBoolean(raw: string | undefined, name: string): boolean | undefined {
  if (raw === undefined) return undefined;
  if (raw === 'true' || raw === '1') return true;
  if (raw === 'false' || raw === '0') return false;
  throw unprocessable(`${name} in query must be of type boolean: "${raw}"`);
}

export function registerProjectRoutes(app: FastifyInstance, ctx: RouteContext): void {
  const { store } = ctx;

  app.get('/api/v2.0/projects', async (request, reply) => {
    const security = securityContext(store, request);
    const query = request.query as QueryString;
    const filters = parseQuery(query.q, PROJECT_QUERY_KEYS);
    const page = parsePage(query);
    const isPublic =
      parseBoolean(query.public, 'public') ?? parseBoolean(filters.get('public')?.value, 'public');
    // The `name` parameter is a fuzzy match in Harbor, while `q=name=x` is exact.
    const nameParam = query.name ? { kind: 'fuzzy' as const, value: query.name } : undefined;

    const visible = [...store.projects.values()]
      .filter((project) => canSeeProject(security, project))
      .filter((project) => matches(filters.get('name'), project.name))
      .filter((project) => matches(nameParam, project.name))
      .filter((project) => isPublic === undefined || project.public === isPublic)
      .sort((a, b) => a.id - b.id);
    const url = new URL(request.url, 'http://double.invalid');
    const link = linkHeader(url.pathname, url.searchParams, visible.length, page);
    reply.header('X-Total-Count', String(visible.length));
    if (link) reply.header('Link', link);
    // NOTE: repo_count is always 0 because the double does not read the registry's catalog.
    return slicePage(visible, page).map((project) => projectToJson(project, 0));
  });

  app.head('/api/v2.0/projects', async (request, reply) => {
    const security = securityContext(store, request);
    if (security.kind === 'anonymous') throw unauthorized();
    const name = (request.query as QueryString).project_name;
    if (name === undefined) throw unprocessable('project_name in query is required');
    if (!store.findProjectByName(name)) throw notFound(`project ${name} not found`);
    return reply.code(200).send();
  });

  app.post('/api/v2.0/projects', async (request, reply) => {
    const body = parseBody(projectCreateSchema, request.body, 'project');
    const security = securityContext(store, request);
    if (security.kind === 'anonymous') throw unauthorized();
    if (security.kind === 'robot') throw forbidden('robot accounts cannot create projects here');
    const isPublic = body.public ?? body.metadata?.public === 'true';
    const project = store.addProject(body.project_name, isPublic, security.user);
    const nameInLocation = request.headers['x-resource-name-in-location'] === 'true';
    return reply
      .code(201)
      .header('Location', `/api/v2.0/projects/${nameInLocation ? project.name : project.id}`)
      .send();
  });

  app.get('/api/v2.0/projects/:nameOrId', (request) => {
    const security = securityContext(store, request);
    const nameOrId = (request.params as { nameOrId: string }).nameOrId;
    const project = store.findProject(nameOrId, request.headers['x-is-resource-name'] === 'true');
    if (!project) throw notFound(`project ${nameOrId} not found`);
    if (!canSeeProject(security, project)) {
      if (security.kind === 'anonymous') throw unauthorized();
      throw forbidden();
    }
    return projectToJson(project, 0);
  });

  app.delete('/api/v2.0/projects/:nameOrId', async (request, reply) => {
    const security = securityContext(store, request);
    if (security.kind === 'anonymous') throw unauthorized();
    const nameOrId = (request.params as { nameOrId: string }).nameOrId;
    const project = store.findProject(nameOrId, request.headers['x-is-resource-name'] === 'true');
    if (!project) throw notFound(`project ${nameOrId} not found`);
    if (security.kind !== 'user' || !security.user.sysadmin) throw forbidden();
    store.projects.delete(project.id);
    return reply.code(200).send();
  });
}
