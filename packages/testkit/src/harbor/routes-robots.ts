import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { parseBody, parseId, securityContext } from './context.js';
import type { QueryString, RouteContext } from './context.js';
import { badRequest, notFound, unauthorized } from './errors.js';
import { permissionSchema, validateRobotFields } from './permissions.js';
import { linkHeader, matches, parsePage, parseQuery, slicePage } from './query.js';
import {
  HARBOR_NAME_PATTERN,
  expiryFor,
  generateRobotSecret,
  isValidRobotSecret,
} from './store.js';
import type { HarborRobotRecord, SecurityContext } from './store.js';
import { robotToJson } from './views.js';

// Robot account endpoints of Harbor v2.0: POST/GET /robots and GET/PUT/PATCH/DELETE
// /robots/{robot_id}. The order of checks follows Harbor's handler, so a malformed body gets
// 400 before the credentials are looked at, and a missing robot gets 404 before 403.

const robotCreateSchema = z.object({
  name: z.string().default(''),
  description: z.string().default(''),
  level: z.string().default(''),
  disable: z.boolean().default(false),
  duration: z.number().default(0),
  permissions: z.array(permissionSchema).default([]),
});

const robotUpdateSchema = z.object({
  name: z.string().default(''),
  description: z.string().default(''),
  level: z.string().default(''),
  disable: z.boolean().default(false),
  duration: z.number().nullable().optional(),
  permissions: z.array(permissionSchema).default([]),
});

const robotSecretSchema = z.object({ secret: z.string().default('') });

const ROBOT_QUERY_KEYS = ['name', 'Level', 'ProjectID'] as const;
const ROBOT_SORT_KEYS = new Set(['id', 'name', 'creation_time', 'update_time']);

function requireAuthenticated(security: SecurityContext): void {
  if (security.kind === 'anonymous') throw unauthorized();
}

function requireRobotAccess(ctx: RouteContext, security: SecurityContext, action: string): void {
  // NOTE: project-level robots need the same role as system-level ones here (system admin, or a
  // robot with `robot:<action>`), although real Harbor also lets project admins manage them.
  ctx.store.requireSystemRobotAccess(security, action);
}

export function registerRobotRoutes(app: FastifyInstance, ctx: RouteContext): void {
  const { store, counters } = ctx;

  // Harbor requires credentials first, then looks the robot up, and checks the role last.
  const loadRobot = (request: FastifyRequest) => {
    const security = securityContext(store, request);
    requireAuthenticated(security);
    const id = parseId((request.params as { robotId: string }).robotId, 'robot_id');
    return { security, robot: store.getRobot(id) };
  };

  app.post('/api/v2.0/robots', async (request, reply) => {
    const body = parseBody(robotCreateSchema, request.body, 'robot');
    if (!HARBOR_NAME_PATTERN.test(body.name)) {
      throw badRequest(
        `robot name ${JSON.stringify(body.name)} is invalid: use lowercase letters and digits joined by '.', '_' or '-'`,
      );
    }
    validateRobotFields(body.duration, body.level, body.permissions);
    const security = securityContext(store, request);
    requireRobotAccess(ctx, security, 'create');

    const permissions = store.toStoredPermissions(body.permissions);
    let projectId = 0;
    let storedName = body.name;
    if (body.level === 'project') {
      const project = store.findProject(body.permissions[0]?.namespace ?? '');
      if (!project) throw notFound(`project ${body.permissions[0]?.namespace ?? ''} not found`);
      projectId = project.id;
      storedName = `${project.name}+${body.name}`;
    }
    const robot = store.addRobot({
      storedName,
      description: body.description,
      secret: generateRobotSecret(),
      level: body.level,
      projectId,
      duration: body.duration,
      expiresAt: -1,
      disabled: body.disable,
      permissions,
      creatorType: security.kind === 'robot' ? 'robot' : 'local',
      creatorRef:
        security.kind === 'user'
          ? security.user.id
          : security.kind === 'robot'
            ? security.robot.id
            : 0,
    });
    counters.robotsCreated += 1;
    return reply
      .code(201)
      .header('Location', `/api/v2.0/robots/${robot.id}`)
      .send({
        id: robot.id,
        name: store.robotPrefix + robot.storedName,
        secret: robot.secret,
        creation_time: robot.creationTime.toISOString(),
        expires_at: robot.expiresAt,
      });
  });

  app.get('/api/v2.0/robots', async (request, reply) => {
    const security = securityContext(store, request);
    requireAuthenticated(security);
    const query = request.query as QueryString;
    const filters = parseQuery(query.q, ROBOT_QUERY_KEYS);
    const page = parsePage(query);
    const level = filters.get('Level')?.value ?? 'system';
    if (level !== 'system' && level !== 'project')
      throw badRequest(
        `robot level ${JSON.stringify(level)} is invalid: use "system" or "project"`,
      );
    let projectId = 0;
    if (level === 'project') {
      const raw = filters.get('ProjectID')?.value;
      if (raw === undefined)
        throw badRequest(
          'listing project-level robots needs ProjectID, e.g. q=Level=project,ProjectID=1',
        );
      if (!/^[0-9]+$/.test(raw) || Number(raw) <= 0) {
        throw badRequest(`ProjectID ${JSON.stringify(raw)} is invalid: use a positive integer`);
      }
      projectId = Number(raw);
    }
    requireRobotAccess(ctx, security, 'list');

    const all = [...store.robots.values()]
      .filter((robot) => robot.projectId === projectId)
      .filter((robot) => matches(filters.get('name'), robot.storedName));
    sortRobots(all, query.sort);
    const url = new URL(request.url, 'http://double.invalid');
    const link = linkHeader(url.pathname, url.searchParams, all.length, page);
    reply.header('X-Total-Count', String(all.length));
    if (link) reply.header('Link', link);
    return slicePage(all, page).map((robot) => robotToJson(store, robot));
  });

  app.get('/api/v2.0/robots/:robotId', (request) => {
    const { security, robot } = loadRobot(request);
    requireRobotAccess(ctx, security, 'read');
    return robotToJson(store, robot);
  });

  app.put('/api/v2.0/robots/:robotId', async (request, reply) => {
    const { security, robot } = loadRobot(request);
    const body = parseBody(robotUpdateSchema, request.body, 'robot');
    const duration = body.duration ?? robot.duration;
    validateRobotFields(duration, body.level, body.permissions);
    if (robot.level === 'project') {
      const project = store.findProject(body.permissions[0]?.namespace ?? '');
      if (!project) throw notFound(`project ${body.permissions[0]?.namespace ?? ''} not found`);
      if (project.id !== robot.projectId)
        throw badRequest(
          `robot ${robot.id} cannot move to project ${project.name}; create a new robot there`,
        );
    }
    requireRobotAccess(ctx, security, 'update');
    if (body.level !== robot.level || body.name !== store.robotPrefix + robot.storedName) {
      throw badRequest(
        `robot ${robot.id} cannot change its name or level; send name ${store.robotPrefix + robot.storedName} and level ${robot.level}`,
      );
    }
    const permissions = store.toStoredPermissions(body.permissions);

    if (duration !== robot.duration) {
      // Harbor counts a new duration from the robot's creation time, not from now.
      robot.duration = duration;
      robot.expiresAt = expiryFor(robot.creationTime, duration);
    }
    robot.description = body.description;
    robot.disabled = body.disable;
    robot.permissions = permissions;
    robot.updateTime = store.clock.now();
    counters.robotsUpdated += 1;
    return reply.code(200).send();
  });

  app.patch('/api/v2.0/robots/:robotId', (request) => {
    const { security, robot } = loadRobot(request);
    requireRobotAccess(ctx, security, 'update');
    const body = parseBody(robotSecretSchema, request.body, 'robotSec');
    let returned: { secret?: string } = {};
    if (body.secret !== '') {
      if (!isValidRobotSecret(body.secret)) {
        throw badRequest(
          'robot secret is invalid: use 8 to 128 characters with an uppercase letter, a lowercase letter and a digit',
        );
      }
      robot.secret = body.secret;
    } else {
      robot.secret = generateRobotSecret();
      returned = { secret: robot.secret };
    }
    // Refreshing the secret leaves `expires_at` alone: only a new duration through PUT moves it.
    robot.updateTime = store.clock.now();
    counters.secretsRefreshed += 1;
    return returned;
  });

  app.delete('/api/v2.0/robots/:robotId', async (request, reply) => {
    const { security, robot } = loadRobot(request);
    requireRobotAccess(ctx, security, 'delete');
    store.robots.delete(robot.id);
    counters.robotsDeleted += 1;
    return reply.code(200).send();
  });
}

// NOTE: without `sort` the double orders robots by id. Harbor's own default order was not checked.
function sortRobots(robots: HarborRobotRecord[], sort: string | undefined): void {
  const keys = (sort ?? 'id').split(',').filter((key) => key !== '');
  for (const key of keys) {
    if (!ROBOT_SORT_KEYS.has(key.replace(/^-/, ''))) {
      throw badRequest(
        `sort key ${JSON.stringify(key)} is not supported; use id, name, creation_time or update_time`,
      );
    }
  }
  const value = (robot: HarborRobotRecord, key: string): number | string => {
    if (key === 'name') return robot.storedName;
    if (key === 'creation_time') return robot.creationTime.getTime();
    if (key === 'update_time') return robot.updateTime.getTime();
    return robot.id;
  };
  robots.sort((a, b) => {
    for (const key of keys) {
      const descending = key.startsWith('-');
      const field = key.replace(/^-/, '');
      const left = value(a, field);
      const right = value(b, field);
      if (left === right) continue;
      const order = left < right ? -1 : 1;
      return descending ? -order : order;
    }
    return 0;
  });
}
