import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { Readable, Transform } from 'node:stream';
import { parseDigest, type Digest } from '../digest.js';
import { discardBody } from './body.js';
import { OciError, redactUrl } from '../errors.js';
import { repositoryScope, type Scope } from '../scope.js';
import { MAX_UPLOAD_ATTEMPTS, type RetryPolicy } from './defaults.js';
import { headerValue, type HttpResponse, type Requester } from './http.js';
import { backoffDelayMs, isRetryableError } from './retry.js';
import type {
  MountResult,
  RepositoryRef,
  TransferHooks,
  UploadBlobOptions,
  UploadSource,
  UploadStrategy,
} from './types.js';

/** Client services that the upload code uses. */
export interface UploadAccess {
  requester: Requester;
  retry: RetryPolicy;
  random: () => number;
  chunkBytes: number;
  host(repo: RepositoryRef): string;
  repositoryUrl(repo: RepositoryRef, path: string): URL;
  strategyFor(host: string): UploadStrategy;
  setStrategy(host: string, strategy: UploadStrategy): void;
}

// Uploads of one digest to one repository in this process share one transfer.
const sharedUploads = new Map<string, Promise<void>>();

// Statuses after which a monolithic PUT is retried as chunks: the body was too large for the
// registry or a proxy in front of it.
const MONOLITHIC_REJECTED = new Set([413]);
// Statuses after which PATCH is given up for a single PUT: the registry lacks chunked uploads.
const CHUNKED_REJECTED = new Set([405, 501]);

export function pushScopes(repo: RepositoryRef): Scope[] {
  return [repositoryScope(repo.repository, ['pull', 'push'])];
}

/** Adds `digest=` to an upload URL, keeping its existing query exactly as the registry sent it. */
export function withDigestQuery(url: URL, digest: Digest): URL {
  const next = new URL(url);
  const parameter = `digest=${encodeURIComponent(digest)}`;
  next.search =
    next.search === '' || next.search === '?' ? `?${parameter}` : `${next.search}&${parameter}`;
  return next;
}

export function locationOf(response: HttpResponse): URL {
  const location = headerValue(response.headers, 'location');
  if (location === undefined || location === '') {
    throw new OciError(
      'INVALID_RESPONSE',
      `${redactUrl(response.url)} returned ${response.status} without a Location header; the registry does not follow the upload protocol.`,
      { status: response.status, url: response.url.toString() },
    );
  }
  // Registries send absolute or relative Locations; both resolve against the request URL.
  return new URL(location, response.url);
}

function pace(hooks: TransferHooks): Transform {
  return new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      const taken = hooks.bandwidth?.take(chunk.length) ?? Promise.resolve();
      taken.then(
        () => {
          hooks.onProgress?.(chunk.length);
          callback(null, chunk);
        },
        (error: unknown) => callback(error as Error),
      );
    },
  });
}

async function* limit(source: Readable, length: number): AsyncGenerator<Buffer> {
  let remaining = length;
  try {
    for await (const chunk of source as AsyncIterable<Buffer>) {
      if (chunk.length >= remaining) {
        yield chunk.subarray(0, remaining);
        return;
      }
      remaining -= chunk.length;
      yield chunk;
    }
  } finally {
    source.destroy();
  }
  if (remaining > 0) {
    throw new OciError(
      'SIZE_MISMATCH',
      `Upload source ended ${remaining} bytes early; it is shorter than the declared size.`,
    );
  }
}

interface OpenedSource {
  size: number;
  open(offset: number, length: number): Readable;
}

async function openSource(source: UploadSource): Promise<OpenedSource> {
  if ('file' in source) {
    const { size } = await stat(source.file);
    return {
      size,
      open: (offset, length) =>
        length === 0
          ? Readable.from([])
          : createReadStream(source.file, { start: offset, end: offset + length - 1 }),
    };
  }
  return {
    size: source.size,
    open: (offset, length) => Readable.from(limit(source.open(offset), length)),
  };
}

export async function startUpload(
  access: UploadAccess,
  repo: RepositoryRef,
  signal?: AbortSignal,
): Promise<URL> {
  const response = await access.requester.request({
    method: 'POST',
    host: access.host(repo),
    url: access.repositoryUrl(repo, 'blobs/uploads/'),
    scopes: pushScopes(repo),
    headers: { 'content-length': '0' },
    expect: [202],
    idempotent: true,
    notFoundCode: 'NAME_UNKNOWN',
    ...(signal !== undefined ? { signal } : {}),
  });
  discardBody(response.body);
  return locationOf(response);
}

export async function mountBlob(
  access: UploadAccess,
  repo: RepositoryRef,
  digest: Digest,
  from: string,
  signal?: AbortSignal,
): Promise<MountResult> {
  const url = access.repositoryUrl(repo, 'blobs/uploads/');
  url.search = `?mount=${encodeURIComponent(digest)}&from=${encodeURIComponent(from)}`;
  let response: HttpResponse;
  try {
    response = await access.requester.request({
      method: 'POST',
      host: access.host(repo),
      url,
      // A mount needs push on the target and pull on the source repository.
      scopes: [...pushScopes(repo), repositoryScope(from, ['pull'])],
      headers: { 'content-length': '0' },
      expect: [201, 202],
      idempotent: true,
      ...(signal !== undefined ? { signal } : {}),
    });
  } catch (error) {
    // A registry that refuses the mount outright still accepts a normal upload.
    if (
      error instanceof OciError &&
      error.status !== undefined &&
      error.status >= 400 &&
      error.status < 500 &&
      error.status !== 429 &&
      error.status !== 401
    ) {
      return { mounted: false };
    }
    throw error;
  }
  discardBody(response.body);
  if (response.status === 201) return { mounted: true };
  const location = headerValue(response.headers, 'location');
  return location === undefined
    ? { mounted: false }
    : { mounted: false, sessionUrl: new URL(location, response.url).toString() };
}

export function checkCommitted(response: HttpResponse, digest: Digest): void {
  discardBody(response.body);
  const returned = headerValue(response.headers, 'docker-content-digest');
  if (returned !== undefined && returned !== digest) {
    throw new OciError(
      'DIGEST_MISMATCH',
      `Registry stored the upload of ${digest} under ${returned} (${redactUrl(response.url)}); the bytes sent were not the expected blob.`,
      { status: response.status, method: 'PUT', url: response.url.toString() },
    );
  }
}

async function putMonolithic(
  access: UploadAccess,
  repo: RepositoryRef,
  digest: Digest,
  session: URL,
  source: OpenedSource,
  hooks: UploadBlobOptions,
): Promise<void> {
  const response = await access.requester.request({
    method: 'PUT',
    host: access.host(repo),
    url: withDigestQuery(session, digest),
    scopes: pushScopes(repo),
    headers: { 'content-type': 'application/octet-stream', 'content-length': String(source.size) },
    body: () => source.open(0, source.size).pipe(pace(hooks)),
    expect: [201],
    idempotent: false,
    ...(hooks.signal !== undefined ? { signal: hooks.signal } : {}),
  });
  checkCommitted(response, digest);
}

/** Parses the `Range: 0-<end>` header of an upload session; returns bytes received. */
export function receivedBytes(response: HttpResponse): number | undefined {
  const range = headerValue(response.headers, 'range');
  const match = range === undefined ? null : /^(?:bytes=)?0-(\d+)$/.exec(range.trim());
  return match === null ? undefined : Number(match[1]) + 1;
}

/** Position of a chunked upload: the newest session Location and the bytes it has. */
interface ChunkedState {
  location: URL;
  offset: number;
}

/**
 * Asks an upload session how many bytes it has (GET on its Location), so a chunked upload
 * can continue after a failed PATCH. Returns undefined when the session is gone, as it is on
 * docker-registry 2.8 after any cut.
 */
async function sessionOffset(
  access: UploadAccess,
  repo: RepositoryRef,
  state: ChunkedState,
  signal?: AbortSignal,
): Promise<number | undefined> {
  try {
    const response = await access.requester.request({
      method: 'GET',
      host: access.host(repo),
      url: state.location,
      scopes: pushScopes(repo),
      expect: [204],
      ...(signal !== undefined ? { signal } : {}),
    });
    discardBody(response.body);
    const location = headerValue(response.headers, 'location');
    if (location !== undefined) state.location = new URL(location, response.url);
    return (
      receivedBytes(response) ??
      (headerValue(response.headers, 'range') === undefined ? undefined : 0)
    );
  } catch {
    return undefined;
  }
}

async function patchChunks(
  access: UploadAccess,
  repo: RepositoryRef,
  digest: Digest,
  state: ChunkedState,
  source: OpenedSource,
  hooks: UploadBlobOptions,
): Promise<void> {
  while (state.offset < source.size) {
    const start = state.offset;
    const length = Math.min(access.chunkBytes, source.size - start);
    const response = await access.requester.request({
      method: 'PATCH',
      host: access.host(repo),
      url: state.location,
      scopes: pushScopes(repo),
      headers: {
        'content-type': 'application/octet-stream',
        'content-length': String(length),
        'content-range': `${start}-${start + length - 1}`,
      },
      body: () => source.open(start, length).pipe(pace(hooks)),
      expect: [202],
      idempotent: false,
      ...(hooks.signal !== undefined ? { signal: hooks.signal } : {}),
    });
    discardBody(response.body);
    // The session token in the Location changes after every PATCH; only the newest is valid.
    state.location = locationOf(response);
    const received = receivedBytes(response);
    if (received !== undefined && received !== start + length) {
      throw new OciError(
        'BLOB_UPLOAD_INVALID',
        `Upload session of ${digest} reports ${received} bytes after a PATCH that ended at ${start + length}; restarting the upload.`,
        { status: response.status, method: 'PATCH', url: response.url.toString() },
      );
    }
    state.offset = start + length;
  }
  const location = state.location;
  const response = await access.requester.request({
    method: 'PUT',
    host: access.host(repo),
    url: withDigestQuery(location, digest),
    scopes: pushScopes(repo),
    headers: { 'content-length': '0' },
    expect: [201],
    idempotent: false,
    ...(hooks.signal !== undefined ? { signal: hooks.signal } : {}),
  });
  checkCommitted(response, digest);
}

async function uploadOnce(
  access: UploadAccess,
  repo: RepositoryRef,
  digest: Digest,
  source: UploadSource,
  options: UploadBlobOptions,
): Promise<void> {
  parseDigest(digest);
  const host = access.host(repo);
  const opened = await openSource(source);
  let strategy = options.strategy ?? access.strategyFor(host);
  let session: URL | undefined =
    options.sessionUrl === undefined ? undefined : new URL(options.sessionUrl);
  let chunked: ChunkedState | undefined;
  for (let attempt = 1; ; attempt++) {
    try {
      if (strategy === 'monolithic') {
        session ??= await startUpload(access, repo, options.signal);
        await putMonolithic(access, repo, digest, session, opened, options);
      } else {
        chunked ??= {
          location: session ?? (await startUpload(access, repo, options.signal)),
          offset: 0,
        };
        await patchChunks(access, repo, digest, chunked, opened, options);
      }
      return;
    } catch (error) {
      session = undefined;
      if (!(error instanceof OciError) || attempt >= MAX_UPLOAD_ATTEMPTS) throw error;
      if (
        strategy === 'monolithic' &&
        error.status !== undefined &&
        MONOLITHIC_REJECTED.has(error.status)
      ) {
        strategy = 'chunked';
        access.setStrategy(host, strategy);
        continue;
      }
      if (
        strategy === 'chunked' &&
        error.status !== undefined &&
        CHUNKED_REJECTED.has(error.status)
      ) {
        strategy = 'monolithic';
        chunked = undefined;
        access.setStrategy(host, strategy);
        continue;
      }
      const sessionBroken =
        error.code === 'BLOB_UPLOAD_INVALID' || error.code === 'BLOB_UPLOAD_UNKNOWN';
      if (!sessionBroken && !isRetryableError(error)) throw error;
      await access.requester.clock.sleep(
        backoffDelayMs(attempt, access.retry, access.random),
        options.signal,
      );
      if (chunked !== undefined && !sessionBroken) {
        // Continue the same session from what it has, or start the blob over when it is gone.
        const offset = await sessionOffset(access, repo, chunked, options.signal);
        if (offset !== undefined && offset <= opened.size) chunked.offset = offset;
        else chunked = undefined;
      } else {
        chunked = undefined;
      }
    }
  }
}

export function uploadBlob(
  access: UploadAccess,
  repo: RepositoryRef,
  digest: Digest,
  source: UploadSource,
  options: UploadBlobOptions,
): Promise<void> {
  const key = `${access.host(repo)}/${repo.repository}@${digest}`;
  const running = sharedUploads.get(key);
  if (running !== undefined) return running;
  const promise = uploadOnce(access, repo, digest, source, options).finally(() => {
    sharedUploads.delete(key);
  });
  sharedUploads.set(key, promise);
  return promise;
}
