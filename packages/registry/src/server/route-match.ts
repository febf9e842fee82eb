import { RegistryError } from '../errors.js';
import { assertRepositoryName } from '../oci.js';

export type Operation =
  | 'base'
  | 'catalog'
  | 'tags_list'
  | 'manifest'
  | 'blob'
  | 'upload_start'
  | 'upload'
  | 'referrers'
  | 'metrics'
  | 'unknown';

export interface RouteMatch {
  operation: Operation;
  repository?: string;
  /** Tag, digest or upload id, as the path gives it. */
  reference?: string;
}

const PATTERNS: [Operation, RegExp][] = [
  ['upload_start', /^\/v2\/(.+)\/blobs\/uploads\/?$/],
  ['upload', /^\/v2\/(.+)\/blobs\/uploads\/([^/]+)$/],
  ['blob', /^\/v2\/(.+)\/blobs\/([^/]+)$/],
  ['manifest', /^\/v2\/(.+)\/manifests\/([^/]+)$/],
  ['tags_list', /^\/v2\/(.+)\/tags\/list$/],
  ['referrers', /^\/v2\/(.+)\/referrers\/([^/]+)$/],
];

/**
 * Maps a raw request path to an API operation. Repository names, tags and digests never need
 * percent-encoding, so any `%` (such as an encoded slash or dot) is rejected before matching,
 * and the name must match the distribution grammar, which has no `.` or `..` components.
 */
export function matchRoute(rawUrl: string): RouteMatch {
  const path = rawUrl.split('?')[0] ?? '';
  if (path === '/v2' || path === '/v2/') return { operation: 'base' };
  if (path === '/v2/_catalog') return { operation: 'catalog' };
  if (path === '/metrics') return { operation: 'metrics' };
  if (!path.startsWith('/v2/')) return { operation: 'unknown' };
  if (path.includes('%')) {
    throw new RegistryError(
      'NAME_INVALID',
      'percent-encoded characters are not allowed in repository paths: send the name unencoded',
    );
  }
  for (const [operation, pattern] of PATTERNS) {
    const match = pattern.exec(path);
    if (!match) continue;
    const repository = match[1] as string;
    assertRepositoryName(repository);
    const reference = match[2];
    return reference === undefined
      ? { operation, repository }
      : { operation, repository, reference };
  }
  return { operation: 'unknown' };
}
