import { describe, expect, it } from 'vitest';
import { acceptedMediaTypes, matchesIfNoneMatch, parseRange } from './http-util.js';
import { matchRoute } from './route-match.js';

describe('parseRange', () => {
  it.each([
    ['bytes=0-9', { kind: 'satisfiable', start: 0, end: 9 }],
    ['bytes=90-', { kind: 'satisfiable', start: 90, end: 99 }],
    ['bytes=-10', { kind: 'satisfiable', start: 90, end: 99 }],
    ['bytes=-500', { kind: 'satisfiable', start: 0, end: 99 }],
    ['bytes=50-500', { kind: 'satisfiable', start: 50, end: 99 }],
    ['bytes=100-', { kind: 'unsatisfiable' }],
    ['bytes=-0', { kind: 'unsatisfiable' }],
    ['bytes=9-1', { kind: 'none' }],
    ['bytes=0-1,5-6', { kind: 'none' }],
    ['items=0-1', { kind: 'none' }],
    ['bytes=-', { kind: 'none' }],
  ])('%s on 100 bytes', (header, expected) => {
    expect(parseRange(header, 100)).toEqual(expected);
  });

  it('absent header is none', () => {
    expect(parseRange(undefined, 100)).toEqual({ kind: 'none' });
  });
});

describe('acceptedMediaTypes', () => {
  it('lists types without parameters', () => {
    expect(acceptedMediaTypes('application/a+json; q=0.5, application/b+json')).toEqual(
      new Set(['application/a+json', 'application/b+json']),
    );
    expect(acceptedMediaTypes(['application/a+json', 'application/c+json'])).toEqual(
      new Set(['application/a+json', 'application/c+json']),
    );
  });

  it('wildcards and absence accept all', () => {
    expect(acceptedMediaTypes(undefined)).toBeNull();
    expect(acceptedMediaTypes('*/*')).toBeNull();
    expect(acceptedMediaTypes('application/x, application/*')).toBeNull();
  });
});

describe('matchesIfNoneMatch', () => {
  it('matches listed, weak and star tags', () => {
    expect(matchesIfNoneMatch('"a", "b"', '"b"')).toBe(true);
    expect(matchesIfNoneMatch('W/"b"', '"b"')).toBe(true);
    expect(matchesIfNoneMatch('*', '"b"')).toBe(true);
    expect(matchesIfNoneMatch('"a"', '"b"')).toBe(false);
    expect(matchesIfNoneMatch(undefined, '"b"')).toBe(false);
  });
});

describe('matchRoute', () => {
  it('maps paths to operations', () => {
    expect(matchRoute('/v2/')).toEqual({ operation: 'base' });
    expect(matchRoute('/v2/_catalog?n=1')).toEqual({ operation: 'catalog' });
    expect(matchRoute('/v2/a/b/manifests/1')).toEqual({
      operation: 'manifest',
      repository: 'a/b',
      reference: '1',
    });
    expect(matchRoute('/v2/a/blobs/uploads/')).toEqual({
      operation: 'upload_start',
      repository: 'a',
    });
    expect(matchRoute('/v2/a/blobs/uploads/x-1')).toEqual({
      operation: 'upload',
      repository: 'a',
      reference: 'x-1',
    });
    expect(matchRoute('/v2/a/blobs/sha256:00')).toEqual({
      operation: 'blob',
      repository: 'a',
      reference: 'sha256:00',
    });
    expect(matchRoute('/v2/a/tags/list')).toEqual({ operation: 'tags_list', repository: 'a' });
    expect(matchRoute('/v2/a/referrers/sha256:00')).toEqual({
      operation: 'referrers',
      repository: 'a',
      reference: 'sha256:00',
    });
    expect(matchRoute('/v2/a/manifests/b/manifests/1')).toEqual({
      operation: 'manifest',
      repository: 'a/manifests/b',
      reference: '1',
    });
    expect(matchRoute('/other')).toEqual({ operation: 'unknown' });
  });

  it('rejects encoded and invalid names', () => {
    for (const path of [
      '/v2/a%2Fb/tags/list',
      '/v2/a/../b/tags/list',
      '/v2/A/tags/list',
      '/v2/a//b/tags/list',
    ]) {
      expect(() => matchRoute(path)).toThrow(expect.objectContaining({ code: 'NAME_INVALID' }));
    }
  });
});
