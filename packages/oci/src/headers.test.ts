import { describe, expect, it } from 'vitest';
import {
  nextLink,
  parseLinkHeader,
  parseRetryAfter,
  parseWwwAuthenticate,
  type AuthChallenge,
} from './headers.js';
import { formatScope, mergeScopes, parseScope } from './scope.js';

describe('parseWwwAuthenticate', () => {
  const cases: [string, AuthChallenge[]][] = [
    ['Basic realm="upstream"', [{ scheme: 'basic', params: { realm: 'upstream' } }]],
    [
      'Bearer realm="http://127.0.0.1:15010/token",service="edge-registry",scope="repository:test/app:pull"',
      [
        {
          scheme: 'bearer',
          params: {
            realm: 'http://127.0.0.1:15010/token',
            service: 'edge-registry',
            scope: 'repository:test/app:pull',
          },
        },
      ],
    ],
    [
      'Bearer realm="https://auth.example/token", service="registry", scope="repository:a/b:pull,push repository:c/d:pull"',
      [
        {
          scheme: 'bearer',
          params: {
            realm: 'https://auth.example/token',
            service: 'registry',
            scope: 'repository:a/b:pull,push repository:c/d:pull',
          },
        },
      ],
    ],
    [
      'Basic realm="a, b", Bearer realm="https://x/t",error="invalid_token"',
      [
        { scheme: 'basic', params: { realm: 'a, b' } },
        { scheme: 'bearer', params: { realm: 'https://x/t', error: 'invalid_token' } },
      ],
    ],
    [
      'Bearer realm = "x" , service=tok',
      [{ scheme: 'bearer', params: { realm: 'x', service: 'tok' } }],
    ],
    ['Basic realm="say \\"hi\\""', [{ scheme: 'basic', params: { realm: 'say "hi"' } }]],
    ['BASIC REALM=r', [{ scheme: 'basic', params: { realm: 'r' } }]],
    ['Negotiate abc123==', [{ scheme: 'negotiate', params: {}, token68: 'abc123==' }]],
    [
      'Negotiate, Basic realm=r',
      [
        { scheme: 'negotiate', params: {} },
        { scheme: 'basic', params: { realm: 'r' } },
      ],
    ],
    [
      'Newauth realm="apps", type=1, title="Login to \\"apps\\"", Basic realm="simple"',
      [
        { scheme: 'newauth', params: { realm: 'apps', type: '1', title: 'Login to "apps"' } },
        { scheme: 'basic', params: { realm: 'simple' } },
      ],
    ],
    ['Basic realm="unterminated', [{ scheme: 'basic', params: { realm: 'unterminated' } }]],
    ['', []],
  ];
  it.each(cases)('parses %j', (header, expected) => {
    expect(parseWwwAuthenticate(header)).toEqual(expected);
  });

  it('parses several header lines', () => {
    expect(parseWwwAuthenticate(['Basic realm=a', 'Bearer realm=b']).map((c) => c.scheme)).toEqual([
      'basic',
      'bearer',
    ]);
    expect(parseWwwAuthenticate(undefined)).toEqual([]);
  });
});

describe('parseLinkHeader', () => {
  it.each([
    ['</v2/_catalog?last=test%2Fapp-b&n=2>; rel="next"', '/v2/_catalog?last=test%2Fapp-b&n=2'],
    [
      '<https://r.example/v2/x/tags/list?n=2&last=b>; rel=next',
      'https://r.example/v2/x/tags/list?n=2&last=b',
    ],
    ['<https://x/prev>; rel="prev", <https://x/next?c=a,b>; rel="next"', 'https://x/next?c=a,b'],
    ['<https://x/a>; rel="prev next"', 'https://x/a'],
    ['<https://x/a>; title="a;b, c"; rel="next"', 'https://x/a'],
  ])('finds next in %j', (header, expected) => {
    expect(nextLink(header)).toBe(expected);
  });

  it.each([
    [undefined],
    [''],
    ['<https://x/a>; rel="prev"'],
    ['garbage'],
    ['<unterminated; rel=next'],
  ])('finds no next in %j', (header) => {
    expect(nextLink(header)).toBeUndefined();
  });

  it('keeps all parameters', () => {
    expect(parseLinkHeader('<a>; rel=next; type="text/plain"')).toEqual([
      { uri: 'a', rel: ['next'], params: { rel: 'next', type: 'text/plain' } },
    ]);
  });
});

describe('parseRetryAfter', () => {
  const now = Date.parse('2026-01-01T00:00:00Z');
  it.each([
    ['120', 120],
    [' 0 ', 0],
    ['Thu, 01 Jan 2026 00:00:30 GMT', 30],
    ['Wed, 31 Dec 2025 23:00:00 GMT', 0],
  ])('parses %j as %d', (value, expected) => {
    expect(parseRetryAfter(value, now)).toBe(expected);
  });
  it.each([[undefined], [''], ['-5'], ['1.5'], ['soon'], ['2026-01-01']])('rejects %j', (value) => {
    expect(parseRetryAfter(value, now)).toBeUndefined();
  });
});

describe('scopes', () => {
  it('formats with sorted actions', () => {
    expect(
      formatScope({ type: 'repository', name: 'a/b', actions: ['push', 'pull', 'push'] }),
    ).toBe('repository:a/b:pull,push');
  });
  it('parses names with colons', () => {
    expect(parseScope('repository:host:5000/a:pull')).toEqual({
      type: 'repository',
      name: 'host:5000/a',
      actions: ['pull'],
    });
    expect(parseScope('registry:catalog:*')).toEqual({
      type: 'registry',
      name: 'catalog',
      actions: ['*'],
    });
    expect(parseScope('nonsense')).toBeUndefined();
  });
  it('merges scopes of one resource', () => {
    expect(
      mergeScopes([
        { type: 'repository', name: 'b', actions: ['pull'] },
        { type: 'repository', name: 'a', actions: ['push'] },
        { type: 'repository', name: 'a', actions: ['pull'] },
      ]).map(formatScope),
    ).toEqual(['repository:a:pull,push', 'repository:b:pull']);
  });
});
