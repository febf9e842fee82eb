import type { BlobSink, Descriptor, StreamedUpload } from '@edge/oci';

/** A manifest as fetched: the exact bytes and the media type they were served with. */
export interface ManifestBytes {
  bytes: Buffer;
  mediaType: string;
}

/** Options for one blob download. */
export interface DownloadOptions {
  /** Folder that keeps partial files keyed by digest across restarts. */
  partialDir: string;
  /** Called with the number of new bytes as they arrive. */
  onProgress: (bytes: number) => void;
  signal: AbortSignal;
  /** Receives the bytes as they arrive; committed only after they hashed to the digest. */
  sink?: BlobSink;
}

/** The upstream registry one artifact comes from. */
export interface UpstreamSource {
  /** Fetches a manifest by digest and checks that the bytes hash to it. */
  getManifest(repository: string, digest: string, signal: AbortSignal): Promise<ManifestBytes>;
  /** Downloads a blob into `partialDir`, resuming a partial file; returns the verified file. */
  downloadBlob(
    repository: string,
    descriptor: Descriptor,
    options: DownloadOptions,
  ): Promise<string>;
}

/**
 * The site registry that runtimes pull from: the embedded store, or an external registry reached
 * over the OCI distribution API.
 */
export interface LocalRegistry {
  readonly kind: 'embedded' | 'external';
  /** Public URL that runtimes use, or null when it has none (sync --once with the embedded store). */
  readonly url: string | null;
  hasManifest(repository: string, digest: string): Promise<boolean>;
  /** Digest a tag points at, or undefined when the tag does not exist. */
  resolveTag(repository: string, tag: string): Promise<string | undefined>;
  hasBlob(repository: string, digest: string): Promise<boolean>;
  /**
   * Makes the blob available in `repository` without downloading it, when the registry already
   * contains it elsewhere (embedded: shared store; external: cross-repository mount). Returns false
   * when the blob must be downloaded.
   */
  linkBlob(repository: string, descriptor: Descriptor): Promise<boolean>;
  /**
   * Opens an upload that the download of `descriptor` streams into, so the blob is placed in
   * the same pass. Absent when placing the downloaded file is already one pass (embedded).
   */
  openBlobSink?(repository: string, descriptor: Descriptor, signal: AbortSignal): StreamedUpload;
  /** Writes a verified blob file; the file may be moved or deleted by this call. */
  putBlobFile(repository: string, descriptor: Descriptor, path: string): Promise<void>;
  putManifest(repository: string, reference: string, manifest: ManifestBytes): Promise<void>;
  /** Points `tag` at a manifest already stored by digest. */
  setTag(repository: string, tag: string, digest: string, manifest: ManifestBytes): Promise<void>;
  /**
   * Makes referrers of `subject` discoverable. The embedded registry serves the referrers API
   * from the stored `subject` fields, so it needs nothing. An external registry without that API
   * gets the OCI 1.1 tag-schema fallback, an index tagged `sha256-<hex>`.
   */
  publishReferrers(repository: string, subject: string, referrers: Descriptor[]): Promise<void>;
  /** Keeps a digest safe from garbage collection (embedded); a no-op for external registries. */
  pin(repository: string, digest: string): Promise<void>;
  unpin(repository: string, digest: string): Promise<void>;
  /** Tags of `repository` that currently point at `digest`. */
  tagsPointingAt(repository: string, digest: string): Promise<string[]>;
  /** Removes the tag only; the manifest stays. Returns false when the registry cannot do it. */
  deleteTag(repository: string, tag: string): Promise<boolean>;
  deleteManifest(repository: string, digest: string): Promise<void>;
  /** Frees unreferenced content (embedded); external registries run their own offline GC. */
  collectGarbage(): Promise<{ freedBytes: number }>;
  usedBytes(): Promise<number>;
  close(): Promise<void>;
}
