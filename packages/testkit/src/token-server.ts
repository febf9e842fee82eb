import { createHash, createPublicKey, randomUUID, X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Fastify from 'fastify';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { importPKCS8, SignJWT } from 'jose';
import { z } from 'zod';
import { TestkitError } from './errors.js';
import { runCommand } from './process.js';
import type { AccessRule, RegistryUser, TokenAuthorizer, TokenScope } from './registry.js';

/** Validity of the self-signed signing certificate, in days; tests never outlive it. */
const CERT_VALIDITY_DAYS = 3650;
/** `nbf` lies this far before `iat`, in seconds, so a registry clock a little behind accepts it. */
const NOT_BEFORE_SKEW_SECONDS = 5;
const BASE32_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

export interface TokenServerOptions {
  /** JWT `iss`; must equal the registry's auth.token.issuer. */
  issuer: string;
  /** JWT `aud`; must equal the registry's auth.token.service. */
  service: string;
  /**
   * Lifetime of issued tokens, in seconds. A negative value issues tokens that are already
   * expired, because docker-registry 2.8 accepts a token up to 60 s past its `exp`.
   */
  ttlSeconds: number;
  authorize: TokenAuthorizer;
  /**
   * Key reference in the JWT header: 'kid' (the libtrust key id of the certificate, default) or
   * 'x5c' (the certificate itself). docker-registry 2.8 accepts both.
   */
  keyHeader?: 'kid' | 'x5c';
}

export interface TokenServer {
  /** 'http://127.0.0.1:PORT' */
  url: string;
  /** Token endpoint for the registry's auth.token.realm: `${url}/token`. */
  realm: string;
  issuer: string;
  service: string;
  /** PEM certificate whose key signs the tokens: the registry's auth.token.rootcertbundle. */
  certPath: string;
  /** Tokens issued since the start. */
  readonly issued: number;
  setTtlSeconds(seconds: number): void;
  stop(): Promise<void>;
}

/**
 * Returns the libtrust key id of a public key: base32 of the first 30 bytes of the SHA-256 of
 * its DER SubjectPublicKeyInfo, in groups of four joined by ':'. docker-registry 2.8 looks up
 * the JWT `kid` in its root certificate bundle by this id.
 */
export function libtrustKeyId(certificatePem: string): string {
  const der = createPublicKey(certificatePem).export({ type: 'spki', format: 'der' });
  const hash = createHash('sha256').update(der).digest().subarray(0, 30);
  let bits = 0;
  let value = 0;
  let encoded = '';
  for (const byte of hash) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      encoded += BASE32_ALPHABET[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  return (encoded.match(/.{4}/g) ?? []).join(':');
}

/** Parses a scope `type:name:actions`; the name may contain ':' (e.g. a registry host). */
export function parseScope(scope: string): TokenScope | undefined {
  const first = scope.indexOf(':');
  const last = scope.lastIndexOf(':');
  if (first <= 0 || last === first) return undefined;
  return {
    type: scope.slice(0, first),
    name: scope.slice(first + 1, last),
    actions: scope
      .slice(last + 1)
      .split(',')
      .filter((a) => a.length > 0),
  };
}

/** Grants, per requested scope, the requested actions that `allowed` also lists ('*': any). */
export function intersectScopes(requested: TokenScope[], allowed: TokenScope[]): TokenScope[] {
  return requested.map((scope) => {
    const granted = new Set<string>();
    for (const entry of allowed) {
      if (entry.type !== scope.type || entry.name !== scope.name) continue;
      for (const action of scope.actions) {
        if (entry.actions.includes(action) || entry.actions.includes('*')) granted.add(action);
      }
    }
    return { type: scope.type, name: scope.name, actions: [...granted] };
  });
}

function ruleMatches(rule: AccessRule, repository: string): boolean {
  if (rule.repository.endsWith('*')) return repository.startsWith(rule.repository.slice(0, -1));
  return rule.repository === repository;
}

/** Every action on every repository, and the catalog: the access of a user without rules. */
const FULL_ACCESS: AccessRule[] = [{ repository: '*', actions: ['*'] }];

/**
 * Builds the authorizer of a users table. A known user with the right password gets the actions
 * its rules allow, and the catalog (`registry:catalog:*`) needs a rule '*' with action '*'.
 * Anonymous requests get no actions. Wrong passwords are rejected.
 */
export function usersAuthorizer(users: Record<string, RegistryUser>): TokenAuthorizer {
  return ({ username, password, scopes }) => {
    if (username === undefined) return Promise.resolve({ ok: true, subject: '', access: [] });
    const user = users[username];
    if (!user || user.password !== password) return Promise.resolve({ ok: false });
    const rules = user.access ?? FULL_ACCESS;
    const access = scopes.map((scope) => {
      if (scope.type === 'registry' && scope.name === 'catalog') {
        const full = rules.some((r) => r.repository === '*' && r.actions.includes('*'));
        return { ...scope, actions: full ? scope.actions : [] };
      }
      if (scope.type !== 'repository') return { ...scope, actions: [] };
      const actions = new Set<string>();
      for (const rule of rules.filter((r) => ruleMatches(r, scope.name))) {
        for (const action of rule.actions) actions.add(action);
      }
      return { ...scope, actions: [...actions] };
    });
    return Promise.resolve({ ok: true, subject: username, access });
  };
}

const tokenQuerySchema = z.object({
  service: z.string().optional(),
  scope: z.union([z.string(), z.array(z.string())]).optional(),
  account: z.string().optional(),
});

const tokenFormSchema = z.object({
  grant_type: z.string(),
  username: z.string().optional(),
  password: z.string().optional(),
  service: z.string().optional(),
  scope: z.string().optional(),
});

function parseBasic(header: string | undefined): { username: string; password: string } | null {
  if (header === undefined) return null;
  const match = /^Basic\s+([A-Za-z0-9+/=]+)$/i.exec(header.trim());
  if (!match?.[1]) return null;
  const decoded = Buffer.from(match[1], 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) return null;
  return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

function scopesFrom(values: string | string[] | undefined): TokenScope[] {
  const list = values === undefined ? [] : Array.isArray(values) ? values : [values];
  return list
    .flatMap((value) => value.split(' '))
    .filter((value) => value.length > 0)
    .map(parseScope)
    .filter((scope): scope is TokenScope => scope !== undefined);
}

// One RSA key and certificate per test process: generating a 2048-bit key takes 0.5-1.5 s.
let sharedCertificate: Promise<{ keyPem: string; certPem: string }> | undefined;

async function makeCertificate(dir: string): Promise<{ keyPem: string; certPem: string }> {
  const keyPath = join(dir, 'key.pem');
  const certPath = join(dir, 'cert.pem');
  await runCommand('openssl', [
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-keyout',
    keyPath,
    '-out',
    certPath,
    '-days',
    String(CERT_VALIDITY_DAYS),
    '-subj',
    '/CN=edge-testkit-token-issuer',
  ]);
  // OpenSSL 3 writes the key as PKCS#8, which jose's importPKCS8 reads.
  return { keyPem: await readFile(keyPath, 'utf8'), certPem: await readFile(certPath, 'utf8') };
}

/** Returns the process's signing key and certificate, and writes the certificate into `dir`. */
async function certificateIn(dir: string): Promise<{ keyPem: string; certPem: string }> {
  if (!sharedCertificate) {
    sharedCertificate = mkdtemp(join(tmpdir(), 'edge-testkit-cert-')).then(async (certDir) => {
      try {
        return await makeCertificate(certDir);
      } finally {
        await rm(certDir, { recursive: true, force: true });
      }
    });
    sharedCertificate.catch(() => {
      sharedCertificate = undefined;
    });
  }
  const pair = await sharedCertificate;
  await writeFile(join(dir, 'cert.pem'), pair.certPem);
  return pair;
}

function unauthorized(reply: FastifyReply, message: string) {
  return reply.code(401).send({ errors: [{ code: 'UNAUTHORIZED', message }] });
}

/**
 * Starts a Docker registry token server (fastify + jose, RS256) on 127.0.0.1. GET /token takes
 * `service` and `scope` with optional Basic credentials; POST /token takes the OAuth2 password
 * grant. Tokens carry `iss`, `sub`, `aud`, `exp`, `nbf`, `iat`, `jti` and the granted `access`.
 */
export async function startTokenServer(opts: TokenServerOptions): Promise<TokenServer> {
  if (!Number.isInteger(opts.ttlSeconds)) {
    throw new TestkitError(
      'INVALID_OPTIONS',
      `startTokenServer: ttlSeconds ${opts.ttlSeconds} is invalid; give a whole number of seconds`,
    );
  }
  const dir = await mkdtemp(join(tmpdir(), 'edge-testkit-token-'));
  try {
    const { keyPem, certPem } = await certificateIn(dir);
    const key = await importPKCS8(keyPem, 'RS256');
    const header =
      opts.keyHeader === 'x5c'
        ? { alg: 'RS256', typ: 'JWT', x5c: [new X509Certificate(certPem).raw.toString('base64')] }
        : { alg: 'RS256', typ: 'JWT', kid: libtrustKeyId(certPem) };
    let ttlSeconds = opts.ttlSeconds;
    let issued = 0;

    const issue = async (
      reply: FastifyReply,
      credentials: { username: string; password: string } | null,
      scopes: TokenScope[],
    ) => {
      const decision = await opts.authorize({
        username: credentials?.username,
        password: credentials?.password,
        scopes,
      });
      if (!decision.ok) return unauthorized(reply, 'invalid username or password');
      const access = intersectScopes(scopes, decision.access);
      const now = Math.floor(Date.now() / 1000);
      const token = await new SignJWT({ access })
        .setProtectedHeader(header)
        .setIssuer(opts.issuer)
        .setSubject(decision.subject)
        .setAudience(opts.service)
        .setIssuedAt(now)
        .setNotBefore(now - NOT_BEFORE_SKEW_SECONDS)
        .setExpirationTime(now + ttlSeconds)
        .setJti(randomUUID())
        .sign(key);
      issued++;
      return {
        token,
        access_token: token,
        expires_in: ttlSeconds,
        issued_at: new Date(now * 1000).toISOString(),
      };
    };

    const checkService = (reply: FastifyReply, service: string | undefined) => {
      if (service === undefined || service === opts.service) return true;
      void reply.code(400).send({
        errors: [
          {
            code: 'INVALID_REQUEST',
            message: `unknown service ${service}; this token server issues for ${opts.service}`,
          },
        ],
      });
      return false;
    };

    const app = Fastify({ logger: false });
    app.addContentTypeParser(
      'application/x-www-form-urlencoded',
      { parseAs: 'string' },
      (_req, body, done) => done(null, Object.fromEntries(new URLSearchParams(String(body)))),
    );
    app.get('/token', async (req: FastifyRequest, reply) => {
      const query = tokenQuerySchema.safeParse(req.query);
      if (!query.success) return reply.code(400).send({ errors: [{ code: 'INVALID_REQUEST' }] });
      if (!checkService(reply, query.data.service)) return reply;
      const authorization = req.headers.authorization;
      const credentials = parseBasic(authorization);
      if (authorization !== undefined && credentials === null) {
        return unauthorized(reply, 'Authorization must be Basic credentials');
      }
      return issue(reply, credentials, scopesFrom(query.data.scope));
    });
    app.post('/token', async (req: FastifyRequest, reply) => {
      const form = tokenFormSchema.safeParse(req.body);
      if (!form.success || form.data.grant_type !== 'password') {
        return reply.code(400).send({
          errors: [
            {
              code: 'UNSUPPORTED_GRANT_TYPE',
              message: 'invalid token request: the form must contain grant_type=password',
            },
          ],
        });
      }
      if (!checkService(reply, form.data.service)) return reply;
      const { username, password } = form.data;
      const credentials = username !== undefined ? { username, password: password ?? '' } : null;
      return issue(reply, credentials, scopesFrom(form.data.scope));
    });
    await app.listen({ host: '127.0.0.1', port: 0 });
    const address = app.server.address();
    if (address === null || typeof address === 'string') {
      throw new TestkitError('TOKEN_SERVER_FAILED', 'token server has no TCP address');
    }
    const url = `http://127.0.0.1:${address.port}`;
    return {
      url,
      realm: `${url}/token`,
      issuer: opts.issuer,
      service: opts.service,
      certPath: join(dir, 'cert.pem'),
      get issued() {
        return issued;
      },
      setTtlSeconds(seconds: number) {
        if (!Number.isInteger(seconds)) {
          throw new TestkitError(
            'INVALID_OPTIONS',
            `setTtlSeconds: ${seconds} is invalid; give a whole number of seconds`,
          );
        }
        ttlSeconds = seconds;
      },
      stop: async () => {
        await app.close();
        await rm(dir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
}
