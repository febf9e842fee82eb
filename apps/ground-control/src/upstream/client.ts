import { createHash } from 'node:crypto';
import { Agent, request, type Dispatcher } from 'undici';

// TODO: replace this private client with `RegistryClient` from @edge/oci once it has landed;
// it covers only what tag resolution needs: ping, manifest HEAD/GET and referrers.

/** Per-request timeout toward upstream registries, in milliseconds; resolution runs in jobs. */
const REQUEST_TIMEOUT_MS = 15_000;
/** Largest manifest or error body read, in bytes; OCI manifests are small JSON documents. */
const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;
/** Accept header for manifest requests; docker-registry 2.8 answers 404 to OCI content without it. */
export const MANIFEST_ACCEPT = [
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
  'application/vnd.docker.distribution.manifest.v2+json',
].join(', ');

export interface UpstreamRegistry {
  url: string;
  caBundle: string | null;
  insecure: boolean;
  credential: { username: string; password: string } | null;
}

export interface ManifestInfo {
  digest: string;
  mediaType: string;
  size: number;
}

export interface ReferrerInfo {
  digest: string;
  mediaType: string;
  artifactType?: string;
  size: number;
}

export type UpstreamErrorCode =
  | 'UPSTREAM_UNREACHABLE'
  | 'UPSTREAM_UNAUTHORIZED'
  | 'UPSTREAM_DENIED'
  | 'MANIFEST_UNKNOWN'
  | 'UPSTREAM_BAD_RESPONSE';

export class UpstreamError extends Error {
  constructor(
    readonly code: UpstreamErrorCode,
    message: string,
    readonly status?: number,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'UpstreamError';
  }
}

export interface UpstreamClient {
  ping(registry: UpstreamRegistry): Promise<void>;
  headManifest(
    registry: UpstreamRegistry,
    repository: string,
    reference: string,
  ): Promise<ManifestInfo>;
  referrers(
    registry: UpstreamRegistry,
    repository: string,
    digest: string,
  ): Promise<ReferrerInfo[]>;
}

interface Challenge {
  scheme: string;
  params: Record<string, string>;
}

function parseChallenge(header: string | string[] | undefined): Challenge | undefined {
  const value = Array.isArray(header) ? header[0] : header;
  if (value === undefined) return undefined;
  const match = /^(\w+)\s*(.*)$/.exec(value.trim());
  if (match === null) return undefined;
  const params: Record<string, string> = {};
  for (const part of (match[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)) {
    if (part[1] !== undefined) params[part[1].toLowerCase()] = part[2] ?? '';
  }
  return { scheme: (match[1] ?? '').toLowerCase(), params };
}

function redact(url: string): string {
  const parsed = new URL(url);
  parsed.username = '';
  parsed.password = '';
  parsed.search = '';
  return parsed.toString();
}

/** Distribution API client with Basic and Bearer token auth, one TLS agent per trust setting. */
export class HttpUpstreamClient implements UpstreamClient {
  private readonly agents = new Map<string, Dispatcher>();
  private readonly tokens = new Map<string, { token: string; expiresAt: number }>();

  private agentFor(registry: UpstreamRegistry): Dispatcher {
    const key = `${registry.insecure}:${registry.caBundle ?? ''}`;
    let agent = this.agents.get(key);
    if (agent === undefined) {
      agent = new Agent({
        connect: {
          rejectUnauthorized: !registry.insecure,
          ...(registry.caBundle !== null ? { ca: registry.caBundle } : {}),
        },
      });
      this.agents.set(key, agent);
    }
    return agent;
  }

  async close(): Promise<void> {
    await Promise.all([...this.agents.values()].map((agent) => agent.close()));
    this.agents.clear();
  }

  async ping(registry: UpstreamRegistry): Promise<void> {
    const response = await this.send(registry, 'GET', '/v2/', 'registry:catalog:*', {});
    await response.body.dump();
    if (response.statusCode !== 200) this.fail(response.statusCode, `GET ${registry.url}/v2/`);
  }

  async headManifest(
    registry: UpstreamRegistry,
    repository: string,
    reference: string,
  ): Promise<ManifestInfo> {
    const path = `/v2/${repository}/manifests/${reference}`;
    const scope = `repository:${repository}:pull`;
    const head = await this.send(registry, 'HEAD', path, scope, { accept: MANIFEST_ACCEPT });
    await head.body.dump();
    if (head.statusCode === 200) {
      const digest = head.headers['docker-content-digest'];
      const mediaType = head.headers['content-type'];
      const length = Number(head.headers['content-length']);
      if (typeof digest === 'string' && typeof mediaType === 'string' && Number.isInteger(length)) {
        return { digest, mediaType: mediaType.split(';')[0]!.trim(), size: length };
      }
    } else {
      this.fail(head.statusCode, `HEAD ${redact(registry.url + path)}`);
    }
    // Without a Docker-Content-Digest header the digest has to be computed from the bytes.
    const { bytes, mediaType } = await this.getManifest(registry, repository, reference);
    const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
    return { digest, mediaType, size: bytes.length };
  }

  async referrers(
    registry: UpstreamRegistry,
    repository: string,
    digest: string,
  ): Promise<ReferrerInfo[]> {
    const scope = `repository:${repository}:pull`;
    const apiPath = `/v2/${repository}/referrers/${digest}`;
    const api = await this.send(registry, 'GET', apiPath, scope, {
      accept: 'application/vnd.oci.image.index.v1+json',
    });
    const apiType = String(api.headers['content-type'] ?? '');
    if (api.statusCode === 200 && apiType.startsWith('application/vnd.oci.image.index.v1+json')) {
      return parseIndexDescriptors(await readLimited(api.body));
    }
    await api.body.dump();
    // Registries without the referrers API (docker-registry 2.8 answers a plain-text 404) keep
    // referrers in an index tagged `sha256-<hex>`, the fallback tag schema of OCI distribution 1.1.
    const fallbackTag = digest.replace(':', '-');
    try {
      const { bytes } = await this.getManifest(registry, repository, fallbackTag);
      return parseIndexDescriptors(bytes);
    } catch (error) {
      if (error instanceof UpstreamError && error.code === 'MANIFEST_UNKNOWN') return [];
      throw error;
    }
  }

  private async getManifest(
    registry: UpstreamRegistry,
    repository: string,
    reference: string,
  ): Promise<{ bytes: Buffer; mediaType: string }> {
    const path = `/v2/${repository}/manifests/${reference}`;
    const response = await this.send(registry, 'GET', path, `repository:${repository}:pull`, {
      accept: MANIFEST_ACCEPT,
      'accept-encoding': 'identity',
    });
    if (response.statusCode !== 200) {
      await response.body.dump();
      this.fail(response.statusCode, `GET ${redact(registry.url + path)}`);
    }
    const mediaType = String(response.headers['content-type'] ?? '')
      .split(';')[0]!
      .trim();
    return { bytes: await readLimited(response.body), mediaType };
  }

  private fail(status: number, what: string): never {
    if (status === 401) {
      throw new UpstreamError(
        'UPSTREAM_UNAUTHORIZED',
        `${what} answered 401: check the registry credential`,
        status,
      );
    }
    if (status === 403) {
      throw new UpstreamError(
        'UPSTREAM_DENIED',
        `${what} answered 403: the credential lacks pull access`,
        status,
      );
    }
    if (status === 404) {
      throw new UpstreamError(
        'MANIFEST_UNKNOWN',
        `${what} answered 404: the repository, tag or digest does not exist`,
        status,
      );
    }
    throw new UpstreamError('UPSTREAM_BAD_RESPONSE', `${what} answered ${status}`, status);
  }

  private async send(
    registry: UpstreamRegistry,
    method: 'GET' | 'HEAD',
    path: string,
    scope: string,
    headers: Record<string, string>,
  ): Promise<Dispatcher.ResponseData> {
    const url = new URL(
      path,
      registry.url.endsWith('/') ? registry.url : `${registry.url}/`,
    ).toString();
    const tokenKey = `${registry.url}|${registry.credential?.username ?? ''}|${scope}`;
    const cached = this.tokens.get(tokenKey);
    const first = await this.call(registry, method, url, {
      ...headers,
      ...(cached !== undefined && cached.expiresAt > Date.now()
        ? { authorization: `Bearer ${cached.token}` }
        : {}),
    });
    if (first.statusCode !== 401) return first;
    const challenge = parseChallenge(first.headers['www-authenticate']);
    await first.body.dump();
    if (challenge?.scheme === 'basic' && registry.credential !== null) {
      return this.call(registry, method, url, {
        ...headers,
        authorization: basic(registry.credential),
      });
    }
    if (challenge?.scheme === 'bearer' && challenge.params['realm'] !== undefined) {
      const token = await this.fetchToken(registry, challenge, scope);
      this.tokens.set(tokenKey, token);
      return this.call(registry, method, url, {
        ...headers,
        authorization: `Bearer ${token.token}`,
      });
    }
    this.fail(401, `${method} ${redact(url)}`);
  }

  private async fetchToken(
    registry: UpstreamRegistry,
    challenge: Challenge,
    scope: string,
  ): Promise<{ token: string; expiresAt: number }> {
    const realm = new URL(challenge.params['realm']!);
    if (challenge.params['service'] !== undefined)
      realm.searchParams.set('service', challenge.params['service']);
    realm.searchParams.set('scope', challenge.params['scope'] ?? scope);
    const response = await this.call(registry, 'GET', realm.toString(), {
      ...(registry.credential !== null ? { authorization: basic(registry.credential) } : {}),
    });
    if (response.statusCode !== 200) {
      await response.body.dump();
      this.fail(
        response.statusCode === 401 ? 401 : response.statusCode,
        `token request to ${redact(realm.toString())}`,
      );
    }
    const body = JSON.parse((await readLimited(response.body)).toString('utf8')) as {
      token?: string;
      access_token?: string;
      expires_in?: number;
    };
    const token = body.token ?? body.access_token;
    if (typeof token !== 'string') {
      throw new UpstreamError(
        'UPSTREAM_BAD_RESPONSE',
        `token response from ${redact(realm.toString())} has no token`,
      );
    }
    // Renew 30 s before the server's expiry; 60 s is the distribution spec's default lifetime.
    const lifetimeSeconds = typeof body.expires_in === 'number' ? body.expires_in : 60;
    return { token, expiresAt: Date.now() + Math.max(0, lifetimeSeconds - 30) * 1_000 };
  }

  private async call(
    registry: UpstreamRegistry,
    method: 'GET' | 'HEAD',
    url: string,
    headers: Record<string, string>,
  ): Promise<Dispatcher.ResponseData> {
    try {
      return await request(url, {
        method,
        headers,
        dispatcher: this.agentFor(registry),
        headersTimeout: REQUEST_TIMEOUT_MS,
        bodyTimeout: REQUEST_TIMEOUT_MS,
      });
    } catch (error) {
      throw new UpstreamError(
        'UPSTREAM_UNREACHABLE',
        `${method} ${redact(url)} failed: ${(error as Error).message}; check the URL and that the registry is running`,
        undefined,
        { cause: error },
      );
    }
  }
}

function basic(credential: { username: string; password: string }): string {
  return `Basic ${Buffer.from(`${credential.username}:${credential.password}`).toString('base64')}`;
}

async function readLimited(body: Dispatcher.ResponseData['body']): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of body) {
    const buffer = chunk as Buffer;
    total += buffer.length;
    if (total > MAX_MANIFEST_BYTES) {
      body.destroy();
      throw new UpstreamError(
        'UPSTREAM_BAD_RESPONSE',
        `manifest larger than ${MAX_MANIFEST_BYTES} bytes`,
      );
    }
    chunks.push(buffer);
  }
  return Buffer.concat(chunks);
}

function parseIndexDescriptors(bytes: Buffer): ReferrerInfo[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(bytes.toString('utf8'));
  } catch (error) {
    throw new UpstreamError(
      'UPSTREAM_BAD_RESPONSE',
      'referrers index is not valid JSON',
      undefined,
      { cause: error },
    );
  }
  const manifests = (parsed as { manifests?: unknown }).manifests;
  if (!Array.isArray(manifests)) return [];
  const result: ReferrerInfo[] = [];
  for (const entry of manifests as Record<string, unknown>[]) {
    const { digest, mediaType, size, artifactType } = entry;
    if (typeof digest !== 'string' || typeof mediaType !== 'string' || typeof size !== 'number')
      continue;
    result.push({
      digest,
      mediaType,
      size,
      ...(typeof artifactType === 'string' ? { artifactType } : {}),
    });
  }
  return result;
}
