import { randomBytes } from 'node:crypto';
import { badRequest, conflict, forbidden, notFound, unauthorized } from './errors.js';

// In-memory state of the Harbor double: users, projects and robot accounts, plus the rules that
// decide who may do what. The rules follow Harbor v2.x: robots authenticate with HTTP basic auth
// as `<prefix><stored name>`, a disabled robot or one whose `expires_at` has passed is treated as
// anonymous, and managing system-level robots needs the system admin role.

const MS_PER_DAY = 86_400_000;

/** Robot and project names that Harbor accepts: lowercase words joined by `.`, `_` or `-`. */
export const HARBOR_NAME_PATTERN = /^[a-z0-9]+(?:[._-][a-z0-9]+)*$/;

/** Generated secrets: 32 characters, always with an uppercase letter, a lowercase one and a digit. */
const SECRET_LENGTH = 32;

/** Harbor's rule for a caller-chosen robot secret: 8-128 characters, upper, lower and digit. */
export function isValidRobotSecret(secret: string): boolean {
  return (
    secret.length >= 8 &&
    secret.length <= 128 &&
    /[A-Z]/.test(secret) &&
    /[a-z]/.test(secret) &&
    /[0-9]/.test(secret)
  );
}

export interface HarborUser {
  id: number;
  username: string;
  password: string;
  sysadmin: boolean;
}

export interface HarborProjectRecord {
  id: number;
  name: string;
  public: boolean;
  ownerId: number;
  ownerName: string;
  creationTime: Date;
  updateTime: Date;
}

export interface HarborAccess {
  resource: string;
  action: string;
  effect?: string | undefined;
}

/** A robot permission as stored: the project by id (or `*` for every project), as Harbor does. */
export interface StoredPermission {
  kind: 'project' | 'system';
  projectId: number | '*' | null;
  access: HarborAccess[];
}

export interface HarborRobotRecord {
  id: number;
  /** Name without the robot prefix: `sat-1` for a system robot, `proj+sat-1` for a project one. */
  storedName: string;
  description: string;
  secret: string;
  level: 'system' | 'project';
  /** 0 for system-level robots. */
  projectId: number;
  /** Lifetime in days counted from `creationTime`, or -1 for no expiry. */
  duration: number;
  /** Unix seconds, or -1 for no expiry. */
  expiresAt: number;
  disabled: boolean;
  permissions: StoredPermission[];
  creatorType: string;
  creatorRef: number;
  creationTime: Date;
  updateTime: Date;
}

export type SecurityContext =
  | { kind: 'anonymous' }
  | { kind: 'user'; user: HarborUser }
  | { kind: 'robot'; robot: HarborRobotRecord };

export interface PermissionInput {
  kind: string;
  namespace: string;
  access: HarborAccess[];
}

/** Clock of the double, shared by robot expiry and the token authorizer. */
export interface HarborClock {
  now(): Date;
  /** Moves the clock forward, so tests can expire a robot without waiting. */
  advance(ms: number): void;
}

export function createClock(): HarborClock {
  let offsetMs = 0;
  return {
    now: () => new Date(Date.now() + offsetMs),
    advance: (ms: number) => {
      offsetMs += ms;
    },
  };
}

/** Generates a secret that meets `isValidRobotSecret`. */
export function generateRobotSecret(): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
  for (;;) {
    const bytes = randomBytes(SECRET_LENGTH);
    let secret = '';
    for (const byte of bytes) secret += alphabet[byte % alphabet.length];
    if (isValidRobotSecret(secret)) return secret;
  }
}

export function expiryFor(creationTime: Date, durationDays: number): number {
  if (durationDays === -1) return -1;
  return Math.floor((creationTime.getTime() + durationDays * MS_PER_DAY) / 1000);
}

export class HarborStore {
  readonly users = new Map<number, HarborUser>();
  readonly projects = new Map<number, HarborProjectRecord>();
  readonly robots = new Map<number, HarborRobotRecord>();
  private nextUserId = 1;
  private nextProjectId = 1;
  private nextRobotId = 1;

  constructor(
    readonly robotPrefix: string,
    readonly clock: HarborClock,
  ) {}

  addUser(username: string, password: string, sysadmin: boolean): HarborUser {
    for (const user of this.users.values()) {
      if (user.username === username) throw conflict(`user ${username} already exists`);
    }
    const user = { id: this.nextUserId++, username, password, sysadmin };
    this.users.set(user.id, user);
    return user;
  }

  addProject(name: string, isPublic: boolean, owner: HarborUser): HarborProjectRecord {
    if (!HARBOR_NAME_PATTERN.test(name) || name.length > 255) {
      throw badRequest(
        `project name ${JSON.stringify(name)} is invalid: use lowercase letters and digits joined by '.', '_' or '-'`,
      );
    }
    if (this.findProjectByName(name)) throw conflict(`project ${name} already exists`);
    const now = this.clock.now();
    const project: HarborProjectRecord = {
      id: this.nextProjectId++,
      name,
      public: isPublic,
      ownerId: owner.id,
      ownerName: owner.username,
      creationTime: now,
      updateTime: now,
    };
    this.projects.set(project.id, project);
    return project;
  }

  findProjectByName(name: string): HarborProjectRecord | undefined {
    for (const project of this.projects.values()) if (project.name === name) return project;
    return undefined;
  }

  /** Finds a project the way `/projects/{project_name_or_id}` does, reading digits as an id. */
  findProject(nameOrId: string, isResourceName = false): HarborProjectRecord | undefined {
    if (!isResourceName && /^[0-9]+$/.test(nameOrId)) return this.projects.get(Number(nameOrId));
    return this.findProjectByName(nameOrId);
  }

  /** Authenticates basic-auth credentials. Wrong ones give the anonymous context, as in Harbor. */
  authenticate(username: string | undefined, password: string | undefined): SecurityContext {
    if (username === undefined || password === undefined) return { kind: 'anonymous' };
    if (username.startsWith(this.robotPrefix)) {
      const robot = this.findRobotByStoredName(username.slice(this.robotPrefix.length));
      if (robot && robot.secret === password && this.isRobotActive(robot)) {
        return { kind: 'robot', robot };
      }
      return { kind: 'anonymous' };
    }
    for (const user of this.users.values()) {
      if (user.username === username && user.password === password) return { kind: 'user', user };
    }
    return { kind: 'anonymous' };
  }

  isRobotActive(robot: HarborRobotRecord): boolean {
    if (robot.disabled) return false;
    const nowSeconds = Math.floor(this.clock.now().getTime() / 1000);
    return robot.expiresAt === -1 || robot.expiresAt > nowSeconds;
  }

  findRobotByStoredName(storedName: string): HarborRobotRecord | undefined {
    for (const robot of this.robots.values()) if (robot.storedName === storedName) return robot;
    return undefined;
  }

  /** Requires the system admin role, or a robot with the system-level permission `robot:<action>`. */
  requireSystemRobotAccess(ctx: SecurityContext, action: string): void {
    if (ctx.kind === 'anonymous') throw unauthorized();
    if (ctx.kind === 'user') {
      if (!ctx.user.sysadmin) throw forbidden(ctx.user.username);
      return;
    }
    const allowed = ctx.robot.permissions.some(
      (permission) =>
        permission.kind === 'system' &&
        permission.access.some(
          (access) =>
            access.resource === 'robot' && access.action === action && access.effect !== 'deny',
        ),
    );
    if (!allowed) throw forbidden(this.robotPrefix + ctx.robot.storedName);
  }

  /** Converts permissions from a request into stored ones, with 404 for an unknown project. */
  toStoredPermissions(permissions: PermissionInput[]): StoredPermission[] {
    return permissions.map((permission) => {
      if (permission.kind === 'system') {
        if (permission.namespace !== '/')
          throw badRequest(
            `system permission namespace ${JSON.stringify(permission.namespace)} is invalid: use "/"`,
          );
        return { kind: 'system', projectId: null, access: permission.access };
      }
      if (permission.kind !== 'project') {
        throw badRequest(
          `permission kind ${JSON.stringify(permission.kind)} is invalid: use "project" or "system"`,
        );
      }
      if (permission.namespace === '*') {
        return { kind: 'project', projectId: '*', access: permission.access };
      }
      const project = this.findProject(permission.namespace);
      if (!project) throw notFound(`project ${permission.namespace} not found`);
      return { kind: 'project', projectId: project.id, access: permission.access };
    });
  }

  addRobot(
    fields: Omit<HarborRobotRecord, 'id' | 'creationTime' | 'updateTime'>,
  ): HarborRobotRecord {
    if (this.findRobotByStoredName(fields.storedName)) {
      throw conflict(
        `robot name ${fields.storedName} already exists; pick another name or delete that robot`,
      );
    }
    const now = this.clock.now();
    const robot: HarborRobotRecord = {
      ...fields,
      id: this.nextRobotId++,
      creationTime: now,
      updateTime: now,
      expiresAt: expiryFor(now, fields.duration),
    };
    this.robots.set(robot.id, robot);
    return robot;
  }

  getRobot(id: number): HarborRobotRecord {
    const robot = this.robots.get(id);
    if (!robot) throw notFound(`robot ${id} not found`);
    return robot;
  }

  /** Names of the projects where a robot has `repository:<action>`, or `*` for every project. */
  robotRepositoryProjects(robot: HarborRobotRecord, action: string): Set<string> | '*' {
    const names = new Set<string>();
    for (const permission of robot.permissions) {
      if (permission.kind !== 'project') continue;
      const grants = permission.access.some(
        (access) =>
          access.resource === 'repository' && access.action === action && access.effect !== 'deny',
      );
      if (!grants) continue;
      if (permission.projectId === '*') return '*';
      const project =
        permission.projectId === null ? undefined : this.projects.get(permission.projectId);
      if (project) names.add(project.name);
    }
    return names;
  }
}
