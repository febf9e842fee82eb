import type { TokenAuthorizer } from '../registry.js';
import type { HarborDoubleCounters } from './context.js';
import type { HarborStore } from './store.js';

// Turns Harbor credentials into registry token grants, as Harbor's token service
// (`GET /service/token?service=harbor-registry&scope=...`) does for its registry. A repository
// `<project>/<path>` belongs to the project named by its first path component. A robot gets `pull`
// where its permission on that project has `repository:pull`, and `push` where it has
// `repository:push`. A system admin gets every requested action, and anyone, even anonymous,
// may pull from a public project. Wrong secrets, disabled robots, expired robots and deleted
// robots get no token at all (the token service returns 401).

export type HarborTokenRequest = Parameters<TokenAuthorizer>[0];
export type HarborTokenGrant = Awaited<ReturnType<TokenAuthorizer>>;

const ADMIN_ACTIONS = new Set(['pull', 'push', 'delete', '*']);

function projectOf(repository: string): string | undefined {
  const slash = repository.indexOf('/');
  // Harbor reads no project from a name without a slash, so such a repository gets nothing.
  return slash > 0 ? repository.slice(0, slash) : undefined;
}

export function createTokenAuthorizer(
  store: HarborStore,
  counters: HarborDoubleCounters,
): TokenAuthorizer {
  return (request) => {
    counters.tokenRequests += 1;
    const security = store.authenticate(request.username, request.password);
    if (request.username !== undefined && security.kind === 'anonymous') {
      counters.tokenRejections += 1;
      return Promise.resolve({ ok: false });
    }

    const allowedActions = (repository: string): Set<string> => {
      const project = projectOf(repository);
      const record = project === undefined ? undefined : store.findProjectByName(project);
      const actions = new Set<string>();
      if (!record || project === undefined) return actions;
      if (record.public) actions.add('pull');
      if (security.kind === 'user' && security.user.sysadmin) return ADMIN_ACTIONS;
      if (security.kind === 'robot') {
        for (const action of ['pull', 'push']) {
          const projects = store.robotRepositoryProjects(security.robot, action);
          if (projects === '*' || projects.has(project)) actions.add(action);
        }
      }
      return actions;
    };

    const access = request.scopes
      .filter((scope) => scope.type === 'repository')
      .map((scope) => {
        const allowed = allowedActions(scope.name);
        return { ...scope, actions: scope.actions.filter((action) => allowed.has(action)) };
      });
    let subject = '';
    if (security.kind === 'user') subject = security.user.username;
    if (security.kind === 'robot') subject = store.robotPrefix + security.robot.storedName;
    return Promise.resolve({ ok: true, subject, access });
  };
}
