import { z } from 'zod';
import { badRequest } from './errors.js';
import type { PermissionInput } from './store.js';

// Validation of robot fields with the checks of Harbor's robot handler. The duration is -1 or a
// positive number of days, and the level is `system` or `project`. There is at least one
// permission, each with at least one access, and a project-level robot has exactly one. Every
// access must be among the policies Harbor allows for the permission's kind.

const MAX_DURATION_DAYS = 2_147_483_646;

/** Project-scope policies allowed in a robot permission, from Harbor's RBAC policy table (v2.x). */
const PROJECT_POLICIES: Record<string, readonly string[]> = {
  log: ['list'],
  project: ['read', 'delete', 'update'],
  metadata: ['read', 'create', 'delete', 'list', 'update'],
  repository: ['read', 'update', 'delete', 'list', 'pull', 'push'],
  artifact: ['read', 'create', 'list', 'delete'],
  scan: ['create', 'read', 'stop'],
  sbom: ['create', 'stop', 'read'],
  tag: ['create', 'list', 'delete'],
  accessory: ['list'],
  'artifact-addition': ['read'],
  'artifact-label': ['create', 'delete'],
  label: ['read', 'create', 'delete', 'list', 'update'],
};

// NOTE: Harbor's system-scope table is longer. The double accepts only the policies that the
// satellite use touches (robot management and project listing).
const SYSTEM_POLICIES: Record<string, readonly string[]> = {
  robot: ['read', 'create', 'delete', 'list', 'update'],
  project: ['list', 'create'],
};

export const accessSchema = z.object({
  resource: z.string().default(''),
  action: z.string().default(''),
  effect: z.string().optional(),
});

export const permissionSchema = z.object({
  kind: z.string().default(''),
  namespace: z.string().default(''),
  access: z.array(accessSchema).default([]),
});

export function validateRobotFields(
  duration: number,
  level: string,
  permissions: PermissionInput[],
): asserts level is 'system' | 'project' {
  if (!(
    duration === -1 ||
    (Number.isInteger(duration) && duration > 0 && duration <= MAX_DURATION_DAYS)
  )) {
    throw badRequest(
      `robot duration ${duration} is invalid: use -1 for no expiry or a positive number of days`,
    );
  }
  if (level !== 'system' && level !== 'project') {
    throw badRequest(`robot level ${JSON.stringify(level)} is invalid: use "system" or "project"`);
  }
  if (permissions.length === 0)
    throw badRequest('robot permissions are missing: send at least one permission');
  for (const permission of permissions) {
    if (permission.access.length === 0) {
      throw badRequest(
        `robot permission for ${JSON.stringify(permission.namespace)} has no access entries`,
      );
    }
  }
  if (level === 'project' && permissions.length > 1) {
    throw badRequest(
      `a project-level robot takes exactly one permission, got ${permissions.length}`,
    );
  }
  for (const permission of permissions) {
    let policies: Record<string, readonly string[]>;
    if (permission.kind === 'system') policies = SYSTEM_POLICIES;
    else if (permission.kind === 'project') policies = PROJECT_POLICIES;
    else
      throw badRequest(
        `permission kind ${JSON.stringify(permission.kind)} is invalid: use "project" or "system"`,
      );
    for (const access of permission.access) {
      if (!policies[access.resource]?.includes(access.action)) {
        throw badRequest(
          `access ${access.resource}:${access.action} is not allowed for kind ${permission.kind}`,
        );
      }
    }
  }
}
