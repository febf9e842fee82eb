import { describe, expect, it } from 'vitest';
import { AuthManager, type TokenFetcher } from './auth.js';
import type { Clock } from './retry.js';

const CHALLENGE =
  'Bearer realm="https://auth.example/token",service="registry.example",scope="repository:team/app:pull"';
const PULL = [{ type: 'repository', name: 'team/app', actions: ['pull'] }];

function scriptedTokens(
  bodies: object[],
): TokenFetcher & { urls: URL[]; authorizations: (string | undefined)[] } {
  const urls: URL[] = [];
  const authorizations: (string | undefined)[] = [];
  let index = 0;
  const fetcher = (url: URL, authorization: string | undefined) => {
    urls.push(url);
    authorizations.push(authorization);
    const body = bodies[Math.min(index++, bodies.length - 1)];
    return Promise.resolve({ status: 200, body: JSON.stringify(body) });
  };
  return Object.assign(fetcher, { urls, authorizations });
}

function manualClock(start = 1_000_000): Clock & { advance(ms: number): void } {
  let now = start;
  return {
    now: () => now,
    sleep: () => Promise.resolve(),
    advance: (ms) => {
      now += ms;
    },
  };
}

describe('AuthManager', () => {
  it('requests a token with service and scopes', async () => {
    const fetcher = scriptedTokens([{ token: 't1', expires_in: 300 }]);
    const auth = new AuthManager(
      { 'registry.example': { username: 'robot', password: 'secret' } },
      fetcher,
      manualClock(),
    );
    const value = await auth.onUnauthorized(
      'registry.example',
      CHALLENGE,
      [...PULL, { type: 'repository', name: 'other/src', actions: ['pull'] }],
      undefined,
    );
    expect(value).toBe('Bearer t1');
    expect(fetcher.urls[0]?.searchParams.get('service')).toBe('registry.example');
    expect(fetcher.urls[0]?.searchParams.getAll('scope')).toEqual([
      'repository:other/src:pull',
      'repository:team/app:pull',
    ]);
    expect(fetcher.authorizations[0]).toBe(
      `Basic ${Buffer.from('robot:secret').toString('base64')}`,
    );
  });

  it.each([
    ['token only', { token: 'a' }, 'Bearer a'],
    ['access_token only', { access_token: 'b' }, 'Bearer b'],
    ['both', { token: 'c', access_token: 'c' }, 'Bearer c'],
  ])('accepts %s', async (_name, body, expected) => {
    const auth = new AuthManager(undefined, scriptedTokens([body]), manualClock());
    await expect(auth.onUnauthorized('h', CHALLENGE, PULL, undefined)).resolves.toBe(expected);
  });

  it('rejects a response without a token', async () => {
    const auth = new AuthManager(undefined, scriptedTokens([{ expires_in: 60 }]), manualClock());
    await expect(auth.onUnauthorized('h', CHALLENGE, PULL, undefined)).rejects.toMatchObject({
      code: 'AUTH_FAILED',
    });
  });

  it('assumes 60 seconds without expires_in', async () => {
    const clock = manualClock();
    const fetcher = scriptedTokens([{ token: 'first' }, { token: 'second' }]);
    const auth = new AuthManager(undefined, fetcher, clock);
    await auth.onUnauthorized('h', CHALLENGE, PULL, undefined);
    clock.advance(50_000);
    await expect(auth.authorization('h', PULL)).resolves.toBe('Bearer first');
    clock.advance(5_000);
    await expect(auth.authorization('h', PULL)).resolves.toBe('Bearer second');
    expect(fetcher.urls).toHaveLength(2);
  });

  it('replaces a token the registry rejected', async () => {
    const fetcher = scriptedTokens([
      { token: 'old', expires_in: 300 },
      { token: 'new', expires_in: 300 },
    ]);
    const auth = new AuthManager(undefined, fetcher, manualClock());
    const first = await auth.onUnauthorized('h', CHALLENGE, PULL, undefined);
    await expect(auth.authorization('h', PULL)).resolves.toBe(first);
    // Still valid by the client's clock, but the registry returned 401 for it.
    await expect(auth.onUnauthorized('h', CHALLENGE, PULL, first)).resolves.toBe('Bearer new');
    await expect(auth.authorization('h', PULL)).resolves.toBe('Bearer new');
  });

  it('shares one token request between callers', async () => {
    const fetcher = scriptedTokens([{ token: 'shared', expires_in: 300 }]);
    const auth = new AuthManager(undefined, fetcher, manualClock());
    await auth.onUnauthorized('h', CHALLENGE, PULL, undefined);
    auth.clearTokens();
    const results = await Promise.all([
      auth.authorization('h', PULL),
      auth.authorization('h', PULL),
    ]);
    expect(results).toEqual(['Bearer shared', 'Bearer shared']);
    expect(fetcher.urls).toHaveLength(2);
  });

  it('answers Basic challenges once per credentials', async () => {
    let password = 'one';
    const auth = new AuthManager(
      () => ({ username: 'u', password }),
      scriptedTokens([]),
      manualClock(),
    );
    const first = await auth.onUnauthorized('h', 'Basic realm="r"', [], undefined);
    expect(first).toBe(`Basic ${Buffer.from('u:one').toString('base64')}`);
    await expect(auth.onUnauthorized('h', 'Basic realm="r"', [], first)).resolves.toBeUndefined();
    password = 'two';
    await expect(auth.onUnauthorized('h', 'Basic realm="r"', [], first)).resolves.toBe(
      `Basic ${Buffer.from('u:two').toString('base64')}`,
    );
  });

  it('maps a rejected login to UNAUTHORIZED without the password', async () => {
    const fetcher: TokenFetcher = () => Promise.resolve({ status: 401, body: '{"details":"bad"}' });
    const auth = new AuthManager(
      { h: { username: 'robot', password: 'hunter2' } },
      fetcher,
      manualClock(),
    );
    const error = await auth
      .onUnauthorized('h', CHALLENGE, PULL, undefined)
      .catch((caught: unknown) => caught);
    expect(error).toMatchObject({ code: 'UNAUTHORIZED', status: 401 });
    expect((error as Error).message).toContain('robot');
    expect((error as Error).message).not.toContain('hunter2');
  });

  it('ignores unsupported schemes', async () => {
    const auth = new AuthManager(undefined, scriptedTokens([]), manualClock());
    await expect(
      auth.onUnauthorized('h', 'Negotiate abc==', PULL, undefined),
    ).resolves.toBeUndefined();
  });
});
