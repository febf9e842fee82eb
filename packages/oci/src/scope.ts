/** A token scope of the Docker registry token protocol, e.g. `repository:team/app:pull,push`. */
export interface Scope {
  type: string;
  name: string;
  actions: string[];
}

export type RepositoryAction = 'pull' | 'push' | 'delete' | '*';

export function repositoryScope(repository: string, actions: RepositoryAction[]): Scope {
  return { type: 'repository', name: repository, actions: [...actions] };
}

/** Formats a scope; actions are sorted so equal scopes give equal strings (cache keys). */
export function formatScope(scope: Scope): string {
  return `${scope.type}:${scope.name}:${[...new Set(scope.actions)].sort().join(',')}`;
}

/**
 * Parses `type:name:actions`. The name may contain colons (a registry host with a port in
 * some setups), so the type is the text before the first colon and the actions the text
 * after the last one.
 */
export function parseScope(text: string): Scope | undefined {
  const first = text.indexOf(':');
  const last = text.lastIndexOf(':');
  if (first <= 0 || last === first) return undefined;
  const name = text.slice(first + 1, last);
  if (name === '') return undefined;
  return {
    type: text.slice(0, first),
    name,
    actions: text
      .slice(last + 1)
      .split(',')
      .filter(Boolean),
  };
}

/** Merges scopes that name the same resource and returns them in a stable order. */
export function mergeScopes(scopes: readonly Scope[]): Scope[] {
  const byResource = new Map<string, Scope>();
  for (const scope of scopes) {
    const key = `${scope.type}:${scope.name}`;
    const existing = byResource.get(key);
    if (existing === undefined) {
      byResource.set(key, { type: scope.type, name: scope.name, actions: [...scope.actions] });
    } else {
      existing.actions = [...new Set([...existing.actions, ...scope.actions])];
    }
  }
  return [...byResource.values()]
    .map((scope) => ({ ...scope, actions: [...scope.actions].sort() }))
    .sort((a, b) => formatScope(a).localeCompare(formatScope(b)));
}
