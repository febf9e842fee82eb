// The robot permissions Ground Control gives a satellite: `repository:pull` on each Harbor project
// that its groups select, as one `kind: project` permission per project on a system-level robot.

/** Harbor's rule for project and robot names: lowercase words joined by `.`, `_` or `-`. */
export const HARBOR_NAME_PATTERN = /^[a-z0-9]+(?:[._-][a-z0-9]+)*$/;

/** One entry of Harbor's `RobotPermission.access`. */
export interface HarborAccess {
  resource: string;
  action: string;
  effect?: string;
}

/** Harbor's `RobotPermission` model. */
export interface HarborRobotPermission {
  kind: string;
  namespace: string;
  access: HarborAccess[];
}

const PULL_ACCESS: readonly HarborAccess[] = [{ resource: 'repository', action: 'pull' }];

/**
 * Computes the permission list that grants pull on exactly `projects`: duplicates are removed and
 * the list is sorted by project name, so equal sets give equal lists. Throws `TypeError` for a
 * name Harbor cannot hold.
 */
export function robotPermissionsForProjects(projects: Iterable<string>): HarborRobotPermission[] {
  const unique = new Set<string>();
  for (const project of projects) {
    if (!HARBOR_NAME_PATTERN.test(project)) {
      throw new TypeError(
        `Harbor project name ${JSON.stringify(project)} is invalid: Harbor names are lowercase letters and digits joined by '.', '_' or '-'`,
      );
    }
    unique.add(project);
  }
  return [...unique].sort().map((namespace) => ({
    kind: 'project',
    namespace,
    access: PULL_ACCESS.map((access) => ({ ...access })),
  }));
}

/** Lists the projects on which `permissions` grant `repository:pull`, sorted by name. */
export function pullProjectsOf(permissions: readonly HarborRobotPermission[]): string[] {
  const projects = new Set<string>();
  for (const permission of permissions) {
    if (permission.kind !== 'project') continue;
    const pulls = permission.access.some(
      (access) =>
        access.resource === 'repository' && access.action === 'pull' && access.effect !== 'deny',
    );
    if (pulls) projects.add(permission.namespace);
  }
  return [...projects].sort();
}

/**
 * Names the Harbor projects that hold `repositories` (paths such as `team-a/app` or
 * `team-a/tools/cli`), which is each path's first component. Returns each project once, sorted.
 * Throws `TypeError` for a name without a slash, because Harbor files every repository under a
 * project.
 */
export function projectsOfRepositories(repositories: Iterable<string>): string[] {
  const projects = new Set<string>();
  for (const repository of repositories) {
    const slash = repository.indexOf('/');
    const project = repository.slice(0, Math.max(slash, 0));
    if (slash < 0 || !HARBOR_NAME_PATTERN.test(project)) {
      throw new TypeError(
        `repository ${JSON.stringify(repository)} is invalid for Harbor: it must start with a Harbor project name and a slash, as in team-a/app`,
      );
    }
    projects.add(project);
  }
  return [...projects].sort();
}
