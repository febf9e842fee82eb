import { OciError, RegistryClient, type RepositoryRef } from '@edge/oci';

/** Retries per upstream call in Ground Control; resolution runs again on the next schedule. */
const RESOLUTION_RETRY = { maxAttempts: 2, deadlineMs: 30_000 };

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

/** A failed upstream call, with a code stored per selection as its resolution error. */
export class UpstreamError extends Error {
  constructor(
    readonly code: UpstreamErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'UpstreamError';
  }
}

/** The distribution calls Ground Control makes: connectivity check and tag resolution. */
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
  close(): Promise<void>;
}

function upstreamCode(error: OciError): UpstreamErrorCode {
  switch (error.code) {
    case 'UNAUTHORIZED':
    case 'AUTH_FAILED':
      return 'UPSTREAM_UNAUTHORIZED';
    case 'DENIED':
      return 'UPSTREAM_DENIED';
    case 'MANIFEST_UNKNOWN':
    case 'NAME_UNKNOWN':
    case 'NOT_FOUND':
      return 'MANIFEST_UNKNOWN';
    case 'NETWORK_ERROR':
    case 'TIMEOUT':
    case 'DEADLINE_EXCEEDED':
      return 'UPSTREAM_UNREACHABLE';
    default:
      return 'UPSTREAM_BAD_RESPONSE';
  }
}

async function translate<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    if (error instanceof OciError) {
      throw new UpstreamError(upstreamCode(error), error.message, { cause: error });
    }
    throw error;
  }
}

/**
 * Upstream client on `RegistryClient` from @edge/oci, one per registry URL, credential and
 * trust setting, so each keeps its own token cache.
 */
export class OciUpstreamClient implements UpstreamClient {
  private readonly clients = new Map<string, RegistryClient>();

  private clientFor(registry: UpstreamRegistry): { client: RegistryClient; host: string } {
    const url = new URL(registry.url);
    const key = JSON.stringify([
      registry.url,
      registry.credential?.username ?? null,
      registry.credential?.password ?? null,
      registry.caBundle,
      registry.insecure,
    ]);
    let client = this.clients.get(key);
    if (client === undefined) {
      const credential = registry.credential;
      client = new RegistryClient({
        ...(credential !== null ? { credentials: () => credential } : {}),
        plainHttp: url.protocol === 'http:',
        ...(registry.caBundle !== null ? { ca: registry.caBundle } : {}),
        insecure: registry.insecure,
        retry: RESOLUTION_RETRY,
      });
      this.clients.set(key, client);
    }
    return { client, host: url.host };
  }

  async close(): Promise<void> {
    await Promise.all([...this.clients.values()].map((client) => client.close()));
    this.clients.clear();
  }

  async ping(registry: UpstreamRegistry): Promise<void> {
    const { client, host } = this.clientFor(registry);
    await translate(() => client.ping(host));
  }

  async headManifest(
    registry: UpstreamRegistry,
    repository: string,
    reference: string,
  ): Promise<ManifestInfo> {
    const { client, host } = this.clientFor(registry);
    const repo: RepositoryRef = { registry: host, repository };
    const head = await translate(() => client.headManifest(repo, reference));
    if (head === undefined) {
      throw new UpstreamError(
        'MANIFEST_UNKNOWN',
        `${repository}:${reference} not found on ${registry.url}; check the repository and tag`,
      );
    }
    if (head.digest !== undefined && head.mediaType !== undefined && head.size !== undefined) {
      return { digest: head.digest, mediaType: head.mediaType, size: head.size };
    }
    // Without Docker-Content-Digest the digest comes from the manifest bytes themselves.
    const manifest = await translate(() => client.getManifest(repo, reference));
    return { digest: manifest.digest, mediaType: manifest.mediaType, size: manifest.size };
  }

  async referrers(
    registry: UpstreamRegistry,
    repository: string,
    digest: string,
  ): Promise<ReferrerInfo[]> {
    const { client, host } = this.clientFor(registry);
    const result = await translate(() => client.referrers({ registry: host, repository }, digest));
    return result.descriptors.map((descriptor) => ({
      digest: descriptor.digest,
      mediaType: descriptor.mediaType,
      size: descriptor.size,
      ...(descriptor.artifactType !== undefined ? { artifactType: descriptor.artifactType } : {}),
    }));
  }
}
