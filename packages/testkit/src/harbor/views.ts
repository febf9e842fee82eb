import type { HarborProjectRecord, HarborRobotRecord, HarborStore } from './store.js';

// JSON bodies with the field names of Harbor v2.0's `Robot`, `RobotPermission`, `Access` and
// `Project` models (snake_case, times as RFC 3339 strings, `expires_at` in Unix seconds).

export interface RobotPermissionJson {
  kind: string;
  namespace: string;
  access: { resource: string; action: string; effect?: string }[];
}

export interface RobotJson {
  id: number;
  name: string;
  description: string;
  level: string;
  duration: number;
  editable: boolean;
  disable: boolean;
  expires_at: number;
  permissions: RobotPermissionJson[];
  creator_type: string;
  creator_ref: number;
  creation_time: string;
  update_time: string;
}

/** Renders a robot, leaving out permissions whose project was deleted, as Harbor does. */
export function robotToJson(store: HarborStore, robot: HarborRobotRecord): RobotJson {
  const permissions: RobotPermissionJson[] = [];
  for (const permission of robot.permissions) {
    let namespace: string;
    if (permission.kind === 'system') {
      namespace = '/';
    } else if (permission.projectId === '*') {
      namespace = '*';
    } else {
      const project =
        permission.projectId === null ? undefined : store.projects.get(permission.projectId);
      if (!project) continue;
      namespace = project.name;
    }
    permissions.push({
      kind: permission.kind,
      namespace,
      access: permission.access.map((access) => ({
        resource: access.resource,
        action: access.action,
        ...(access.effect === undefined ? {} : { effect: access.effect }),
      })),
    });
  }
  return {
    id: robot.id,
    name: store.robotPrefix + robot.storedName,
    description: robot.description,
    level: robot.level,
    duration: robot.duration,
    editable: true,
    disable: robot.disabled,
    expires_at: robot.expiresAt,
    permissions,
    creator_type: robot.creatorType,
    creator_ref: robot.creatorRef,
    creation_time: robot.creationTime.toISOString(),
    update_time: robot.updateTime.toISOString(),
  };
}

export interface ProjectJson {
  project_id: number;
  owner_id: number;
  name: string;
  creation_time: string;
  update_time: string;
  deleted: boolean;
  owner_name: string;
  togglable: boolean;
  repo_count: number;
  metadata: { public: string };
}

export function projectToJson(project: HarborProjectRecord, repoCount: number): ProjectJson {
  return {
    project_id: project.id,
    owner_id: project.ownerId,
    name: project.name,
    creation_time: project.creationTime.toISOString(),
    update_time: project.updateTime.toISOString(),
    deleted: false,
    owner_name: project.ownerName,
    togglable: true,
    repo_count: repoCount,
    metadata: { public: String(project.public) },
  };
}
