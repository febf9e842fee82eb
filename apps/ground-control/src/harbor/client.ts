import type { z } from 'zod';
import { HarborClientError, NEXT_STEP } from './errors.js';
import { assertDurationDays, durationForExtension, expiresAtFromUnix } from './expiry.js';
import { HarborHttp } from './http.js';
import type { HarborHttpOptions, HarborResponse } from './http.js';
import { HARBOR_NAME_PATTERN, pullProjectsOf, robotPermissionsForProjects } from './permissions.js';
import type { HarborRobotPermission } from './permissions.js';
import {
  healthSchema,
  projectSchema,
  robotCreatedSchema,
  robotSchema,
  robotSecretSchema,
} from './schemas.js';
import type { RobotBody } from './schemas.js';

// Typed client for the parts of Harbor's REST API v2.0 that Ground Control uses: checking the
// connection, listing projects, and managing one system-level robot account per satellite.

/** Harbor's default `robot_name_prefix`. */
export const DEFAULT_ROBOT_PREFIX = 'robot$';
/** Page size for list calls, which is Harbor's maximum. */
const PAGE_SIZE = 100;
/** Upper bound on pages fetched by one list call (100,000 items), against a server that loops. */
const MAX_PAGES = 1_000;

export interface HarborClientOptions extends HarborHttpOptions {
  /** Harbor's `robot_name_prefix` setting, by default `robot$`. */
  robotPrefix?: string;
  /** Clock used to compute new robot durations, replaceable in tests. */
  now?: () => Date;
}

export interface HarborProject {
  id: number;
  name: string;
  public: boolean;
}

export interface HarborRobot {
  id: number;
  /** Full name as Harbor reports it, with the prefix: `robot$sat-1`. This is the pull username. */
  name: string;
  description: string;
  level: string;
  /** Lifetime in days from `creationTime`, or -1 for no expiry. */
  durationDays: number;
  disabled: boolean;
  /** Null when the robot never expires. */
  expiresAt: Date | null;
  creationTime: Date;
  /** Projects on which the robot may pull, sorted. */
  projects: string[];
  permissions: HarborRobotPermission[];
}

export interface CreatedRobot {
  id: number;
  /** Full name with the prefix; satellites use it as the registry username. */
  name: string;
  /** The robot secret (the registry password). Harbor returns it only once. */
  secret: string;
  expiresAt: Date | null;
}

export interface CreateRobotInput {
  /** Name without the prefix, e.g. `sat-3f2a`, made of lowercase words joined by `.`, `_` or `-`. */
  name: string;
  /** Harbor projects the robot may pull from. It must not be empty, because Harbor requires a permission. */
  projects: Iterable<string>;
  /** Lifetime in days, or -1 for no expiry. */
  durationDays: number;
  description?: string;
}

export interface RefreshedSecret {
  secret: string;
  expiresAt: Date | null;
}

export interface HarborHealth {
  status: string;
  components: { name: string; status: string; error?: string | undefined }[];
}

function nonEmptyProjects(projects: Iterable<string>, operation: string): HarborRobotPermission[] {
  const permissions = robotPermissionsForProjects(projects);
  if (permissions.length === 0) {
    throw new TypeError(
      `${operation}: projects is empty, but Harbor requires at least one permission; delete the robot when a satellite has no Harbor projects`,
    );
  }
  return permissions;
}

function hasNextPage(response: HarborResponse): boolean {
  const link = response.headers.link;
  const value = Array.isArray(link) ? link.join(',') : (link ?? '');
  return /rel="?next"?/.test(value);
}

export class HarborClient {
  readonly robotPrefix: string;
  readonly #http: HarborHttp;
  readonly #now: () => Date;

  constructor(options: HarborClientOptions) {
    this.#http = new HarborHttp(options);
    this.robotPrefix = options.robotPrefix ?? DEFAULT_ROBOT_PREFIX;
    this.#now = options.now ?? (() => new Date());
  }

  /** Sends `GET /ping` without credentials and returns Harbor's text (`Pong`). */
  async ping(): Promise<string> {
    return this.#http.ping();
  }

  /** Reads `GET /health`, which needs no credentials. */
  async health(): Promise<HarborHealth> {
    const response = await this.#http.send('GET', '/health', {
      authenticate: false,
      expect: [200],
    });
    return this.#parse(healthSchema, response, 'GET /health');
  }

  /**
   * Checks that Harbor responds and that the account may manage robot accounts, by listing one
   * system-level robot. Throws `HARBOR_UNAUTHORIZED` for wrong credentials and
   * `HARBOR_FORBIDDEN` for an account without the system admin role.
   */
  async checkAccess(): Promise<void> {
    await this.ping();
    await this.#http.send('GET', '/robots', {
      query: { page: '1', page_size: '1' },
      expect: [200],
    });
  }

  /** Lists every project the account can see, following Harbor's pagination. */
  async listProjects(): Promise<HarborProject[]> {
    const projects: HarborProject[] = [];
    for (let page = 1; page <= MAX_PAGES; page += 1) {
      const response = await this.#http.send('GET', '/projects', {
        query: { page: String(page), page_size: String(PAGE_SIZE), with_detail: 'false' },
        expect: [200],
      });
      const items = this.#parse(projectSchema.array(), response, 'GET /projects');
      for (const item of items) {
        projects.push({
          id: item.project_id,
          name: item.name,
          public: item.metadata?.public === 'true',
        });
      }
      if (!hasNextPage(response) || items.length === 0) return projects;
    }
    throw new HarborClientError(
      'HARBOR_INVALID_RESPONSE',
      `Harbor GET /projects returned more than ${MAX_PAGES} pages; ${NEXT_STEP.HARBOR_INVALID_RESPONSE}`,
      { method: 'GET', path: '/api/v2.0/projects' },
    );
  }

  /** Tells whether a project exists, with `HEAD /projects?project_name=`. */
  async projectExists(name: string): Promise<boolean> {
    const response = await this.#http.send('HEAD', '/projects', {
      query: { project_name: name },
      expect: [200, 404],
    });
    return response.status === 200;
  }

  /**
   * Creates a system-level robot that may pull from `projects`. Returns its id, full name and
   * secret, which Harbor shows only here. Throws `HARBOR_CONFLICT` when the name is
   * taken and `HARBOR_NOT_FOUND` when a project does not exist.
   */
  async createRobot(input: CreateRobotInput): Promise<CreatedRobot> {
    if (!HARBOR_NAME_PATTERN.test(input.name)) {
      throw new TypeError(
        `robot name ${JSON.stringify(input.name)} is invalid: use lowercase letters and digits joined by '.', '_' or '-', without the ${this.robotPrefix} prefix`,
      );
    }
    assertDurationDays(input.durationDays);
    const permissions = nonEmptyProjects(input.projects, 'createRobot');
    const response = await this.#http.send('POST', '/robots', {
      body: {
        name: input.name,
        description: input.description ?? '',
        level: 'system',
        duration: input.durationDays,
        disable: false,
        permissions,
      },
      expect: [201],
    });
    const created = this.#parse(robotCreatedSchema, response, 'POST /robots');
    return {
      id: created.id,
      name: created.name,
      secret: created.secret,
      expiresAt: expiresAtFromUnix(created.expires_at),
    };
  }

  /**
   * Creates the robot, or adopts the system-level robot of that name that an earlier attempt
   * created before its id was stored. Adopting replaces the robot's projects, enables it, extends
   * it by `durationDays` (unless -1) and refreshes its secret, because the old secret is unknown.
   */
  async provisionRobot(input: CreateRobotInput): Promise<CreatedRobot & { adopted: boolean }> {
    try {
      return { ...(await this.createRobot(input)), adopted: false };
    } catch (err) {
      if (!(err instanceof HarborClientError) || err.code !== 'HARBOR_CONFLICT') throw err;
    }
    const existing = await this.findRobotByName(input.name);
    if (!existing) {
      throw new HarborClientError(
        'HARBOR_CONFLICT',
        `Harbor reported robot name ${input.name} as taken, but no system-level robot has it; pick another name`,
        { status: 409, method: 'POST', path: '/api/v2.0/robots' },
      );
    }
    const permissions = nonEmptyProjects(input.projects, 'provisionRobot');
    await this.#putRobot(existing, { permissions, disabled: false });
    const extension = input.durationDays === -1 ? {} : { extendDays: input.durationDays };
    const refreshed = await this.refreshRobotSecret(existing.id, extension);
    return { id: existing.id, name: existing.name, ...refreshed, adopted: true };
  }

  /** Reads one robot, or throws `HARBOR_NOT_FOUND` when it does not exist. */
  async getRobot(id: number): Promise<HarborRobot> {
    const response = await this.#http.send('GET', `/robots/${id}`, { expect: [200] });
    return this.#toRobot(this.#parse(robotSchema, response, 'GET /robots/{id}'));
  }

  /**
   * Finds a system-level robot by name, with or without the prefix. Returns null when there is
   * none, so a caller can adopt a robot left by an earlier run that failed before storing its id.
   */
  async findRobotByName(name: string): Promise<HarborRobot | null> {
    const bare = name.startsWith(this.robotPrefix) ? name.slice(this.robotPrefix.length) : name;
    // Harbor matches `q=name=` against the stored name, which has no prefix.
    const response = await this.#http.send('GET', '/robots', {
      query: { q: `name=${bare}`, page: '1', page_size: String(PAGE_SIZE) },
      expect: [200],
    });
    const robots = this.#parse(robotSchema.array(), response, 'GET /robots');
    const match = robots.find((robot) => robot.name === this.robotPrefix + bare);
    return match === undefined ? null : this.#toRobot(match);
  }

  /**
   * Replaces the robot's permissions with pull on exactly `projects`, keeping its name, duration,
   * description and disabled flag. Throws `HARBOR_NOT_FOUND` for an unknown robot or project.
   */
  async updateRobotProjects(id: number, projects: Iterable<string>): Promise<void> {
    const permissions = nonEmptyProjects(projects, 'updateRobotProjects');
    const robot = await this.getRobot(id);
    await this.#putRobot(robot, { permissions });
  }

  /**
   * Generates a new secret for the robot and returns it with the robot's expiry. With
   * `extendDays`, the robot's duration is first raised so that it expires no earlier than that
   * many days from now, because Harbor's secret refresh alone keeps the old expiry. The old secret
   * stops working at once; registry tokens issued with it stay valid until they expire.
   */
  async refreshRobotSecret(
    id: number,
    options: { extendDays?: number } = {},
  ): Promise<RefreshedSecret> {
    if (options.extendDays !== undefined) {
      const robot = await this.getRobot(id);
      const duration = durationForExtension(robot.creationTime, this.#now(), options.extendDays);
      if (robot.durationDays !== -1 && duration > robot.durationDays) {
        await this.#putRobot(robot, { durationDays: duration });
      }
    }
    const response = await this.#http.send('PATCH', `/robots/${id}`, { body: {}, expect: [200] });
    const { secret } = this.#parse(robotSecretSchema, response, 'PATCH /robots/{id}');
    const refreshed = await this.getRobot(id);
    return { secret, expiresAt: refreshed.expiresAt };
  }

  /** Deletes the robot. Returns false when it was already gone, so revocation can be retried. */
  async deleteRobot(id: number): Promise<boolean> {
    const response = await this.#http.send('DELETE', `/robots/${id}`, { expect: [200, 404] });
    return response.status === 200;
  }

  /** Closes the client's connections. */
  async close(): Promise<void> {
    await this.#http.close();
  }

  async #putRobot(
    robot: HarborRobot,
    changes: { permissions?: HarborRobotPermission[]; durationDays?: number; disabled?: boolean },
  ): Promise<void> {
    await this.#http.send('PUT', `/robots/${robot.id}`, {
      body: {
        name: robot.name,
        description: robot.description,
        level: robot.level,
        duration: changes.durationDays ?? robot.durationDays,
        disable: changes.disabled ?? robot.disabled,
        permissions: changes.permissions ?? robot.permissions,
      },
      expect: [200],
    });
  }

  #toRobot(body: RobotBody): HarborRobot {
    const permissions: HarborRobotPermission[] = (body.permissions ?? []).map((permission) => ({
      kind: permission.kind,
      namespace: permission.namespace,
      access: (permission.access ?? []).map((access) => ({
        resource: access.resource,
        action: access.action,
        ...(access.effect === undefined ? {} : { effect: access.effect }),
      })),
    }));
    return {
      id: body.id,
      name: body.name,
      description: body.description,
      level: body.level,
      durationDays: body.duration ?? -1,
      disabled: body.disable,
      expiresAt: expiresAtFromUnix(body.expires_at),
      creationTime: new Date(body.creation_time),
      projects: pullProjectsOf(permissions),
      permissions,
    };
  }

  #parse<T extends z.ZodType>(schema: T, response: HarborResponse, operation: string): z.infer<T> {
    const result = schema.safeParse(response.json);
    if (result.success) return result.data;
    const issue = result.error.issues[0];
    const where = issue && issue.path.length > 0 ? ` at ${issue.path.join('.')}` : '';
    throw new HarborClientError(
      'HARBOR_INVALID_RESPONSE',
      `Harbor ${operation} returned a body that does not match Harbor's API${where}: ${issue?.message ?? 'invalid'}; ${NEXT_STEP.HARBOR_INVALID_RESPONSE}`,
      {
        status: response.status,
        method: operation.split(' ')[0] ?? '',
        path: operation.split(' ')[1] ?? '',
      },
    );
  }
}

/** Connection settings of a `kind: harbor` registry, as Ground Control stores them. */
export interface HarborRegistrySettings {
  url: string;
  username: string;
  password: string;
  caBundle: string | null;
  insecure: boolean;
}

/** Creates a client for one registry row; `insecure` skips TLS verification. */
export function createHarborClient(
  registry: HarborRegistrySettings,
  options: Pick<HarborClientOptions, 'logger' | 'timeoutMs' | 'robotPrefix'> = {},
): HarborClient {
  return new HarborClient({
    url: registry.url,
    username: registry.username,
    password: registry.password,
    ...(registry.caBundle === null ? {} : { caBundle: registry.caBundle }),
    insecureSkipTlsVerify: registry.insecure,
    ...options,
  });
}
