import type { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';
import type { Digest } from '../digest.js';
import type { Descriptor, ParsedManifest } from '../manifest.js';
import type { CredentialsOption } from './auth.js';
import type { RetryPolicy, Timeouts } from './defaults.js';
import type { Clock } from './retry.js';

/** A repository in a registry; a parsed `Reference` satisfies it. */
export interface RepositoryRef {
  /** Registry host with optional port, as in a reference (`docker.io` is mapped to its API host). */
  registry: string;
  repository: string;
}

/** Upload strategy: one streamed PUT, or PATCH chunks followed by a closing PUT. */
export type UploadStrategy = 'monolithic' | 'chunked';

/** Limits the transfer rate of all transfers that share it, e.g. a token bucket. */
export interface BandwidthLimiter {
  /** Resolves when `bytes` may be transferred. */
  take(bytes: number): Promise<void>;
}

export interface RegistryClientOptions {
  credentials?: CredentialsOption;
  /** Hosts reached over plain HTTP (`true` for all), e.g. loopback test registries. */
  plainHttp?: boolean | readonly string[];
  /** PEM CA certificates trusted for TLS in addition to Node's default roots. */
  ca?: string | Buffer | readonly (string | Buffer)[];
  /** Skip TLS certificate verification. */
  insecure?: boolean;
  /** Dispatcher for every request, e.g. an undici `ProxyAgent`; `ca`, `insecure` and the connect timeout are then the dispatcher's business. */
  dispatcher?: Dispatcher;
  timeouts?: Partial<Timeouts>;
  retry?: Partial<RetryPolicy>;
  clock?: Clock;
  /** Random source for backoff jitter, in [0, 1). */
  random?: () => number;
  /** Cap on manifest bodies in bytes; default 4 MiB. */
  manifestMaxBytes?: number;
  userAgent?: string;
  /** Initial upload strategy, for all hosts or per host; default `monolithic`. */
  uploadStrategy?: UploadStrategy | Record<string, UploadStrategy>;
  /** PATCH chunk size in bytes for chunked uploads. */
  uploadChunkBytes?: number;
}

export interface ManifestHead {
  /** From `Docker-Content-Digest`, when the registry sends a valid one. */
  digest?: Digest;
  mediaType?: string;
  size?: number;
}

export interface FetchedManifest {
  /** Exact bytes as received. */
  bytes: Buffer;
  digest: Digest;
  mediaType: string;
  size: number;
  manifest: ParsedManifest;
}

export interface BlobHead {
  size: number;
  digest?: Digest;
}

export interface TransferHooks {
  /** Called with the byte count of each chunk received from or sent to the network. */
  onProgress?: (bytes: number) => void;
  bandwidth?: BandwidthLimiter;
  signal?: AbortSignal;
}

export interface DownloadBlobOptions extends TransferHooks {
  /** Folder for the partial file `<algorithm>-<hex>.partial`, kept across calls and processes. */
  partialDirectory: string;
  /** Final file path; default `<partialDirectory>/<algorithm>-<hex>`. */
  destination?: string;
  /** Expected size from the descriptor; checked while streaming. */
  size?: number;
  /**
   * Receives the blob's bytes while they are written to the partial file, e.g. an upload to
   * another registry. A sink that fails is aborted and left behind; the download goes on.
   */
  sink?: BlobSink;
}

/**
 * Receiver of a blob's bytes in order, from byte 0, while a download runs. The downloader
 * calls `commit` only after every byte arrived and the bytes hashed to the digest, and calls
 * `abort` in every other case. After `abort`, `begin` may start the copy over.
 */
export interface BlobSink {
  /** Starts a copy: the next `write` carries byte 0 of the blob. */
  begin(): Promise<void>;
  /** Resolves when the sink can take more bytes. */
  write(chunk: Buffer): Promise<void>;
  /** Makes the verified bytes visible. */
  commit(): Promise<void>;
  /** Drops the bytes written since `begin`; never rejects. */
  abort(): Promise<void>;
}

/** A blob upload fed by a download: a `BlobSink` that reports whether it committed. */
export interface StreamedUpload extends BlobSink {
  /** True once the registry stored the blob under its digest. */
  readonly committed: boolean;
  /** The first error of `begin`, `write` or `commit`, for the caller's log. */
  readonly error: unknown;
}

export interface GetBlobOptions extends TransferHooks {
  size?: number;
  /** Folder for a spool file used only when the registry applies a content coding. */
  spoolDirectory?: string;
}

/** Source of upload bytes: a file, or a factory that opens a stream at an offset. */
export type UploadSource = { file: string } | { open: (offset: number) => Readable; size: number };

export interface UploadBlobOptions extends TransferHooks {
  strategy?: UploadStrategy;
  /** Upload session Location from a refused mount (202), reused instead of a new POST. */
  sessionUrl?: string;
}

export type MountResult = { mounted: true } | { mounted: false; sessionUrl?: string };

export interface ReferrersResult {
  descriptors: Descriptor[];
  /** `api` when the registry serves the referrers API, else the `sha256-<hex>` tag fallback. */
  source: 'api' | 'tag';
}

export interface PingResult {
  /** Authentication scheme the registry challenged for, if any. */
  authScheme?: string;
  /** `Docker-Distribution-API-Version` header value. */
  apiVersion?: string;
}
