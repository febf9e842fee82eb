import { decodeJwt } from 'jose';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  buildTestImages,
  intersectScopes,
  parseScope,
  pushTestImages,
  runCommand,
  skopeoInspectRawDigest,
  startRegistry,
  TestkitError,
} from '../src/index.js';
import type { RegistryHandle, TestImages } from '../src/index.js';
import { skopeoPullDigest } from './registry-push.helpers.js';

let images: TestImages;
beforeAll(async () => {
  images = await buildTestImages({ largeLayerMiB: 1 });
});

function basic(username: string, password: string): string {
  return `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`;
}

async function fetchToken(registry: RegistryHandle, scope: string, authorization?: string) {
  const url = new URL(registry.tokenServer!.realm);
  url.searchParams.set('service', registry.tokenServer!.service);
  url.searchParams.set('scope', scope);
  const res = await request(url, { headers: authorization ? { authorization } : {} });
  const text = await res.body.text();
  return {
    status: res.statusCode,
    body:
      res.statusCode === 200
        ? (JSON.parse(text) as { token: string; expires_in: number })
        : undefined,
  };
}

async function getWithToken(registry: RegistryHandle, path: string, token: string) {
  const res = await request(`${registry.url}${path}`, {
    headers: { authorization: `Bearer ${token}` },
  });
  await res.body.dump();
  return res.statusCode;
}

describe.each(['kid', 'x5c'] as const)('startRegistry auth token (%s)', (keyHeader) => {
  let registry: RegistryHandle;
  beforeAll(async () => {
    registry = await startRegistry({
      auth: 'token',
      tokenKeyHeader: keyHeader,
      users: {
        writer: { password: 'writer-pass' },
        reader: { password: 'reader-pass', access: [{ repository: 'test/*', actions: ['pull'] }] },
      },
    });
    await pushTestImages(registry, images, { only: ['app-a:1'] });
  });
  afterAll(async () => {
    await registry.stop();
  });

  it('accepts a skopeo push and pull', async () => {
    const digest = images.images['app-a:1']!.digest;
    expect(await skopeoInspectRawDigest(registry, 'test/app-a:1')).toBe(digest);
    expect(await skopeoPullDigest(registry, 'test/app-a:1')).toBe(digest);
    expect(registry.tokenServer!.issued).toBeGreaterThan(0);
  });

  it('challenges with the token realm', async () => {
    const res = await request(`${registry.url}/v2/test/app-a/tags/list`);
    await res.body.dump();
    expect(res.statusCode).toBe(401);
    expect(res.headers['www-authenticate']).toContain(`realm="${registry.tokenServer!.realm}"`);
  });

  it('rejects a push with a pull-only user', async () => {
    const error = await runCommand('skopeo', [
      'copy',
      '--quiet',
      '--dest-tls-verify=false',
      '--dest-creds',
      'reader:reader-pass',
      `oci:${images.layoutDir}:app-b-1`,
      `docker://${registry.host}/test/app-b:1`,
    ]).catch((err: unknown) => err);
    expect(error).toBeInstanceOf(TestkitError);
    expect((error as TestkitError).message).toMatch(/denied|unauthorized/i);
  });

  it('grants only the allowed actions', async () => {
    const { body } = await fetchToken(
      registry,
      'repository:test/app-a:pull,push',
      basic('reader', 'reader-pass'),
    );
    const claims = decodeJwt(body!.token);
    expect(claims.access).toEqual([{ type: 'repository', name: 'test/app-a', actions: ['pull'] }]);
    expect(claims.aud).toBe(registry.tokenServer!.service);
    expect(claims.iss).toBe(registry.tokenServer!.issuer);
    expect(claims.sub).toBe('reader');
    expect(typeof claims.jti).toBe('string');
    expect(claims.exp! - claims.iat!).toBe(300);
    expect(await getWithToken(registry, '/v2/test/app-a/tags/list', body!.token)).toBe(200);
    const start = await request(`${registry.url}/v2/test/app-a/blobs/uploads/`, {
      method: 'POST',
      headers: { authorization: `Bearer ${body!.token}` },
    });
    await start.body.dump();
    expect(start.statusCode).toBe(401);
  });

  it('issues tokens for the OAuth2 password grant', async () => {
    const form = (password: string) =>
      new URLSearchParams({
        grant_type: 'password',
        username: 'reader',
        password,
        service: registry.tokenServer!.service,
        scope: 'repository:test/app-a:pull,push',
      }).toString();
    const post = (body: string) =>
      request(registry.tokenServer!.realm, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body,
      });
    const ok = await post(form('reader-pass'));
    const body = (await ok.body.json()) as { access_token: string };
    expect(ok.statusCode).toBe(200);
    expect(decodeJwt(body.access_token).access).toEqual([
      { type: 'repository', name: 'test/app-a', actions: ['pull'] },
    ]);
    const wrong = await post(form('wrong'));
    await wrong.body.dump();
    expect(wrong.statusCode).toBe(401);
    const unsupported = await post('grant_type=refresh_token&refresh_token=x');
    await unsupported.body.dump();
    expect(unsupported.statusCode).toBe(400);
  });

  it('rejects wrong credentials', async () => {
    const res = await fetchToken(registry, 'repository:test/app-a:pull', basic('writer', 'wrong'));
    expect(res.status).toBe(401);
  });

  it('gives anonymous requests no actions', async () => {
    const { body } = await fetchToken(registry, 'repository:test/app-a:pull');
    expect(decodeJwt(body!.token).access).toEqual([
      { type: 'repository', name: 'test/app-a', actions: [] },
    ]);
    expect(await getWithToken(registry, '/v2/test/app-a/tags/list', body!.token)).toBe(401);
  });

  it('rejects an expired token', async () => {
    // docker-registry 2.8 accepts a token up to 60 s after exp, so this one expired 61 s ago.
    registry.tokenServer!.setTtlSeconds(-61);
    try {
      const { body } = await fetchToken(
        registry,
        'repository:test/app-a:pull',
        basic('writer', 'writer-pass'),
      );
      expect(await getWithToken(registry, '/v2/test/app-a/tags/list', body!.token)).toBe(401);
    } finally {
      registry.tokenServer!.setTtlSeconds(300);
    }
    const fresh = await fetchToken(
      registry,
      'repository:test/app-a:pull',
      basic('writer', 'writer-pass'),
    );
    expect(await getWithToken(registry, '/v2/test/app-a/tags/list', fresh.body!.token)).toBe(200);
  });
});

describe('startRegistry token lifetime', () => {
  it('issues tokens with tokenTtlSeconds', async () => {
    const registry = await startRegistry({ auth: 'token', tokenTtlSeconds: 30 });
    try {
      const { body } = await fetchToken(
        registry,
        'repository:test/x:pull',
        basic(registry.username!, registry.password!),
      );
      const claims = decodeJwt(body!.token);
      expect(body!.expires_in).toBe(30);
      expect(claims.exp! - claims.iat!).toBe(30);
      expect(claims.nbf!).toBeLessThanOrEqual(claims.iat!);
    } finally {
      await registry.stop();
    }
  });
});

describe('startRegistry tokenAuthorizer', () => {
  it('replaces the users table', async () => {
    const seen: (string | undefined)[] = [];
    const registry = await startRegistry({
      auth: 'token',
      tokenAuthorizer: ({ username, scopes }) => {
        seen.push(username);
        // Anonymous pull of public repositories, as a Harbor public project allows.
        const access = scopes
          .filter((s) => s.name.startsWith('public/'))
          .map((s) => ({ ...s, actions: ['pull'] }));
        return Promise.resolve({ ok: true, subject: username ?? 'anonymous', access });
      },
    });
    try {
      const allowed = await fetchToken(registry, 'repository:public/app:pull,push');
      const denied = await fetchToken(registry, 'repository:private/app:pull');
      expect(decodeJwt(allowed.body!.token).access).toEqual([
        { type: 'repository', name: 'public/app', actions: ['pull'] },
      ]);
      expect(decodeJwt(denied.body!.token).access).toEqual([
        { type: 'repository', name: 'private/app', actions: [] },
      ]);
      expect(seen).toEqual([undefined, undefined]);
    } finally {
      await registry.stop();
    }
  });
});

describe('token scopes', () => {
  it('parses names that contain colons', () => {
    expect(parseScope('repository:127.0.0.1:5000/a:pull,push')).toEqual({
      type: 'repository',
      name: '127.0.0.1:5000/a',
      actions: ['pull', 'push'],
    });
    expect(parseScope('nonsense')).toBeUndefined();
  });

  it('intersects requested and allowed actions', () => {
    const requested = [{ type: 'repository', name: 'a', actions: ['pull', 'push', 'delete'] }];
    expect(
      intersectScopes(requested, [{ type: 'repository', name: 'a', actions: ['push'] }]),
    ).toEqual([{ type: 'repository', name: 'a', actions: ['push'] }]);
    expect(
      intersectScopes(requested, [{ type: 'repository', name: 'a', actions: ['*'] }])[0]!.actions,
    ).toEqual(['pull', 'push', 'delete']);
    expect(
      intersectScopes(requested, [{ type: 'repository', name: 'b', actions: ['*'] }])[0]!.actions,
    ).toEqual([]);
  });
});
