import { constants as fsConstants } from 'node:fs';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, open, rename, rm, stat, type FileHandle } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createBrotliDecompress, createGunzip, createInflate } from 'node:zlib';
import { createDigester, parseDigest, type Digest, type Digester } from '../digest.js';
import { discardBody } from './body.js';
import { OciError, redactUrl } from '../errors.js';
import { repositoryScope } from '../scope.js';
import { backoffDelayMs } from './retry.js';
import { MAX_STALLED_RESUMES, type RetryPolicy } from './defaults.js';
import { headerValue, networkError, type HttpResponse, type Requester } from './http.js';
import { isRetryableError } from './retry.js';
import type {
  BlobHead,
  BlobSink,
  DownloadBlobOptions,
  GetBlobOptions,
  RepositoryRef,
  TransferHooks,
} from './types.js';

/** Client services that the download code uses. */
export interface BlobAccess {
  requester: Requester;
  retry: RetryPolicy;
  random: () => number;
  host(repo: RepositoryRef): string;
  blobUrl(repo: RepositoryRef, digest: Digest): URL;
  headBlob(repo: RepositoryRef, digest: Digest): Promise<BlobHead | undefined>;
}

/** One response positioned in the blob: its body starts at byte `start`. */
type Segment =
  | { kind: 'body'; response: HttpResponse; start: number; encoding: string | undefined }
  | { kind: 'range-not-satisfiable' };

const CONTENT_RANGE = /^bytes (\d+)-(\d+)\/(\d+|\*)$/;

// Transfers of the same final file in this process share one promise, so two callers never
// write the same partial file at once.
const sharedDownloads = new Map<string, Promise<string>>();

function contentEncoding(response: HttpResponse): string | undefined {
  const value = headerValue(response.headers, 'content-encoding')?.trim().toLowerCase();
  return value === undefined || value === '' || value === 'identity' ? undefined : value;
}

async function openSegment(
  access: BlobAccess,
  repo: RepositoryRef,
  digest: Digest,
  offset: number,
  signal: AbortSignal | undefined,
): Promise<Segment> {
  const url = access.blobUrl(repo, digest);
  const response = await access.requester.request({
    method: 'GET',
    host: access.host(repo),
    url,
    scopes: [repositoryScope(repo.repository, ['pull'])],
    headers: offset > 0 ? { range: `bytes=${offset}-` } : {},
    expect: [200, 206, 416],
    followRedirects: true,
    notFoundCode: 'BLOB_UNKNOWN',
    ...(signal !== undefined ? { signal } : {}),
  });
  if (response.status === 416) {
    // docker-registry 2.8 pairs 416 with a false Content-Length and closes the socket.
    discardBody(response.body);
    return { kind: 'range-not-satisfiable' };
  }
  const encoding = contentEncoding(response);
  if (response.status === 200) return { kind: 'body', response, start: 0, encoding };

  const range = headerValue(response.headers, 'content-range') ?? '';
  const match = CONTENT_RANGE.exec(range.trim());
  const start = match === null ? Number.NaN : Number(match[1]);
  if (!Number.isSafeInteger(start) || start > offset) {
    discardBody(response.body);
    throw new OciError(
      'INVALID_RESPONSE',
      `GET ${redactUrl(response.url)} returned 206 for Range bytes=${offset}- with Content-Range ${JSON.stringify(range)}, which does not cover byte ${offset}; the registry or a proxy mangles ranged requests.`,
      { status: 206, method: 'GET', url: response.url.toString() },
    );
  }
  return { kind: 'body', response, start, encoding };
}

async function hashFilePrefix(path: string, length: number, digester: Digester): Promise<void> {
  if (length === 0) return;
  const stream = createReadStream(path, { start: 0, end: length - 1 });
  for await (const chunk of stream as AsyncIterable<Buffer>) digester.update(chunk);
}

async function fileExists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

async function fileMatches(path: string, digest: Digest): Promise<boolean> {
  if (!(await fileExists(path))) return false;
  const digester = createDigester(parseDigest(digest).algorithm);
  for await (const chunk of createReadStream(path) as AsyncIterable<Buffer>) digester.update(chunk);
  return digester.digest() === digest;
}

async function syncDirectory(path: string): Promise<void> {
  const handle = await open(path, fsConstants.O_RDONLY);
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

function decoderFor(coding: string): Transform {
  switch (coding) {
    case 'gzip':
    case 'x-gzip':
      return createGunzip();
    case 'deflate':
      return createInflate();
    case 'br':
      return createBrotliDecompress();
    default:
      throw new OciError(
        'UNSUPPORTED',
        `Content-Encoding "${coding}" cannot be decoded; configure the registry or proxy to send blobs unencoded.`,
      );
  }
}

/** Decodes a file through its content codings and returns the digest of the result. */
async function decodeFile(
  source: string,
  target: string,
  encoding: string,
  digest: Digest,
): Promise<Digest> {
  const codings = encoding
    .split(',')
    .map((item) => item.trim())
    .filter(Boolean)
    .reverse();
  const digester = createDigester(parseDigest(digest).algorithm);
  const hasher = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      digester.update(chunk);
      callback(null, chunk);
    },
  });
  await pipeline([
    createReadStream(source),
    ...codings.map(decoderFor),
    hasher,
    createWriteStream(target),
  ]);
  const written = await open(target, 'r');
  try {
    await written.sync();
  } finally {
    await written.close();
  }
  return digester.digest();
}

/**
 * Feeds a download's bytes to a `BlobSink` next to the partial file. The first failure of the
 * sink aborts it and detaches it, so the download still completes into the file and the caller
 * can place the blob from there.
 */
class SinkFeed {
  #sink: BlobSink | undefined;
  #begun = false;

  constructor(sink: BlobSink | undefined) {
    this.#sink = sink;
  }

  /** Starts a copy and replays the first `length` bytes of the partial file into it. */
  async begin(path: string, length: number): Promise<void> {
    const sink = this.#sink;
    if (sink === undefined) return;
    await this.#guard(async () => {
      await sink.begin();
      this.#begun = true;
      if (length === 0) return;
      const stream = createReadStream(path, { start: 0, end: length - 1 });
      for await (const chunk of stream as AsyncIterable<Buffer>) await sink.write(chunk);
    });
  }

  async write(chunk: Buffer): Promise<void> {
    const sink = this.#sink;
    if (sink === undefined || !this.#begun) return;
    await this.#guard(() => sink.write(chunk));
  }

  /** Starts the copy over after the partial file was truncated to 0 bytes. */
  async restart(path: string): Promise<void> {
    await this.abort();
    await this.begin(path, 0);
  }

  /** Commits the copy of verified bytes; returns false when there is no healthy copy. */
  async commit(): Promise<boolean> {
    const sink = this.#sink;
    if (sink === undefined || !this.#begun) return false;
    this.#begun = false;
    const committed = await this.#guard(async () => {
      await sink.commit();
      return true;
    });
    return committed === true;
  }

  /** Drops the current copy; the sink stays attached for a later `begin`. */
  async abort(): Promise<void> {
    if (this.#sink === undefined || !this.#begun) return;
    this.#begun = false;
    await this.#sink.abort();
  }

  async #guard<T>(step: () => Promise<T>): Promise<T | undefined> {
    try {
      return await step();
    } catch {
      // The download goes on without the sink. A `StreamedUpload` keeps the error for the log.
      const sink = this.#sink;
      this.#sink = undefined;
      this.#begun = false;
      await sink?.abort();
      return undefined;
    }
  }
}

/**
 * Bytes that may wait in memory for the partial file before `append` waits for the disk. The
 * file is written behind the socket, several chunks per `writev`. Writing 200 MiB as 8-chunk
 * `writev` calls took 36-48 ms of system time against 71-92 ms for one `write` per 120 KiB
 * chunk (Node 20, ext4, 2-core VM). A crash loses the queued bytes like the socket buffers,
 * so the limit stays small next to the 4 MiB TCP send buffer seen on loopback.
 */
const WRITE_BEHIND_MAX_BYTES = 512 * 1024;

class PartialFile {
  #queue: Buffer[] = [];
  #queuedBytes = 0;
  /** Bytes already handed to the file system; `length` also counts the queue. */
  #fileLength: number;
  #flushing: Promise<void> | undefined;
  #writeError: Error | undefined;

  private constructor(
    readonly path: string,
    private readonly handle: FileHandle,
    public length: number,
    public digester: Digester,
    private readonly algorithm: 'sha256' | 'sha512',
    private readonly feed: SinkFeed,
  ) {
    this.#fileLength = length;
  }

  static async open(path: string, digest: Digest, feed: SinkFeed): Promise<PartialFile> {
    const algorithm = parseDigest(digest).algorithm;
    const exists = await fileExists(path);
    const handle = await open(path, exists ? 'r+' : 'w+');
    const { size } = await handle.stat();
    const digester = createDigester(algorithm);
    await hashFilePrefix(path, size, digester);
    await feed.begin(path, size);
    return new PartialFile(path, handle, size, digester, algorithm, feed);
  }

  /** Queues a chunk for the file and writes it to the sink at the same time. */
  async append(chunk: Buffer): Promise<void> {
    if (this.#writeError !== undefined) throw this.#writeError;
    this.length += chunk.length;
    this.digester.update(chunk);
    this.#queue.push(chunk);
    this.#queuedBytes += chunk.length;
    if (this.#flushing === undefined) {
      this.#flushing = this.#drain();
      this.#flushing.catch(() => undefined);
    }
    const fileReady = this.#queuedBytes > WRITE_BEHIND_MAX_BYTES ? this.#flushing : undefined;
    await Promise.all([fileReady, this.feed.write(chunk)]);
  }

  /** Writes the queue to the file in batches until it is empty. */
  async #drain(): Promise<void> {
    try {
      while (this.#queue.length > 0) {
        const batch = this.#queue;
        this.#queue = [];
        const bytes = batch.reduce((sum, chunk) => sum + chunk.length, 0);
        await this.#writeAllAt(batch, bytes, this.#fileLength);
        this.#fileLength += bytes;
        this.#queuedBytes -= bytes;
      }
    } catch (error) {
      this.#writeError = error instanceof Error ? error : new Error(String(error));
      throw error;
    } finally {
      this.#flushing = undefined;
    }
  }

  async #writeAllAt(batch: Buffer[], bytes: number, offset: number): Promise<void> {
    const { bytesWritten } = await this.handle.writev(batch, offset);
    if (bytesWritten === bytes) return;
    // A short writev is rare (a full disk, a signal), so the rest is written from one copy.
    const rest = Buffer.concat(batch, bytes).subarray(bytesWritten);
    let written = 0;
    while (written < rest.length) {
      const result = await this.handle.write(
        rest,
        written,
        rest.length - written,
        offset + bytesWritten + written,
      );
      written += result.bytesWritten;
    }
  }

  /** Waits until every appended byte was handed to the file system. */
  async flush(): Promise<void> {
    while (this.#flushing !== undefined) await this.#flushing;
    if (this.#writeError !== undefined) throw this.#writeError;
  }

  async reset(): Promise<void> {
    await this.flush();
    await this.handle.truncate(0);
    this.length = 0;
    this.#fileLength = 0;
    this.digester = createDigester(this.algorithm);
    await this.feed.restart(this.path);
  }

  /** Returns the digest of the bytes appended so far. */
  digest(): Digest {
    return this.digester.digest();
  }

  async sync(): Promise<void> {
    await this.flush();
    await this.handle.sync();
  }

  /** Writes what is queued, so the bytes stay for a resume, and closes the file. */
  async close(): Promise<void> {
    try {
      await this.flush();
    } finally {
      await this.handle.close();
    }
  }
}

async function paceChunk(chunk: Buffer, hooks: TransferHooks): Promise<void> {
  if (hooks.bandwidth !== undefined) await hooks.bandwidth.take(chunk.length);
  hooks.onProgress?.(chunk.length);
}

/**
 * Fills the partial file up to the end of the blob, resuming with Range after every cut.
 * Returns the content coding of the response that delivered the bytes, if any.
 */
async function fillPartial(
  access: BlobAccess,
  repo: RepositoryRef,
  digest: Digest,
  partial: PartialFile,
  options: DownloadBlobOptions,
): Promise<string | undefined> {
  let expectedSize = options.size;
  let stalled = 0;
  let encoding: string | undefined;
  for (;;) {
    if (expectedSize !== undefined && partial.length > expectedSize) await partial.reset();
    if (expectedSize !== undefined && partial.length === expectedSize && encoding === undefined)
      return undefined;

    // Opening a segment already retries with the client's policy, so its errors are final.
    const segment: Segment = await openSegment(
      access,
      repo,
      digest,
      partial.length,
      options.signal,
    );

    if (segment.kind === 'range-not-satisfiable') {
      // Asked for bytes past the end: the file is complete if its length is the blob size.
      expectedSize ??= (await access.headBlob(repo, digest))?.size;
      if (expectedSize !== undefined && partial.length === expectedSize) return undefined;
      await partial.reset();
      if (++stalled >= MAX_STALLED_RESUMES) {
        throw new OciError(
          'INVALID_RESPONSE',
          `Blob ${digest} returns 416 for every ranged request; the registry's size information is inconsistent.`,
        );
      }
      continue;
    }

    const { response } = segment;
    if (segment.encoding !== undefined && partial.length > 0) {
      // Ranges of an encoded representation cannot be joined to raw bytes: start over.
      discardBody(response.body);
      await partial.reset();
      continue;
    }
    encoding = segment.encoding;
    if (segment.start < partial.length) {
      // 200 to a ranged request, or a 206 that starts early: rewrite from where it starts.
      if (segment.start === 0) await partial.reset();
    }
    let skip = partial.length - segment.start;
    const before = partial.length;
    try {
      for await (const raw of response.body as AsyncIterable<Buffer>) {
        await paceChunk(raw, options);
        let chunk = raw;
        if (skip > 0) {
          const dropped = Math.min(skip, chunk.length);
          skip -= dropped;
          chunk = chunk.subarray(dropped);
          if (chunk.length === 0) continue;
        }
        await partial.append(chunk);
        if (encoding === undefined && expectedSize !== undefined && partial.length > expectedSize) {
          throw new OciError(
            'SIZE_MISMATCH',
            `Blob ${digest} from ${redactUrl(response.url)} is longer than its declared ${expectedSize} bytes; fetching it again.`,
          );
        }
      }
      if (encoding !== undefined || expectedSize === undefined || partial.length >= expectedSize) {
        return encoding;
      }
      // A clean end short of the declared size: resume like after a cut.
      stalled = partial.length > before ? 0 : stalled + 1;
      if (stalled >= MAX_STALLED_RESUMES) {
        throw new OciError(
          'SIZE_MISMATCH',
          `Blob ${digest} keeps ending at byte ${partial.length} of its declared ${expectedSize}; the registry serves a truncated blob.`,
        );
      }
    } catch (error) {
      discardBody(response.body);
      const translated = networkError(error, 'GET', response.url, access.requester.timeouts);
      if (translated.code === 'SIZE_MISMATCH' || translated.code === 'ABORTED') throw translated;
      stalled = partial.length > before ? 0 : stalled + 1;
      if (!isRetryableError(translated) || stalled >= MAX_STALLED_RESUMES) throw translated;
      if (stalled > 0) {
        await access.requester.clock.sleep(
          backoffDelayMs(stalled, access.retry, access.random),
          options.signal,
        );
      }
    }
  }
}

function mismatch(digest: Digest, actual: Digest, repo: RepositoryRef): OciError {
  return new OciError(
    'DIGEST_MISMATCH',
    `Blob ${digest} from ${repo.registry}/${repo.repository} hashed to ${actual} after a fresh download; the registry serves corrupt content.`,
  );
}

async function downloadOnce(
  access: BlobAccess,
  repo: RepositoryRef,
  digest: Digest,
  options: DownloadBlobOptions,
  partialPath: string,
  finalPath: string,
): Promise<string> {
  if (await fileMatches(finalPath, digest)) return finalPath;
  await mkdir(options.partialDirectory, { recursive: true });
  await mkdir(dirname(finalPath), { recursive: true });
  const feed = new SinkFeed(options.sink);

  for (let attempt = 1; ; attempt++) {
    const partial = await PartialFile.open(partialPath, digest, feed);
    let encoding: string | undefined;
    let actual: Digest;
    try {
      try {
        encoding = await fillPartial(access, repo, digest, partial, options);
      } catch (error) {
        await feed.abort();
        throw error;
      }
      actual = partial.digest();
      if (actual === digest && encoding === undefined && (await feed.commit())) {
        // The sink stored the blob, so the file is a leftover and is not worth an fsync.
        await partial.close();
        await rename(partialPath, finalPath);
        return finalPath;
      }
      await feed.abort();
      await partial.sync();
    } finally {
      await partial.close().catch(() => undefined);
    }
    if (actual === digest) {
      await rename(partialPath, finalPath);
      await syncDirectory(dirname(finalPath));
      return finalPath;
    }
    if (encoding !== undefined) {
      // Raw bytes do not match but a content coding was applied: try the decoded bytes.
      const decodedPath = `${partialPath}.decoded`;
      const decoded = await decodeFile(partialPath, decodedPath, encoding, digest).catch(
        () => undefined,
      );
      if (decoded === digest) {
        await rename(decodedPath, finalPath);
        await rm(partialPath, { force: true });
        await syncDirectory(dirname(finalPath));
        return finalPath;
      }
      await rm(decodedPath, { force: true });
    }
    await rm(partialPath, { force: true });
    if (attempt >= 2) throw mismatch(digest, actual, repo);
    // A partial file from an earlier run may hold bad bytes: discard it and fetch once more.
  }
}

/** Names of the partial and final files of a digest in a download folder. */
export function downloadPaths(
  digest: Digest,
  options: DownloadBlobOptions,
): { partial: string; final: string } {
  const { algorithm, hex } = parseDigest(digest);
  const partial = join(options.partialDirectory, `${algorithm}-${hex}.partial`);
  return {
    partial,
    final: options.destination ?? join(options.partialDirectory, `${algorithm}-${hex}`),
  };
}

export function downloadBlob(
  access: BlobAccess,
  repo: RepositoryRef,
  digest: Digest,
  options: DownloadBlobOptions,
): Promise<string> {
  const paths = downloadPaths(digest, options);
  const running = sharedDownloads.get(paths.final);
  if (running !== undefined) return running;
  const promise = downloadOnce(access, repo, digest, options, paths.partial, paths.final).finally(
    () => {
      sharedDownloads.delete(paths.final);
    },
  );
  sharedDownloads.set(paths.final, promise);
  return promise;
}

/**
 * Streams a blob, resuming with Range after a cut and failing the stream at the end when
 * the bytes do not hash to `digest`. A response with a content coding is first spooled to a
 * file, because which bytes are the blob (raw or decoded) is only known after hashing them.
 */
async function* blobChunks(
  access: BlobAccess,
  repo: RepositoryRef,
  digest: Digest,
  options: GetBlobOptions,
): AsyncGenerator<Buffer> {
  const digester = createDigester(parseDigest(digest).algorithm);
  let emitted = 0;
  let stalled = 0;
  for (;;) {
    if (options.size !== undefined && emitted === options.size) break;
    // Opening a segment already retries with the client's policy, so its errors are final.
    const segment: Segment = await openSegment(access, repo, digest, emitted, options.signal);
    if (segment.kind === 'range-not-satisfiable') {
      const size = options.size ?? (await access.headBlob(repo, digest))?.size;
      if (size === emitted) break;
      throw new OciError(
        'INVALID_RESPONSE',
        `Blob ${digest} returned 416 at byte ${emitted}, but its size is ${size ?? 'unknown'}; the registry's size information is inconsistent.`,
      );
    }
    const { response } = segment;
    if (segment.encoding !== undefined) {
      discardBody(response.body);
      if (emitted > 0) {
        throw new OciError(
          'INVALID_RESPONSE',
          `Blob ${digest} switched to Content-Encoding ${segment.encoding} while resuming at byte ${emitted}; download it to a file instead.`,
        );
      }
      yield* spooled(access, repo, digest, options);
      return;
    }
    // Bytes before `emitted` were already passed on, so an early start is realigned by skipping.
    let skip = emitted - segment.start;
    const before = emitted;
    try {
      for await (const raw of response.body as AsyncIterable<Buffer>) {
        await paceChunk(raw, options);
        let chunk = raw;
        if (skip > 0) {
          const dropped = Math.min(skip, chunk.length);
          skip -= dropped;
          chunk = chunk.subarray(dropped);
          if (chunk.length === 0) continue;
        }
        digester.update(chunk);
        emitted += chunk.length;
        if (options.size !== undefined && emitted > options.size) {
          throw new OciError(
            'SIZE_MISMATCH',
            `Blob ${digest} is longer than its declared ${options.size} bytes.`,
          );
        }
        yield chunk;
      }
      break;
    } catch (error) {
      discardBody(response.body);
      const translated = networkError(error, 'GET', response.url, access.requester.timeouts);
      if (translated.code === 'SIZE_MISMATCH' || translated.code === 'ABORTED') throw translated;
      stalled = emitted > before ? 0 : stalled + 1;
      if (!isRetryableError(translated) || stalled >= MAX_STALLED_RESUMES) throw translated;
    }
  }
  if (options.size !== undefined && emitted !== options.size) {
    throw new OciError(
      'SIZE_MISMATCH',
      `Blob ${digest} ended after ${emitted} of its declared ${options.size} bytes.`,
    );
  }
  const actual = digester.digest();
  if (actual !== digest) throw mismatch(digest, actual, repo);
}

async function* spooled(
  access: BlobAccess,
  repo: RepositoryRef,
  digest: Digest,
  options: GetBlobOptions,
): AsyncGenerator<Buffer> {
  // A private folder per stream, so concurrent streams of one digest never share a partial file.
  const base = options.spoolDirectory ?? join(tmpdir(), 'edge-oci-spool');
  await mkdir(base, { recursive: true });
  const directory = await mkdtemp(join(base, 'blob-'));
  const downloadOptions: DownloadBlobOptions = { partialDirectory: directory };
  if (options.size !== undefined) downloadOptions.size = options.size;
  if (options.signal !== undefined) downloadOptions.signal = options.signal;
  if (options.bandwidth !== undefined) downloadOptions.bandwidth = options.bandwidth;
  if (options.onProgress !== undefined) downloadOptions.onProgress = options.onProgress;
  try {
    const path = await downloadBlob(access, repo, digest, downloadOptions);
    yield* createReadStream(path) as AsyncIterable<Buffer>;
  } finally {
    await rm(directory, { recursive: true, force: true });
  }
}

export function getBlob(
  access: BlobAccess,
  repo: RepositoryRef,
  digest: Digest,
  options: GetBlobOptions,
): Readable {
  parseDigest(digest);
  return Readable.from(blobChunks(access, repo, digest, options), { objectMode: false });
}
