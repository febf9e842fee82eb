import { badRequest, unprocessable } from './errors.js';

// Harbor's list parameters: `q` (comma-separated `key=value` exact matches and `key=~value`
// fuzzy matches), `page` (from 1) and `page_size` (default 10, maximum 100). A list response
// carries the `X-Total-Count` header and a `Link` header with `rel="prev"` and `rel="next"` URLs.

const DEFAULT_PAGE_SIZE = 10;
const MAX_PAGE_SIZE = 100;

export type QueryMatch = { kind: 'exact'; value: string } | { kind: 'fuzzy'; value: string };

/** Parses `q` into its keys and rejects any key outside `allowedKeys`. */
export function parseQuery(
  q: string | undefined,
  allowedKeys: readonly string[],
): Map<string, QueryMatch> {
  const result = new Map<string, QueryMatch>();
  if (q === undefined || q === '') return result;
  for (const part of q.split(',')) {
    const equals = part.indexOf('=');
    if (equals <= 0)
      throw badRequest(`invalid query string ${JSON.stringify(part)}: expected key=value`);
    const key = part.slice(0, equals);
    let value = part.slice(equals + 1);
    if (!allowedKeys.includes(key)) {
      throw badRequest(
        `query key ${JSON.stringify(key)} is not supported; use one of ${allowedKeys.join(', ')}`,
      );
    }
    const fuzzy = value.startsWith('~');
    if (fuzzy) value = value.slice(1);
    result.set(key, { kind: fuzzy ? 'fuzzy' : 'exact', value });
  }
  return result;
}

export function matches(match: QueryMatch | undefined, actual: string): boolean {
  if (!match) return true;
  return match.kind === 'exact' ? actual === match.value : actual.includes(match.value);
}

export interface Page {
  page: number;
  pageSize: number;
}

/** Reads `page` and `page_size`, with 422 for values outside the bounds, as in Harbor. */
export function parsePage(query: Record<string, string | undefined>): Page {
  const page = parsePositiveInteger(query.page, 'page', 1);
  const pageSize = parsePositiveInteger(query.page_size, 'page_size', DEFAULT_PAGE_SIZE);
  if (pageSize > MAX_PAGE_SIZE) {
    throw unprocessable(`page_size in query should be less than or equal to ${MAX_PAGE_SIZE}`);
  }
  return { page, pageSize };
}

function parsePositiveInteger(raw: string | undefined, name: string, fallback: number): number {
  if (raw === undefined || raw === '') return fallback;
  if (!/^[0-9]+$/.test(raw) || Number(raw) < 1) {
    throw unprocessable(`${name} in query must be a positive integer, got ${JSON.stringify(raw)}`);
  }
  return Number(raw);
}

/** Builds the `Link` header for one page of `total` items, relative to the request path. */
export function linkHeader(
  path: string,
  search: URLSearchParams,
  total: number,
  page: Page,
): string {
  const links: string[] = [];
  const linkTo = (target: number, rel: string) => {
    const params = new URLSearchParams(search);
    params.set('page', String(target));
    params.set('page_size', String(page.pageSize));
    // Harbor unescapes the query of its links (Go's url.QueryUnescape), so `q=name=x` stays raw.
    const query = decodeURIComponent(params.toString().replace(/\+/g, ' '));
    links.push(`<${path}?${query}>; rel="${rel}"`);
  };
  if (page.page > 1 && (page.page - 1) * page.pageSize < total) linkTo(page.page - 1, 'prev');
  if (page.page * page.pageSize < total) linkTo(page.page + 1, 'next');
  return links.join(' , ');
}

export function slicePage<T>(items: T[], page: Page): T[] {
  const start = (page.page - 1) * page.pageSize;
  return items.slice(start, start + page.pageSize);
}
