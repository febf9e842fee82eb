import { rm } from 'node:fs/promises';
import type { RegistryClient } from './client/client.js';
import { referrersTag } from './client/client.js';
import type { FetchedManifest, RepositoryRef, TransferHooks } from './client/types.js';
import { isDigest, type Digest } from './digest.js';
import { OciError } from './errors.js';
import type { Descriptor } from './manifest.js';
import { MediaType } from './media-types.js';

/** One side of a copy: a client and the repository it addresses. */
export interface CopyEndpoint {
  client: RegistryClient;
  repo: RepositoryRef;
}

export interface CopyOptions extends TransferHooks {
  /** Folder for partial downloads; blobs pass through it between download and upload. */
  spoolDirectory: string;
  /** Tags to set on the destination; default the source tag when `reference` is a tag. */
  tags?: string[];
  /** Also copy the artifacts that refer to the copied manifests (`subject`). */
  referrers?: boolean;
  /** Blobs transferred at the same time. */
  concurrency?: number;
}

export interface CopyResult {
  digest: Digest;
  mediaType: string;
  manifestsCopied: number;
  manifestsSkipped: number;
  blobsCopied: number;
  blobsMounted: number;
  blobsSkipped: number;
  referrersCopied: number;
}

/** Default number of blobs transferred at once: enough to hide latency on 2 cores. */
export const DEFAULT_COPY_CONCURRENCY = 3;

async function runPool<T>(
  items: readonly T[],
  concurrency: number,
  work: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const item = items[next++] as T;
      await work(item);
    }
  };
  await Promise.all(
    Array.from({ length: Math.max(1, Math.min(concurrency, items.length)) }, worker),
  );
}

class Copier {
  readonly result: Omit<CopyResult, 'digest' | 'mediaType'> = {
    manifestsCopied: 0,
    manifestsSkipped: 0,
    blobsCopied: 0,
    blobsMounted: 0,
    blobsSkipped: 0,
    referrersCopied: 0,
  };

  constructor(
    private readonly source: CopyEndpoint,
    private readonly destination: CopyEndpoint,
    private readonly options: CopyOptions,
  ) {}

  private hooks(): TransferHooks {
    const hooks: TransferHooks = {};
    if (this.options.onProgress !== undefined) hooks.onProgress = this.options.onProgress;
    if (this.options.bandwidth !== undefined) hooks.bandwidth = this.options.bandwidth;
    if (this.options.signal !== undefined) hooks.signal = this.options.signal;
    return hooks;
  }

  async copyBlob(descriptor: Descriptor): Promise<void> {
    const { source, destination } = this;
    if (
      (await destination.client.headBlob(
        destination.repo,
        descriptor.digest,
        this.options.signal,
      )) !== undefined
    ) {
      this.result.blobsSkipped++;
      return;
    }
    let sessionUrl: string | undefined;
    const sameRegistry =
      source.client === destination.client && source.repo.registry === destination.repo.registry;
    if (sameRegistry && source.repo.repository !== destination.repo.repository) {
      const mount = await destination.client.mountBlob(
        destination.repo,
        descriptor.digest,
        source.repo.repository,
        this.options.signal,
      );
      if (mount.mounted) {
        this.result.blobsMounted++;
        return;
      }
      sessionUrl = mount.sessionUrl;
    }
    const path = await source.client.downloadBlob(source.repo, descriptor.digest, {
      partialDirectory: this.options.spoolDirectory,
      size: descriptor.size,
      ...this.hooks(),
    });
    try {
      await destination.client.uploadBlob(
        destination.repo,
        descriptor.digest,
        { file: path },
        {
          ...(sessionUrl !== undefined ? { sessionUrl } : {}),
          ...(this.options.signal !== undefined ? { signal: this.options.signal } : {}),
        },
      );
    } finally {
      await rm(path, { force: true });
    }
    this.result.blobsCopied++;
  }

  /** Copies a manifest and everything below it, leaves first; skips what the destination has. */
  async copyTree(manifest: FetchedManifest): Promise<void> {
    const { destination } = this;
    const present = await destination.client.headManifest(
      destination.repo,
      manifest.digest,
      this.options.signal,
    );
    if (present !== undefined) {
      // The registry accepted it only with all its children and blobs, so nothing below is missing.
      this.result.manifestsSkipped++;
      return;
    }
    const parsed = manifest.manifest;
    if (parsed.kind === 'index') {
      for (const child of parsed.manifests) {
        const fetched = await this.source.client.getManifest(
          this.source.repo,
          child.digest,
          this.signalOption(),
        );
        await this.copyTree(fetched);
      }
    } else {
      await runPool(
        [parsed.config, ...parsed.layers],
        this.options.concurrency ?? DEFAULT_COPY_CONCURRENCY,
        (blob) => this.copyBlob(blob),
      );
    }
    await destination.client.putManifest(
      destination.repo,
      manifest.digest,
      manifest.bytes,
      manifest.mediaType,
      this.options.signal,
    );
    this.result.manifestsCopied++;
  }

  private signalOption(): { signal?: AbortSignal } {
    return this.options.signal !== undefined ? { signal: this.options.signal } : {};
  }

  /** Copies the referrers of `subject` and keeps the destination's fallback tag in step. */
  async copyReferrers(subject: Digest): Promise<void> {
    const found = await this.source.client.referrers(
      this.source.repo,
      subject,
      this.signalOption(),
    );
    if (found.descriptors.length === 0) return;
    for (const descriptor of found.descriptors) {
      const fetched = await this.source.client.getManifest(
        this.source.repo,
        descriptor.digest,
        this.signalOption(),
      );
      await this.copyTree(fetched);
      this.result.referrersCopied++;
    }
    const atDestination = await this.destination.client.referrers(
      this.destination.repo,
      subject,
      this.signalOption(),
    );
    if (atDestination.source === 'api') return;
    await this.updateFallbackTag(subject, found.descriptors, atDestination.descriptors);
  }

  private async updateFallbackTag(
    subject: Digest,
    expected: Descriptor[],
    existing: Descriptor[],
  ): Promise<void> {
    const tag = referrersTag(subject);
    const known = new Set(existing.map((item) => item.digest));
    const missing = expected.filter((item) => !known.has(item.digest));
    if (missing.length === 0) return;
    let bytes: Buffer;
    if (existing.length === 0) {
      // Nothing there yet: copy the source's index as exact bytes.
      const sourceIndex = await this.source.client
        .getManifest(this.source.repo, tag, this.signalOption())
        .catch(() => undefined);
      bytes =
        sourceIndex?.bytes ??
        Buffer.from(
          JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: expected }),
        );
    } else {
      bytes = Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: MediaType.OciIndex,
          manifests: [...existing, ...missing],
        }),
      );
    }
    await this.destination.client.putManifest(
      this.destination.repo,
      tag,
      bytes,
      MediaType.OciIndex,
      this.options.signal,
    );
  }
}

/**
 * Copies one artifact (image, index with all children, or any OCI artifact) between
 * registries as exact bytes: blobs first, then child manifests, then the top manifest, then
 * tags, so the destination never references content it lacks. Digests are preserved.
 */
export async function copyArtifact(
  source: CopyEndpoint,
  destination: CopyEndpoint,
  reference: string,
  options: CopyOptions,
): Promise<CopyResult> {
  const copier = new Copier(source, destination, options);
  const root = await source.client.getManifest(
    source.repo,
    reference,
    options.signal !== undefined ? { signal: options.signal } : {},
  );
  await copier.copyTree(root);

  const tags = options.tags ?? (isDigest(reference) ? [] : [reference]);
  for (const tag of tags) {
    if (isDigest(tag)) {
      throw new OciError(
        'INVALID_REFERENCE',
        `Copy target tag ${JSON.stringify(tag)} is a digest; pass tags only.`,
      );
    }
    const current = await destination.client.headManifest(destination.repo, tag, options.signal);
    if (current?.digest === root.digest) continue;
    await destination.client.putManifest(
      destination.repo,
      tag,
      root.bytes,
      root.mediaType,
      options.signal,
    );
  }

  if (options.referrers === true) {
    await copier.copyReferrers(root.digest);
    if (root.manifest.kind === 'index') {
      for (const child of root.manifest.manifests) await copier.copyReferrers(child.digest);
    }
  }
  return { digest: root.digest, mediaType: root.mediaType, ...copier.result };
}
