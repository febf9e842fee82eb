import type { Readable } from 'node:stream';
import { request } from 'undici';
import { TestkitError } from './errors.js';
import type { RegistryHandle } from './registry.js';

// The test kit needs only these few authenticated requests.
// TODO: replace them with the @edge/oci registry client once it pushes blobs and manifests.

/** Limit of an error body quoted in a message, in characters. */
const ERROR_BODY_LIMIT_CHARS = 2000;

type Credentials = Pick<RegistryHandle, 'url' | 'username' | 'password'>;

export interface RegistryResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
}

function basicAuthorization(registry: Credentials): string | undefined {
  if (registry.username === undefined || registry.password === undefined) return undefined;
  return `Basic ${Buffer.from(`${registry.username}:${registry.password}`).toString('base64')}`;
}

/** Parses `Bearer realm="...",service="...",scope="..."` into lower-cased parameter names. */
export function parseBearerChallenge(header: string): Record<string, string> | undefined {
  const match = /^Bearer\s+(.*)$/i.exec(header.trim());
  if (!match?.[1]) return undefined;
  const params: Record<string, string> = {};
  for (const part of match[1].matchAll(/([a-zA-Z_]+)="([^"]*)"/g)) {
    const [, key, value] = part;
    if (key !== undefined && value !== undefined) params[key.toLowerCase()] = value;
  }
  return params;
}

/**
 * Requests to one repository of a test registry with its credentials: Basic first, and after a
 * Bearer challenge a token for `scope`, kept for the following requests.
 */
export class RegistrySession {
  private authorization: string | undefined;

  constructor(
    private readonly registry: Credentials,
    private readonly scope: string,
  ) {
    this.authorization = basicAuthorization(registry);
  }

  get baseUrl(): string {
    return this.registry.url;
  }

  /**
   * Sends one request. `body` is a factory so a streamed body can be created again when the
   * first attempt gets a Bearer challenge.
   */
  async send(
    method: 'GET' | 'HEAD' | 'POST' | 'PUT' | 'DELETE',
    pathOrUrl: string,
    opts: { headers?: Record<string, string>; body?: () => Buffer | Readable } = {},
  ): Promise<RegistryResponse> {
    const url = new URL(pathOrUrl, this.registry.url);
    const first = await this.sendOnce(method, url, opts);
    const header = first.headers['www-authenticate'];
    const challenge =
      first.status === 401 && typeof header === 'string' ? parseBearerChallenge(header) : undefined;
    if (!challenge) return first;
    this.authorization = `Bearer ${await this.fetchToken(challenge)}`;
    return this.sendOnce(method, url, opts);
  }

  private async sendOnce(
    method: string,
    url: URL,
    opts: { headers?: Record<string, string>; body?: () => Buffer | Readable },
  ): Promise<RegistryResponse> {
    const auth = this.authorization;
    const res = await request(url, {
      method,
      headers: { ...opts.headers, ...(auth ? { authorization: auth } : {}) },
      body: opts.body?.(),
    });
    let text = '';
    if (method === 'HEAD') await res.body.dump();
    else text = await res.body.text();
    return { status: res.statusCode, headers: res.headers, text };
  }

  private async fetchToken(challenge: Record<string, string>): Promise<string> {
    const realm = challenge.realm;
    if (!realm) {
      throw new TestkitError(
        'PUSH_FAILED',
        `Bearer challenge from ${this.registry.url} has no realm`,
      );
    }
    const url = new URL(realm);
    if (challenge.service) url.searchParams.set('service', challenge.service);
    url.searchParams.set('scope', this.scope);
    const basic = basicAuthorization(this.registry);
    const res = await request(url, { headers: basic ? { authorization: basic } : {} });
    const text = await res.body.text();
    if (res.statusCode !== 200) {
      throw new TestkitError(
        'PUSH_FAILED',
        `token request to ${url.origin}${url.pathname} failed with status ${res.statusCode}: ` +
          text.slice(0, ERROR_BODY_LIMIT_CHARS),
      );
    }
    const body = JSON.parse(text) as { token?: unknown; access_token?: unknown };
    const token = body.token ?? body.access_token;
    if (typeof token !== 'string') {
      throw new TestkitError('PUSH_FAILED', `token response from ${url.origin} has no token`);
    }
    return token;
  }
}

/** Throws PUSH_FAILED unless `res.status` is one of `expected`. */
export function expectStatus(res: RegistryResponse, expected: number[], what: string): void {
  if (expected.includes(res.status)) return;
  throw new TestkitError(
    'PUSH_FAILED',
    `${what} returned ${res.status}, expected ${expected.join(' or ')}: ` +
      res.text.slice(0, ERROR_BODY_LIMIT_CHARS),
  );
}
