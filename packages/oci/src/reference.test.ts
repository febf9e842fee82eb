import { describe, expect, it } from 'vitest';
import { OciError } from './errors.js';
import {
  formatFamiliarReference,
  formatReference,
  manifestReference,
  parseReference,
  registryEndpointHost,
  type Reference,
} from './reference.js';

const HEX = 'a'.repeat(64);
const DIGEST = `sha256:${HEX}`;

describe('parseReference', () => {
  const valid: [string, Reference][] = [
    ['nginx', { registry: 'docker.io', repository: 'library/nginx' }],
    ['nginx:1.25', { registry: 'docker.io', repository: 'library/nginx', tag: '1.25' }],
    ['docker.io/nginx', { registry: 'docker.io', repository: 'library/nginx' }],
    [
      'index.docker.io/library/nginx:x',
      { registry: 'docker.io', repository: 'library/nginx', tag: 'x' },
    ],
    ['bitnami/redis', { registry: 'docker.io', repository: 'bitnami/redis' }],
    ['localhost/app', { registry: 'localhost', repository: 'app' }],
    ['localhost:5000/app:1', { registry: 'localhost:5000', repository: 'app', tag: '1' }],
    [
      '127.0.0.1:15000/test/app-a:1',
      { registry: '127.0.0.1:15000', repository: 'test/app-a', tag: '1' },
    ],
    ['[::1]:5000/a/b', { registry: '[::1]:5000', repository: 'a/b' }],
    ['ghcr.io/org/team/sub/app', { registry: 'ghcr.io', repository: 'org/team/sub/app' }],
    [`quay.io/a/b@${DIGEST}`, { registry: 'quay.io', repository: 'a/b', digest: DIGEST }],
    [
      `quay.io/a/b:v1@${DIGEST}`,
      { registry: 'quay.io', repository: 'a/b', tag: 'v1', digest: DIGEST },
    ],
    [
      'reg.example.com/a__b/c-d/e.f_g:Tag_1.0-rc',
      { registry: 'reg.example.com', repository: 'a__b/c-d/e.f_g', tag: 'Tag_1.0-rc' },
    ],
    ['a/b', { registry: 'docker.io', repository: 'a/b' }],
    ['x---y/z', { registry: 'docker.io', repository: 'x---y/z' }],
    [`h.io/r:${'t'.repeat(128)}`, { registry: 'h.io', repository: 'r', tag: 't'.repeat(128) }],
  ];
  it.each(valid)('parses %s', (input, expected) => {
    expect(parseReference(input)).toEqual(expected);
  });

  it('uses the default registry option', () => {
    expect(parseReference('team/app', { defaultRegistry: 'harbor.local' })).toEqual({
      registry: 'harbor.local',
      repository: 'team/app',
    });
  });

  const invalid: [string, string][] = [
    ['', 'empty'],
    ['UPPER', 'lowercase'],
    ['a/UPPER', 'lowercase'],
    ['docker.io/Library/nginx', 'lowercase'],
    ['app:', 'not a valid tag'],
    ['app:.bad', 'not a valid tag'],
    [`app:${'t'.repeat(129)}`, 'not a valid tag'],
    ['app@sha256:abc', 'digest'],
    [`app@md5:${HEX}`, 'digest'],
    ['a//b', 'repository path'],
    ['a/b/', 'repository path'],
    ['-a/b', 'repository path'],
    ['a_-b/c', 'repository path'],
    ['host:port/app', 'registry host'],
    ['host:70000/app', 'registry host'],
    ['-host.io/app', 'registry host'],
    ['a b', 'whitespace'],
    ['reg.io/', 'missing'],
    [`reg.io/${'a'.repeat(250)}`, 'longer than 255'],
  ];
  it.each(invalid)('rejects %j', (input, reason) => {
    let caught: unknown;
    try {
      parseReference(input);
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(OciError);
    expect((caught as OciError).code).toBe('INVALID_REFERENCE');
    expect((caught as OciError).message).toContain(reason);
  });
});

describe('formatReference', () => {
  const cases: [string, string, string][] = [
    ['nginx', 'docker.io/library/nginx', 'nginx'],
    ['bitnami/redis:7', 'docker.io/bitnami/redis:7', 'bitnami/redis:7'],
    [`h.io:5000/a/b:1@${DIGEST}`, `h.io:5000/a/b:1@${DIGEST}`, `h.io:5000/a/b:1@${DIGEST}`],
  ];
  it.each(cases)('formats %s', (input, full, familiar) => {
    const reference = parseReference(input);
    expect(formatReference(reference)).toBe(full);
    expect(formatFamiliarReference(reference)).toBe(familiar);
    expect(parseReference(formatReference(reference))).toEqual(reference);
  });

  it('picks digest, then tag, then latest', () => {
    expect(manifestReference(parseReference(`a/b:1@${DIGEST}`))).toBe(DIGEST);
    expect(manifestReference(parseReference('a/b:1'))).toBe('1');
    expect(manifestReference(parseReference('a/b'))).toBe('latest');
  });

  it('maps docker.io to its API host', () => {
    expect(registryEndpointHost('docker.io')).toBe('registry-1.docker.io');
    expect(registryEndpointHost('127.0.0.1:5000')).toBe('127.0.0.1:5000');
  });
});
