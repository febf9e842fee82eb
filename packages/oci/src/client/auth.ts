import { z } from 'zod';
import { OciError, redactUrl } from '../errors.js';
import { parseWwwAuthenticate, type AuthChallenge } from '../headers.js';
import { formatScope, mergeScopes, parseScope, type Scope } from '../scope.js';
import {
  DEFAULT_TOKEN_LIFETIME_SECONDS,
  TOKEN_RENEW_FRACTION,
  TOKEN_RENEW_MAX_MS,
} from './defaults.js';
import type { Clock } from './retry.js';

/** User name and password (or a robot account's secret) for one registry. */
export interface Credentials {
  username: string;
  password: string;
}

/** Credentials, or a callback read before each authentication so callers can rotate them. */
export type CredentialsSource =
  Credentials | (() => Credentials | undefined | Promise<Credentials | undefined>);

/** Credentials per registry host (`host[:port]`), or one callback for every host. */
export type CredentialsOption =
  | Record<string, CredentialsSource>
  | ((host: string) => Credentials | undefined | Promise<Credentials | undefined>);

/** Response of a token endpoint (Docker registry token authentication). */
const tokenResponseSchema = z
  .looseObject({
    token: z.string().min(1).optional(),
    access_token: z.string().min(1).optional(),
    expires_in: z.number().positive().optional(),
    issued_at: z.string().optional(),
  })
  .refine((value) => value.token !== undefined || value.access_token !== undefined, {
    message: 'neither "token" nor "access_token" is present',
  });

/** Fetches a token endpoint URL with optional Basic credentials; returns status and body text. */
export type TokenFetcher = (
  url: URL,
  authorization: string | undefined,
) => Promise<{ status: number; body: string }>;

interface CachedToken {
  token: string;
  renewAt: number;
}

function basicHeader(credentials: Credentials): string {
  return `Basic ${Buffer.from(`${credentials.username}:${credentials.password}`).toString('base64')}`;
}

/**
 * Keeps the authentication state per registry host: the last challenge seen, Basic
 * credentials, and Bearer tokens cached per (realm, service, scopes) until shortly before
 * they expire. Concurrent requests for the same token share one token request.
 */
export class AuthManager {
  private readonly challenges = new Map<string, AuthChallenge>();
  private readonly tokens = new Map<string, CachedToken>();
  private readonly pending = new Map<string, Promise<string>>();

  constructor(
    private readonly credentials: CredentialsOption | undefined,
    private readonly fetchToken: TokenFetcher,
    private readonly clock: Clock,
  ) {}

  async credentialsFor(host: string): Promise<Credentials | undefined> {
    const option = this.credentials;
    if (option === undefined) return undefined;
    if (typeof option === 'function') return option(host);
    const source = option[host];
    if (source === undefined) return undefined;
    return typeof source === 'function' ? source() : source;
  }

  /** Returns the `Authorization` value to send first, from what earlier challenges taught. */
  async authorization(host: string, scopes: readonly Scope[]): Promise<string | undefined> {
    const challenge = this.challenges.get(host);
    if (challenge === undefined) return undefined;
    if (challenge.scheme === 'basic') {
      const credentials = await this.credentialsFor(host);
      return credentials === undefined ? undefined : basicHeader(credentials);
    }
    const key = this.tokenKey(challenge, scopes);
    const cached = this.tokens.get(key);
    if (cached !== undefined && cached.renewAt > this.clock.now()) return `Bearer ${cached.token}`;
    return `Bearer ${await this.requestToken(host, challenge, scopes, key)}`;
  }

  /**
   * Handles a 401: stores the challenge, drops the token that was rejected and returns a
   * new `Authorization` value, or undefined when the challenge uses no supported scheme.
   */
  async onUnauthorized(
    host: string,
    header: string | string[] | undefined,
    scopes: readonly Scope[],
    rejected: string | undefined,
  ): Promise<string | undefined> {
    const challenges = parseWwwAuthenticate(header);
    const challenge =
      challenges.find((item) => item.scheme === 'bearer' && item.params.realm !== undefined) ??
      challenges.find((item) => item.scheme === 'basic');
    if (challenge === undefined) return undefined;
    this.challenges.set(host, challenge);

    if (challenge.scheme === 'basic') {
      const credentials = await this.credentialsFor(host);
      if (credentials === undefined) return undefined;
      const value = basicHeader(credentials);
      // The same credentials were just rejected; sending them again cannot help.
      return value === rejected ? undefined : value;
    }
    // The caller's scopes cover its call and match the cache key of authorization(). The
    // challenge's own scope is used only when the caller passes none.
    const all = scopes.length > 0 ? mergeScopes(scopes) : this.challengeScopes(challenge);
    const key = this.tokenKey(challenge, all);
    const cached = this.tokens.get(key);
    if (cached !== undefined && `Bearer ${cached.token}` === rejected) this.tokens.delete(key);
    else if (cached !== undefined && cached.renewAt > this.clock.now())
      return `Bearer ${cached.token}`;
    return `Bearer ${await this.requestToken(host, challenge, all, key)}`;
  }

  /** Drops every cached token, e.g. after credentials were rotated. */
  clearTokens(): void {
    this.tokens.clear();
  }

  private challengeScopes(challenge: AuthChallenge): Scope[] {
    const scopes = (challenge.params.scope ?? '')
      .split(' ')
      .map((text) => parseScope(text))
      .filter((scope): scope is Scope => scope !== undefined);
    return mergeScopes(scopes);
  }

  private tokenKey(challenge: AuthChallenge, scopes: readonly Scope[]): string {
    const scopeText = mergeScopes(scopes).map(formatScope).join(' ');
    return `${challenge.params.realm ?? ''}|${challenge.params.service ?? ''}|${scopeText}`;
  }

  private requestToken(
    host: string,
    challenge: AuthChallenge,
    scopes: readonly Scope[],
    key: string,
  ): Promise<string> {
    const running = this.pending.get(key);
    if (running !== undefined) return running;
    const promise = this.fetchAndCache(host, challenge, mergeScopes(scopes), key).finally(() => {
      this.pending.delete(key);
    });
    this.pending.set(key, promise);
    return promise;
  }

  private async fetchAndCache(
    host: string,
    challenge: AuthChallenge,
    scopes: Scope[],
    key: string,
  ): Promise<string> {
    const realm = challenge.params.realm ?? '';
    let url: URL;
    try {
      url = new URL(realm);
    } catch {
      throw new OciError(
        'AUTH_FAILED',
        `Registry ${host} sent a Bearer challenge with an invalid realm ${JSON.stringify(realm)}; check the registry's token auth configuration.`,
      );
    }
    if (url.protocol !== 'https:' && url.protocol !== 'http:') {
      throw new OciError(
        'AUTH_FAILED',
        `Registry ${host} sent a Bearer realm with unsupported scheme ${url.protocol}; expected http or https.`,
      );
    }
    if (challenge.params.service !== undefined) {
      url.searchParams.set('service', challenge.params.service);
    }
    for (const scope of scopes) url.searchParams.append('scope', formatScope(scope));

    const credentials = await this.credentialsFor(host);
    const startedAt = this.clock.now();
    const response = await this.fetchToken(
      url,
      credentials === undefined ? undefined : basicHeader(credentials),
    );
    const who = credentials === undefined ? 'anonymous access' : `user "${credentials.username}"`;
    if (response.status === 401 || response.status === 403) {
      throw new OciError(
        'UNAUTHORIZED',
        `Token server ${redactUrl(url)} rejected ${who} for registry ${host} (HTTP ${response.status}); check the credentials configured for this registry.`,
        { status: response.status, method: 'GET', url: url.toString() },
      );
    }
    if (response.status !== 200) {
      throw new OciError(
        response.status >= 500 ? 'SERVER_ERROR' : 'AUTH_FAILED',
        `Token request to ${redactUrl(url)} for registry ${host} failed with HTTP ${response.status}; retry later or check the token server.`,
        { status: response.status, method: 'GET', url: url.toString() },
      );
    }
    let parsed: z.infer<typeof tokenResponseSchema>;
    try {
      parsed = tokenResponseSchema.parse(JSON.parse(response.body));
    } catch (error) {
      throw new OciError(
        'AUTH_FAILED',
        `Token server ${redactUrl(url)} returned an invalid token response for registry ${host}; expected JSON with "token" or "access_token".`,
        { status: 200, method: 'GET', url: url.toString(), cause: error },
      );
    }
    const token = (parsed.token ?? parsed.access_token) as string;
    const lifetimeMs = (parsed.expires_in ?? DEFAULT_TOKEN_LIFETIME_SECONDS) * 1000;
    const margin = Math.min(TOKEN_RENEW_MAX_MS, lifetimeMs * TOKEN_RENEW_FRACTION);
    this.tokens.set(key, { token, renewAt: startedAt + lifetimeMs - margin });
    return token;
  }
}
