import { describe, expect, it } from 'vitest';
import {
  formatPlatform,
  matchesAnyPlatform,
  matchesPlatform,
  parsePlatformFilter,
  type Platform,
} from './platform.js';

describe('parsePlatformFilter', () => {
  const valid: [string, object][] = [
    ['linux/amd64', { os: 'linux', architecture: 'amd64' }],
    ['linux/arm64/v8', { os: 'linux', architecture: 'arm64', variant: 'v8' }],
    ['Linux/X86_64', { os: 'linux', architecture: 'amd64' }],
    ['windows/amd64', { os: 'windows', architecture: 'amd64' }],
  ];
  it.each(valid)('parses %s', (input, expected) => {
    expect(parsePlatformFilter(input)).toEqual(expected);
  });

  const invalid = ['', 'linux', 'linux/', '/amd64', 'linux/arm/v7/extra', 'linux/amd 64'];
  it.each(invalid)('rejects %j', (input) => {
    expect(() => parsePlatformFilter(input)).toThrow(
      expect.objectContaining({ code: 'INVALID_PLATFORM' }),
    );
  });
});

describe('matchesPlatform', () => {
  const amd64: Platform = { os: 'linux', architecture: 'amd64' };
  const arm64: Platform = { os: 'linux', architecture: 'arm64' };
  const arm64v8: Platform = { os: 'linux', architecture: 'arm64', variant: 'v8' };
  const armv6: Platform = { os: 'linux', architecture: 'arm', variant: 'v6' };
  const cases: [Platform | undefined, string, boolean][] = [
    [amd64, 'linux/amd64', true],
    [amd64, 'linux/arm64', false],
    [amd64, 'windows/amd64', false],
    [{ os: 'linux', architecture: 'x86_64' }, 'linux/amd64', true],
    [arm64, 'linux/arm64', true],
    [arm64, 'linux/arm64/v8', true],
    [arm64v8, 'linux/arm64/v8', true],
    [arm64v8, 'linux/arm64', true],
    [{ os: 'linux', architecture: 'arm64', variant: 'v9' }, 'linux/arm64/v8', false],
    [armv6, 'linux/arm/v7', false],
    [armv6, 'linux/arm', true],
    [{ os: 'linux', architecture: 'arm' }, 'linux/arm/v7', true],
    [undefined, 'linux/amd64', false],
  ];
  it.each(cases)('%j against %s is %s', (platform, filter, expected) => {
    expect(matchesPlatform(platform, filter)).toBe(expected);
  });

  it('accepts everything with no filters', () => {
    expect(matchesAnyPlatform(amd64, [])).toBe(true);
    expect(matchesAnyPlatform(amd64, ['linux/arm64', 'linux/amd64'])).toBe(true);
    expect(matchesAnyPlatform(amd64, ['linux/arm64'])).toBe(false);
  });

  it('formats with and without variant', () => {
    expect(formatPlatform(arm64v8)).toBe('linux/arm64/v8');
    expect(formatPlatform(amd64)).toBe('linux/amd64');
  });
});
