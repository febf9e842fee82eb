import { rootCertificates } from 'node:tls';
import type { Dispatcher } from 'undici';
import { z } from 'zod';
import { digestOf, isDigest, parseDigest, type Digest } from '../digest.js';
import { OciError, redactUrl } from '../errors.js';
import { nextLink } from '../headers.js';
import { DEFAULT_MANIFEST_MAX_BYTES, parseManifest, type Descriptor } from '../manifest.js';
import { essenceOf, isManifestMediaType, MANIFEST_ACCEPT, MediaType } from '../media-types.js';
import { registryEndpointHost } from '../reference.js';
import { repositoryScope, type Scope } from '../scope.js';
import { AuthManager, type TokenFetcher } from './auth.js';
import { Agent, request as undiciRequest } from './undici-core.js';
import { discardBody, readCapped } from './body.js';
import {
  DEFAULT_PAGE_SIZE,
  DEFAULT_RETRY_POLICY,
  DEFAULT_TIMEOUTS,
  DEFAULT_UPLOAD_CHUNK_BYTES,
  LISTING_MAX_BYTES,
  MAX_PAGES,
  TOKEN_RESPONSE_MAX_BYTES,
  USER_AGENT,
  type RetryPolicy,
  type Timeouts,
} from './defaults.js';
import { downloadBlob, getBlob, type BlobAccess } from './download.js';
import { headerValue, networkError, Requester, type HttpResponse } from './http.js';
import { readBodyPrefix } from './response-errors.js';
import { systemClock, type Clock } from './retry.js';
import type {
  BlobHead,
  DownloadBlobOptions,
  FetchedManifest,
  GetBlobOptions,
  ManifestHead,
  MountResult,
  PingResult,
  ReferrersResult,
  RegistryClientOptions,
  RepositoryRef,
  StreamedUpload,
  UploadBlobOptions,
  UploadSource,
  UploadStrategy,
} from './types.js';
import { StreamedBlobUpload } from './streamed-upload.js';
import { mountBlob, uploadBlob, type UploadAccess } from './upload.js';
import type { Readable } from 'node:stream';

const tagsPageSchema = z.object({
  name: z.string().optional(),
  tags: z.array(z.string()).nullable().optional(),
});
const catalogPageSchema = z.object({
  repositories: z.array(z.string()).nullable().optional(),
});

function pullScopes(repo: RepositoryRef): Scope[] {
  return [repositoryScope(repo.repository, ['pull'])];
}

function validDigestHeader(response: HttpResponse): Digest | undefined {
  const value = headerValue(response.headers, 'docker-content-digest')?.trim();
  return value !== undefined && isDigest(value) ? value : undefined;
}

function contentLength(response: HttpResponse): number | undefined {
  const value = headerValue(response.headers, 'content-length');
  if (value === undefined || !/^\d+$/.test(value)) return undefined;
  return Number(value);
}

/** Returns the referrers fallback tag of a digest: `<algorithm>-<hex>`, hex cut to 64 characters. */
export function referrersTag(digest: Digest): string {
  const { algorithm, hex } = parseDigest(digest);
  return `${algorithm}-${hex.slice(0, 64)}`;
}

/**
 * Client for the OCI distribution API of any number of registries. Methods are named after
 * the protocol steps; each takes the repository (`{ registry, repository }`, which a parsed
 * `Reference` satisfies) and raises `OciError` on failure.
 */
export class RegistryClient {
  private readonly requester: Requester;
  private readonly auth: AuthManager;
  private readonly dispatcher: Dispatcher;
  private readonly ownsDispatcher: boolean;
  private readonly timeouts: Timeouts;
  private readonly retry: RetryPolicy;
  private readonly random: () => number;
  private readonly manifestMaxBytes: number;
  private readonly strategies = new Map<string, UploadStrategy>();
  private readonly blobAccess: BlobAccess;
  private readonly uploadAccess: UploadAccess;

  constructor(private readonly options: RegistryClientOptions = {}) {
    this.timeouts = { ...DEFAULT_TIMEOUTS, ...options.timeouts };
    this.retry = { ...DEFAULT_RETRY_POLICY, ...options.retry };
    this.random = options.random ?? Math.random;
    this.manifestMaxBytes = options.manifestMaxBytes ?? DEFAULT_MANIFEST_MAX_BYTES;
    const clock: Clock = options.clock ?? systemClock;
    if (options.dispatcher !== undefined) {
      this.dispatcher = options.dispatcher;
      this.ownsDispatcher = false;
    } else {
      const extraCa =
        options.ca === undefined ? [] : Array.isArray(options.ca) ? options.ca : [options.ca];
      this.dispatcher = new Agent({
        connect: {
          timeout: this.timeouts.connectMs,
          rejectUnauthorized: options.insecure !== true,
          // A given CA bundle adds to Node's default roots instead of replacing them.
          ...(extraCa.length > 0
            ? { ca: [...rootCertificates, ...(extraCa as (string | Buffer)[])] }
            : {}),
        },
        headersTimeout: this.timeouts.headersMs,
        bodyTimeout: this.timeouts.bodyIdleMs,
      });
      this.ownsDispatcher = true;
    }
    this.auth = new AuthManager(options.credentials, this.fetchToken, clock);
    this.requester = new Requester({
      dispatcher: this.dispatcher,
      timeouts: this.timeouts,
      retry: this.retry,
      clock,
      random: this.random,
      auth: this.auth,
      userAgent: options.userAgent ?? USER_AGENT,
    });
    const host = (repo: RepositoryRef) => repo.registry;
    this.blobAccess = {
      requester: this.requester,
      retry: this.retry,
      random: this.random,
      host,
      blobUrl: (repo, digest) => this.repositoryUrl(repo, `blobs/${digest}`),
      headBlob: (repo, digest) => this.headBlob(repo, digest),
    };
    this.uploadAccess = {
      requester: this.requester,
      retry: this.retry,
      random: this.random,
      chunkBytes: options.uploadChunkBytes ?? DEFAULT_UPLOAD_CHUNK_BYTES,
      host,
      repositoryUrl: (repo, path) => this.repositoryUrl(repo, path),
      strategyFor: (name) => this.uploadStrategy(name),
      setStrategy: (name, strategy) => this.strategies.set(name, strategy),
    };
  }

  /** Closes the connection pool this client created; a given dispatcher is left open. */
  async close(): Promise<void> {
    if (this.ownsDispatcher) await this.dispatcher.close();
  }

  /** Returns the upload strategy currently used for a registry host. */
  uploadStrategy(host: string): UploadStrategy {
    const known = this.strategies.get(host);
    if (known !== undefined) return known;
    const option = this.options.uploadStrategy;
    if (option === undefined) return 'monolithic';
    return typeof option === 'string' ? option : (option[host] ?? 'monolithic');
  }

  /** Drops cached tokens, e.g. after the credentials behind a callback changed. */
  clearTokens(): void {
    this.auth.clearTokens();
  }

  /** Returns the base URL of a registry's API, e.g. `https://ghcr.io/v2/`. */
  baseUrl(registry: string): URL {
    const plain = this.options.plainHttp;
    const http = plain === true || (Array.isArray(plain) && plain.includes(registry));
    return new URL(`${http ? 'http' : 'https'}://${registryEndpointHost(registry)}/v2/`);
  }

  private repositoryUrl(repo: RepositoryRef, path: string): URL {
    return new URL(`${repo.repository}/${path}`, this.baseUrl(repo.registry));
  }

  private readonly fetchToken: TokenFetcher = async (url, authorization) => {
    const headers: Record<string, string> = {
      'user-agent': this.options.userAgent ?? USER_AGENT,
      'accept-encoding': 'identity',
    };
    if (authorization !== undefined) headers.authorization = authorization;
    try {
      const response = await undiciRequest(url, {
        dispatcher: this.dispatcher,
        method: 'GET',
        headers,
        headersTimeout: this.timeouts.headersMs,
        bodyTimeout: this.timeouts.bodyIdleMs,
      });
      if (response.statusCode !== 200) {
        return { status: response.statusCode, body: await readBodyPrefix(response.body) };
      }
      const bytes = await readCapped(
        response.body,
        TOKEN_RESPONSE_MAX_BYTES,
        (received) =>
          new OciError(
            'AUTH_FAILED',
            `Token response from ${redactUrl(url)} exceeds ${TOKEN_RESPONSE_MAX_BYTES} bytes (${received} received); check the token server.`,
          ),
      );
      return { status: 200, body: bytes.toString('utf8') };
    } catch (error) {
      throw networkError(error, 'GET', url, this.timeouts);
    }
  };

  /**
   * Checks that the registry implements the v2 API and that the configured credentials are
   * accepted (GET /v2/ with authentication). Raises `UNAUTHORIZED` for bad credentials.
   */
  async ping(registry: string, signal?: AbortSignal): Promise<PingResult> {
    const response = await this.requester.request({
      method: 'GET',
      host: registry,
      url: this.baseUrl(registry),
      scopes: [],
      expect: [200],
      ...(signal !== undefined ? { signal } : {}),
    });
    discardBody(response.body);
    const result: PingResult = {};
    const apiVersion = headerValue(response.headers, 'docker-distribution-api-version');
    if (apiVersion !== undefined) result.apiVersion = apiVersion;
    const scheme = (await this.auth.authorization(registry, []))?.split(' ')[0]?.toLowerCase();
    if (scheme !== undefined) result.authScheme = scheme;
    return result;
  }

  /** HEAD of a manifest; undefined when the registry does not have it. */
  async headManifest(
    repo: RepositoryRef,
    reference: string,
    signal?: AbortSignal,
  ): Promise<ManifestHead | undefined> {
    const response = await this.requester.request({
      method: 'HEAD',
      host: repo.registry,
      url: this.repositoryUrl(repo, `manifests/${reference}`),
      scopes: pullScopes(repo),
      headers: { accept: MANIFEST_ACCEPT },
      expect: [200, 404],
      followRedirects: true,
      notFoundCode: 'MANIFEST_UNKNOWN',
      ...(signal !== undefined ? { signal } : {}),
    });
    discardBody(response.body);
    if (response.status === 404) return undefined;
    const head: ManifestHead = {};
    const digest = validDigestHeader(response);
    if (digest !== undefined) head.digest = digest;
    const type = headerValue(response.headers, 'content-type');
    if (type !== undefined) head.mediaType = essenceOf(type);
    const size = contentLength(response);
    if (size !== undefined) head.size = size;
    return head;
  }

  /**
   * Fetches a manifest as exact bytes, at most `maxBytes`. When `reference` is a digest, the
   * bytes must hash to it. Otherwise the digest is `Docker-Content-Digest` (checked against the
   * bytes), or the sha256 of the bytes when that header is missing.
   */
  async getManifest(
    repo: RepositoryRef,
    reference: string,
    options: { maxBytes?: number; signal?: AbortSignal } = {},
  ): Promise<FetchedManifest> {
    const maxBytes = options.maxBytes ?? this.manifestMaxBytes;
    const response = await this.requester.request({
      method: 'GET',
      host: repo.registry,
      url: this.repositoryUrl(repo, `manifests/${reference}`),
      scopes: pullScopes(repo),
      headers: { accept: MANIFEST_ACCEPT },
      expect: [200],
      followRedirects: true,
      notFoundCode: 'MANIFEST_UNKNOWN',
      ...(options.signal !== undefined ? { signal: options.signal } : {}),
    });
    const tooLarge = (received: number) =>
      new OciError(
        'MANIFEST_TOO_LARGE',
        `Manifest ${reference} in ${repo.registry}/${repo.repository} is larger than the ${maxBytes}-byte limit (${received} bytes); raise the manifest size limit if it is legitimate.`,
        { status: response.status, method: 'GET', url: response.url.toString() },
      );
    const declared = contentLength(response);
    if (declared !== undefined && declared > maxBytes) {
      discardBody(response.body);
      throw tooLarge(declared);
    }
    let bytes: Buffer;
    try {
      bytes = await readCapped(response.body, maxBytes, tooLarge);
    } catch (error) {
      throw networkError(error, 'GET', response.url, this.timeouts);
    }

    const headerDigest = validDigestHeader(response);
    const expected = isDigest(reference) ? reference : headerDigest;
    const algorithm = expected === undefined ? 'sha256' : parseDigest(expected).algorithm;
    const actual = digestOf(bytes, algorithm);
    if (expected !== undefined && actual !== expected) {
      throw new OciError(
        'DIGEST_MISMATCH',
        `Manifest ${reference} from ${repo.registry}/${repo.repository} hashes to ${actual}, not ${expected}; the registry or a proxy altered it.`,
        { status: response.status, method: 'GET', url: response.url.toString() },
      );
    }
    const contentType = headerValue(response.headers, 'content-type');
    const manifest = parseManifest(bytes, contentType, { maxBytes });
    const essence = contentType === undefined ? '' : essenceOf(contentType);
    return {
      bytes,
      digest: actual,
      mediaType: isManifestMediaType(essence) ? essence : manifest.mediaType,
      size: bytes.length,
      manifest,
    };
  }

  /**
   * Uploads manifest bytes under a tag or digest, always with `Content-Type`, and returns
   * the digest of the bytes (checked against the registry's `Docker-Content-Digest`).
   */
  async putManifest(
    repo: RepositoryRef,
    reference: string,
    bytes: Buffer,
    mediaType: string,
    signal?: AbortSignal,
  ): Promise<{ digest: Digest; subject?: Digest }> {
    const algorithm = isDigest(reference) ? parseDigest(reference).algorithm : 'sha256';
    const digest = digestOf(bytes, algorithm);
    if (isDigest(reference) && reference !== digest) {
      throw new TypeError(
        `putManifest: the bytes hash to ${digest}, not to the reference ${reference}.`,
      );
    }
    const response = await this.requester.request({
      method: 'PUT',
      host: repo.registry,
      url: this.repositoryUrl(repo, `manifests/${reference}`),
      scopes: [repositoryScope(repo.repository, ['pull', 'push'])],
      headers: { 'content-type': mediaType, 'content-length': String(bytes.length) },
      body: bytes,
      expect: [200, 201, 202],
      // The same bytes under the same reference give the same result, so a retry is safe.
      idempotent: true,
      ...(signal !== undefined ? { signal } : {}),
    });
    discardBody(response.body);
    const returned = validDigestHeader(response);
    if (returned !== undefined && returned !== digest) {
      throw new OciError(
        'DIGEST_MISMATCH',
        `Registry stored manifest ${reference} in ${repo.registry}/${repo.repository} as ${returned}, not ${digest}; it rewrote the bytes, so digests will not match the source.`,
        { status: response.status, method: 'PUT', url: response.url.toString() },
      );
    }
    const subject = headerValue(response.headers, 'oci-subject');
    return subject !== undefined && isDigest(subject) ? { digest, subject } : { digest };
  }

  /**
   * Deletes a manifest by digest (which on docker-registry 2.8 also removes every tag that
   * points to it) or by tag where the registry supports that.
   */
  async deleteManifest(
    repo: RepositoryRef,
    reference: string,
    signal?: AbortSignal,
  ): Promise<void> {
    try {
      const response = await this.requester.request({
        method: 'DELETE',
        host: repo.registry,
        url: this.repositoryUrl(repo, `manifests/${reference}`),
        scopes: [repositoryScope(repo.repository, ['delete'])],
        expect: [200, 202, 204],
        notFoundCode: 'MANIFEST_UNKNOWN',
        ...(signal !== undefined ? { signal } : {}),
      });
      discardBody(response.body);
    } catch (error) {
      if (!(error instanceof OciError) || isDigest(reference)) throw error;
      const tagRejected =
        error.code === 'DIGEST_INVALID' || error.status === 405 || error.code === 'UNSUPPORTED';
      if (!tagRejected) throw error;
      throw new OciError(
        'UNSUPPORTED',
        `Registry ${repo.registry} does not delete tags (tag ${reference} in ${repo.repository}); delete the manifest by digest instead, which removes all of its tags.`,
        {
          ...(error.status !== undefined ? { status: error.status } : {}),
          method: 'DELETE',
          ...(error.url !== undefined ? { url: error.url } : {}),
          cause: error,
        },
      );
    }
  }

  /** HEAD of a blob, following redirects; undefined when the repository does not have it. */
  async headBlob(
    repo: RepositoryRef,
    digest: Digest,
    signal?: AbortSignal,
  ): Promise<BlobHead | undefined> {
    parseDigest(digest);
    const response = await this.requester.request({
      method: 'HEAD',
      host: repo.registry,
      url: this.repositoryUrl(repo, `blobs/${digest}`),
      scopes: pullScopes(repo),
      expect: [200, 404],
      followRedirects: true,
      notFoundCode: 'BLOB_UNKNOWN',
      ...(signal !== undefined ? { signal } : {}),
    });
    discardBody(response.body);
    if (response.status === 404) return undefined;
    const size = contentLength(response);
    if (size === undefined) {
      throw new OciError(
        'INVALID_RESPONSE',
        `HEAD of blob ${digest} in ${repo.registry}/${repo.repository} returned no Content-Length; the registry does not follow the distribution spec.`,
        {
          status: response.status,
          method: 'HEAD',
          url: response.url.toString(),
        },
      );
    }
    const head: BlobHead = { size };
    const header = validDigestHeader(response);
    if (header !== undefined) head.digest = header;
    return head;
  }

  /** Streams a blob; the stream fails with `DIGEST_MISMATCH` if the bytes do not hash to `digest`. */
  getBlob(repo: RepositoryRef, digest: Digest, options: GetBlobOptions = {}): Readable {
    return getBlob(this.blobAccess, repo, digest, options);
  }

  /**
   * Downloads a blob into `<partialDirectory>/<algorithm>-<hex>.partial`, resuming from its
   * length (also in a later process), verifies it and renames it to the returned final path.
   */
  downloadBlob(repo: RepositoryRef, digest: Digest, options: DownloadBlobOptions): Promise<string> {
    parseDigest(digest);
    return downloadBlob(this.blobAccess, repo, digest, options);
  }

  /** Mounts a blob from another repository of the same registry; falls back when refused. */
  mountBlob(
    repo: RepositoryRef,
    digest: Digest,
    fromRepository: string,
    signal?: AbortSignal,
  ): Promise<MountResult> {
    parseDigest(digest);
    return mountBlob(this.uploadAccess, repo, digest, fromRepository, signal);
  }

  /** Uploads a blob from a file or a reopenable stream, monolithic or chunked per registry. */
  uploadBlob(
    repo: RepositoryRef,
    digest: Digest,
    source: UploadSource,
    options: UploadBlobOptions = {},
  ): Promise<void> {
    parseDigest(digest);
    return uploadBlob(this.uploadAccess, repo, digest, source, options);
  }

  /**
   * Opens an upload that a download feeds as its `sink`: the bytes stream into one session and
   * become the blob only after the downloader verified them (see `StreamedBlobUpload`).
   */
  openStreamedUpload(repo: RepositoryRef, digest: Digest, signal?: AbortSignal): StreamedUpload {
    parseDigest(digest);
    return new StreamedBlobUpload(this.uploadAccess, repo, digest, signal);
  }

  /** Lists all tags of a repository in the registry's order, following `Link` pages. */
  async listTags(
    repo: RepositoryRef,
    options: { pageSize?: number; signal?: AbortSignal } = {},
  ): Promise<string[]> {
    const first = this.repositoryUrl(repo, 'tags/list');
    first.searchParams.set('n', String(options.pageSize ?? DEFAULT_PAGE_SIZE));
    const tags: string[] = [];
    await this.paginate(
      repo.registry,
      first,
      pullScopes(repo),
      'NAME_UNKNOWN',
      options.signal,
      (value) => {
        tags.push(...(tagsPageSchema.parse(value).tags ?? []));
      },
    );
    return tags;
  }

  /** Lists all repositories of a registry (`/v2/_catalog`), following `Link` pages. */
  async catalog(
    registry: string,
    options: { pageSize?: number; signal?: AbortSignal } = {},
  ): Promise<string[]> {
    const first = new URL('_catalog', this.baseUrl(registry));
    first.searchParams.set('n', String(options.pageSize ?? DEFAULT_PAGE_SIZE));
    const repositories: string[] = [];
    await this.paginate(
      registry,
      first,
      [{ type: 'registry', name: 'catalog', actions: ['*'] }],
      'NOT_FOUND',
      options.signal,
      (value) => {
        repositories.push(...(catalogPageSchema.parse(value).repositories ?? []));
      },
    );
    return repositories;
  }

  private async paginate(
    host: string,
    first: URL,
    scopes: Scope[],
    notFoundCode: 'NAME_UNKNOWN' | 'NOT_FOUND',
    signal: AbortSignal | undefined,
    onPage: (value: unknown) => void,
  ): Promise<void> {
    const seen = new Set<string>();
    let url: URL | undefined = first;
    while (url !== undefined) {
      if (seen.has(url.toString()) || seen.size >= MAX_PAGES) {
        throw new OciError(
          'PAGINATION_LOOP',
          `Listing ${redactUrl(first)} returned a next page that was already visited (${redactUrl(url)}) or more than ${MAX_PAGES} pages; the registry's pagination is broken.`,
          { method: 'GET', url: url.toString() },
        );
      }
      seen.add(url.toString());
      const response = await this.requester.request({
        method: 'GET',
        host,
        url,
        scopes,
        expect: [200],
        notFoundCode,
        ...(signal !== undefined ? { signal } : {}),
      });
      const current: URL = url;
      const bytes = await readCapped(
        response.body,
        LISTING_MAX_BYTES,
        (received) =>
          new OciError(
            'INVALID_RESPONSE',
            `Listing page ${redactUrl(current)} exceeds ${LISTING_MAX_BYTES} bytes (${received} received); request smaller pages.`,
          ),
      ).catch((error: unknown) => {
        throw networkError(error, 'GET', current, this.timeouts);
      });
      let value: unknown;
      try {
        value = JSON.parse(bytes.toString('utf8'));
        onPage(value);
      } catch (error) {
        throw new OciError(
          'INVALID_RESPONSE',
          `Listing page ${redactUrl(current)} is not the expected JSON; the registry does not follow the distribution spec.`,
          { status: 200, method: 'GET', url: current.toString(), cause: error },
        );
      }
      const next = nextLink(response.headers.link);
      // The next link is used exactly as given, resolved against the page that sent it.
      url = next === undefined ? undefined : new URL(next, current);
    }
  }

  /**
   * Lists the manifests that refer to `digest` through `subject`, from the referrers API or,
   * when that returns 404, from the `<algorithm>-<hex>` tag. Only an OCI index with the OCI
   * index content type counts as a referrers list.
   */
  async referrers(
    repo: RepositoryRef,
    digest: Digest,
    options: { artifactType?: string; signal?: AbortSignal } = {},
  ): Promise<ReferrersResult> {
    parseDigest(digest);
    const url = this.repositoryUrl(repo, `referrers/${digest}`);
    if (options.artifactType !== undefined)
      url.searchParams.set('artifactType', options.artifactType);
    const response = await this.requester.request({
      method: 'GET',
      host: repo.registry,
      url,
      scopes: pullScopes(repo),
      headers: { accept: MediaType.OciIndex },
      expect: [200, 404],
      ...(options.signal !== undefined ? { signal: options.signal } : {}),
    });
    const filter = (descriptors: Descriptor[], applied: boolean) =>
      options.artifactType === undefined || applied
        ? descriptors
        : descriptors.filter((item) => item.artifactType === options.artifactType);

    const fromApi = await this.indexBody(response);
    if (fromApi !== undefined) {
      const applied = (headerValue(response.headers, 'oci-filters-applied') ?? '')
        .split(',')
        .map((item) => item.trim())
        .includes('artifactType');
      return { descriptors: filter(fromApi, applied), source: 'api' };
    }

    // docker-registry 2.8 has no referrers API and returns a plain-text 404.
    const tag = referrersTag(digest);
    let fetched: FetchedManifest;
    try {
      fetched = await this.getManifest(
        repo,
        tag,
        options.signal !== undefined ? { signal: options.signal } : {},
      );
    } catch (error) {
      if (
        error instanceof OciError &&
        (error.code === 'MANIFEST_UNKNOWN' ||
          error.code === 'NAME_UNKNOWN' ||
          error.code === 'INVALID_MANIFEST' ||
          error.code === 'UNSUPPORTED_MEDIA_TYPE')
      ) {
        return { descriptors: [], source: 'tag' };
      }
      throw error;
    }
    if (fetched.mediaType !== MediaType.OciIndex || fetched.manifest.kind !== 'index')
      return { descriptors: [], source: 'tag' };
    return { descriptors: filter(fetched.manifest.manifests, false), source: 'tag' };
  }

  /** Returns the descriptors of a referrers API response, or undefined when it is not an OCI index. */
  private async indexBody(response: HttpResponse): Promise<Descriptor[] | undefined> {
    const type = headerValue(response.headers, 'content-type');
    if (response.status !== 200 || type === undefined || essenceOf(type) !== MediaType.OciIndex) {
      discardBody(response.body);
      return undefined;
    }
    let bytes: Buffer;
    try {
      bytes = await readCapped(
        response.body,
        this.manifestMaxBytes,
        () =>
          new OciError(
            'MANIFEST_TOO_LARGE',
            'Referrers API response exceeds the manifest size limit; raise manifestMaxBytes if the registry really lists that many referrers.',
          ),
      );
    } catch (error) {
      throw networkError(error, 'GET', response.url, this.timeouts);
    }
    try {
      const parsed = parseManifest(bytes, MediaType.OciIndex, { maxBytes: this.manifestMaxBytes });
      return parsed.kind === 'index' ? parsed.manifests : undefined;
    } catch {
      return undefined;
    }
  }
}
