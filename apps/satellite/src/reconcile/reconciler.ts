import { rm } from 'node:fs/promises';
import type { DesiredArtifact, DesiredState } from '@edge/contract';
import { digestOf, matchesAnyPlatform, parseManifest } from '@edge/oci';
import type { Descriptor, ParsedManifest } from '@edge/oci';
import type { Logger } from 'pino';
import { ARTIFACT_RETRY_BACKOFF, backoffDelayMs } from '../backoff.js';
import { SatelliteError, errorCode, errorMessage } from '../errors.js';
import { Semaphore } from '../limits.js';
import type { PlacementStore } from '../placements.js';
import { artifactKey } from '../status-tracker.js';
import type { StatusTracker } from '../status-tracker.js';
import type { LocalRegistry, ManifestBytes, UpstreamSource } from './ports.js';

/** Manifest fetches at once per reconcile; they are small, so this only bounds sockets. */
const MANIFEST_CONCURRENCY = 8;

export interface ReconcilerDependencies {
  local: LocalRegistry;
  /** Upstream source by the desired state's upstream id. */
  upstream: (upstreamId: string) => UpstreamSource | undefined;
  partialDir: string;
  blobSemaphore: Semaphore;
  status: StatusTracker;
  placements: PlacementStore;
  logger: Logger;
  /** True while copying may start (inside a sync window, not revoked, not stopping). */
  mayStartTransfer: () => boolean;
  /** Throws DISK_SPACE_LOW when `bytes` more would leave too little free space. */
  checkDiskSpace: (bytes: number) => Promise<void>;
  onBytesDownloaded: (bytes: number) => void;
  now?: () => number;
}

export interface ReconcileResult {
  present: number;
  pending: number;
  failed: number;
  waitingForWindow: number;
  /** Earliest time a failed artifact may be retried, in ms since the epoch. */
  nextRetryAt: number | null;
}

interface RetryState {
  attempt: number;
  nextAt: number;
  reason: string;
}

/** One manifest to write, with the blobs it needs. */
interface ManifestNode {
  descriptor: Descriptor;
  manifest: ManifestBytes;
  parsed: ParsedManifest;
  children: ManifestNode[];
}

/** Raised when copying stops because a sync window closed or the satellite is stopping. */
class TransferNotAllowed extends Error {}

/**
 * Brings the local registry to a desired state: for each artifact, checks what the local
 * registry holds, then copies blobs (deduplicated by digest across artifacts), child manifests,
 * the top manifest and tags, as the exact upstream bytes. One artifact failing never stops the
 * others; it is retried with backoff on a later reconcile.
 */
export class Reconciler {
  readonly #deps: ReconcilerDependencies;
  readonly #retries = new Map<string, RetryState>();
  /** Blob copies in progress by digest, shared across artifacts. */
  readonly #blobCopies = new Map<string, Promise<void>>();
  readonly #manifestSlots: Semaphore;
  #signal: AbortSignal = new AbortController().signal;

  constructor(deps: ReconcilerDependencies) {
    this.#deps = deps;
    this.#manifestSlots = new Semaphore(MANIFEST_CONCURRENCY);
  }

  async reconcile(state: DesiredState, signal: AbortSignal): Promise<ReconcileResult> {
    this.#signal = signal;
    const { status } = this.#deps;
    status.setDesired(
      state.revision,
      state.artifacts.map((artifact) => ({
        localRepository: artifact.localRepository,
        tag: artifact.tag,
        digest: artifact.digest,
        bytesTotal: status.get(keyOf(artifact))?.bytesTotal ?? 0,
      })),
    );
    const desiredKeys = new Set(state.artifacts.map(keyOf));
    for (const key of this.#retries.keys()) if (!desiredKeys.has(key)) this.#retries.delete(key);

    await Promise.all(state.artifacts.map((artifact) => this.#syncArtifact(artifact)));

    const result: ReconcileResult = {
      present: 0,
      pending: 0,
      failed: 0,
      waitingForWindow: 0,
      nextRetryAt: null,
    };
    for (const artifact of state.artifacts) {
      const progress = status.get(keyOf(artifact));
      if (!progress) continue;
      if (progress.state === 'present') result.present += 1;
      else if (progress.state === 'failed') result.failed += 1;
      else if (progress.waitingForWindow) result.waitingForWindow += 1;
      else result.pending += 1;
    }
    for (const retry of this.#retries.values()) {
      result.nextRetryAt = Math.min(result.nextRetryAt ?? Infinity, retry.nextAt);
    }
    if (result.present === state.artifacts.length) status.setAppliedRevision(state.revision);
    return result;
  }

  async #syncArtifact(artifact: DesiredArtifact): Promise<void> {
    const key = keyOf(artifact);
    const { status, logger } = this.#deps;
    const log = logger.child({
      repository: artifact.localRepository,
      tag: artifact.tag,
      digest: artifact.digest,
    });
    const now = this.#now();
    const retry = this.#retries.get(key);
    try {
      if (await this.#isPresent(artifact)) {
        this.#retries.delete(key);
        const current = status.get(key);
        status.update(key, {
          state: 'present',
          bytesDone: current?.bytesTotal ?? 0,
          waitingForWindow: false,
          ...(this.#reducedReason(artifact) ? { reason: this.#reducedReason(artifact) } : {}),
        });
        await this.#publishReferrers(artifact);
        await this.#pinAll(artifact);
        return;
      }
      if (retry && retry.nextAt > now) {
        status.update(key, { state: 'failed', reason: retry.reason, waitingForWindow: false });
        return;
      }
      if (!this.#deps.mayStartTransfer()) {
        status.update(key, {
          state: 'pending',
          reason: 'waiting for window',
          waitingForWindow: true,
        });
        return;
      }
      status.update(key, { state: 'pending', waitingForWindow: false });
      await this.#copy(artifact, log);
      this.#retries.delete(key);
      status.update(key, {
        state: 'present',
        waitingForWindow: false,
        ...(this.#reducedReason(artifact) ? { reason: this.#reducedReason(artifact) } : {}),
      });
      log.info({ bytes: status.get(key)?.bytesTotal }, 'artifact present');
    } catch (error) {
      if (error instanceof TransferNotAllowed || this.#signal.aborted) {
        status.update(key, {
          state: 'pending',
          ...(this.#signal.aborted ? {} : { reason: 'waiting for window', waitingForWindow: true }),
        });
        return;
      }
      const attempt = (retry?.attempt ?? 0) + 1;
      const delay = backoffDelayMs(ARTIFACT_RETRY_BACKOFF, attempt);
      const reason = `${errorCode(error)}: ${errorMessage(error)}`;
      this.#retries.set(key, { attempt, nextAt: this.#now() + delay, reason });
      status.update(key, { state: 'failed', reason, waitingForWindow: false });
      log.warn(
        { err: error, code: errorCode(error), attempt, retryInMs: delay },
        'artifact failed; retrying later',
      );
    }
  }

  /** Checks the local registry itself: the manifest (or reduced children), the tag, referrers. */
  async #isPresent(artifact: DesiredArtifact): Promise<boolean> {
    const { local, placements } = this.#deps;
    const repository = artifact.localRepository;
    const placement = placements.get(repository, artifact.digest);
    if (placement?.reduced) {
      for (const child of placement.childDigests) {
        if (!(await local.hasManifest(repository, child))) return false;
      }
    } else if (!(await local.hasManifest(repository, artifact.digest))) {
      return false;
    }
    if (artifact.tag !== null && !placement?.reduced) {
      if ((await local.resolveTag(repository, artifact.tag)) !== artifact.digest) return false;
    }
    for (const referrer of artifact.referrers) {
      if (!(await local.hasManifest(repository, referrer.digest))) return false;
    }
    return true;
  }

  #reducedReason(artifact: DesiredArtifact): string | undefined {
    const placement = this.#deps.placements.get(artifact.localRepository, artifact.digest);
    if (!placement?.reduced) return undefined;
    return `index reduced by the platform filter ${(artifact.platforms ?? []).join(', ')}: the index digest is not stored locally, only its ${placement.childDigests.length} matching child manifest(s)${placement.tags.length > 0 ? `; tag ${placement.tags.join(', ')} points at the matching child` : ''}`;
  }

  async #pinAll(artifact: DesiredArtifact): Promise<void> {
    const { local, placements } = this.#deps;
    const placement = placements.get(artifact.localRepository, artifact.digest);
    if (placement?.reduced) {
      for (const child of placement.childDigests) await local.pin(artifact.localRepository, child);
    } else {
      await local.pin(artifact.localRepository, artifact.digest);
    }
    for (const referrer of artifact.referrers) {
      await local.pin(artifact.localRepository, referrer.digest);
    }
  }

  async #copy(artifact: DesiredArtifact, log: Logger): Promise<void> {
    const { local, placements, status } = this.#deps;
    const upstream = this.#deps.upstream(artifact.upstream);
    if (!upstream) {
      throw new SatelliteError(
        'UPSTREAM_UNKNOWN',
        `The desired state names upstream ${artifact.upstream}, which is not in its upstreams list. Ground Control sent an inconsistent state; it is retried when a new revision arrives.`,
      );
    }
    const key = keyOf(artifact);
    const repository = artifact.localRepository;

    // 1. Manifests: the artifact, its children (filtered by platform) and the referrers.
    const root = await this.#fetchTree(upstream, artifact.repository, {
      mediaType: artifact.mediaType,
      digest: artifact.digest,
      size: artifact.size,
    });
    const selected = this.#selectChildren(root, artifact.platforms);
    const reduced = root.parsed.kind === 'index' && selected.length < root.children.length;
    const referrers: ManifestNode[] = [];
    for (const referrer of artifact.referrers) {
      referrers.push(await this.#fetchTree(upstream, artifact.repository, referrer));
    }

    // 2. Blobs, each once, largest first so the long transfer starts early.
    const manifestNodes = [
      ...flatten(selected),
      ...(reduced ? [] : [root]),
      ...referrers.flatMap(flattenAll),
    ];
    const blobs = uniqueBlobs(manifestNodes);
    const manifestBytes = manifestNodes.reduce((sum, node) => sum + node.manifest.bytes.length, 0);
    const bytesTotal = blobs.reduce((sum, blob) => sum + blob.size, 0) + manifestBytes;
    let bytesDone = 0;
    status.update(key, { bytesTotal, bytesDone: 0 });
    const addDone = (bytes: number): void => {
      bytesDone += bytes;
      status.update(key, { bytesDone: Math.min(bytesDone, bytesTotal) });
    };

    // The placement record comes before any manifest write, so a crash right after a write
    // still leaves the satellite knowing that it placed the artifact.
    const childDigests = reduced
      ? selected.map((node) => node.descriptor.digest)
      : root.children.flatMap(flattenAll).map((node) => node.descriptor.digest);
    const previous = placements.get(repository, artifact.digest);
    const tagTarget = this.#tagTarget(artifact, root, selected, reduced);
    await placements.upsert({
      localRepository: repository,
      digest: artifact.digest,
      tags: [...new Set([...(previous?.tags ?? []), ...(tagTarget ? [tagTarget.tag] : [])])],
      childDigests,
      referrerDigests: artifact.referrers.map((referrer) => referrer.digest),
      reduced,
      placedAt: previous?.placedAt ?? new Date().toISOString(),
      unassignedSince: null,
    });

    blobs.sort((a, b) => b.size - a.size);
    await Promise.all(
      blobs.map((blob) =>
        this.#ensureBlob(upstream, artifact.repository, repository, blob, addDone, log),
      ),
    );

    // 3. Child manifests before their index, then the index, then tags, then referrers.
    for (const node of flatten(selected)) {
      await this.#putManifest(repository, node);
      addDone(node.manifest.bytes.length);
    }
    if (!reduced) {
      await this.#putManifest(repository, root);
      addDone(root.manifest.bytes.length);
    }
    if (tagTarget) {
      await local.setTag(
        repository,
        tagTarget.tag,
        tagTarget.node.descriptor.digest,
        tagTarget.node.manifest,
      );
    }
    for (const referrer of referrers) {
      for (const node of flattenAll(referrer)) {
        await this.#putManifest(repository, node);
        addDone(node.manifest.bytes.length);
      }
    }
    await this.#publishReferrers(artifact);
    await this.#pinAll(artifact);
  }

  async #publishReferrers(artifact: DesiredArtifact): Promise<void> {
    if (artifact.referrers.length === 0) return;
    const descriptors: Descriptor[] = artifact.referrers.map((referrer) => ({
      mediaType: referrer.mediaType,
      digest: referrer.digest,
      size: referrer.size,
      ...(referrer.artifactType ? { artifactType: referrer.artifactType } : {}),
    }));
    await this.#deps.local.publishReferrers(artifact.localRepository, artifact.digest, descriptors);
  }

  /** The tag and the manifest it points at; for a reduced index, its single matching child. */
  #tagTarget(
    artifact: DesiredArtifact,
    root: ManifestNode,
    selected: ManifestNode[],
    reduced: boolean,
  ): { tag: string; node: ManifestNode } | undefined {
    if (artifact.tag === null) return undefined;
    if (!reduced) return { tag: artifact.tag, node: root };
    const only = selected.length === 1 ? selected[0] : undefined;
    return only ? { tag: artifact.tag, node: only } : undefined;
  }

  async #putManifest(repository: string, node: ManifestNode): Promise<void> {
    const { local } = this.#deps;
    if (await local.hasManifest(repository, node.descriptor.digest)) return;
    await local.putManifest(repository, node.descriptor.digest, node.manifest);
  }

  #selectChildren(root: ManifestNode, platforms: string[] | null): ManifestNode[] {
    if (root.parsed.kind !== 'index') return [];
    if (platforms === null || platforms.length === 0) return root.children;
    return root.children.filter((child) =>
      matchesAnyPlatform(child.descriptor.platform, platforms),
    );
  }

  async #fetchTree(
    upstream: UpstreamSource,
    repository: string,
    descriptor: Descriptor,
  ): Promise<ManifestNode> {
    const manifest = await this.#manifestSlots.run(() =>
      upstream.getManifest(repository, descriptor.digest, this.#signal),
    );
    const actual = digestOf(manifest.bytes);
    if (actual !== descriptor.digest) {
      throw new SatelliteError(
        'ARTIFACT_FAILED',
        `Manifest ${repository}@${descriptor.digest} from the upstream hashes to ${actual}. The upstream serves other bytes than Ground Control resolved; re-resolve the group.`,
      );
    }
    const parsed = parseManifest(manifest.bytes, manifest.mediaType);
    const children: ManifestNode[] = [];
    if (parsed.kind === 'index') {
      for (const child of parsed.manifests) {
        children.push(await this.#fetchTree(upstream, repository, child));
      }
    }
    return { descriptor, manifest, parsed, children };
  }

  /** Places one blob; copies of the same digest run one at a time, so each is fetched once. */
  async #ensureBlob(
    upstream: UpstreamSource,
    upstreamRepository: string,
    repository: string,
    blob: Descriptor,
    addDone: (bytes: number) => void,
    log: Logger,
  ): Promise<void> {
    let running = this.#blobCopies.get(blob.digest);
    while (running) {
      await running.catch(() => undefined);
      running = this.#blobCopies.get(blob.digest);
    }
    // No await between the check above and this set, so no second copy can slip in.
    const copy = this.#placeBlob(upstream, upstreamRepository, repository, blob, addDone, log);
    this.#blobCopies.set(blob.digest, copy);
    try {
      await copy;
    } finally {
      if (this.#blobCopies.get(blob.digest) === copy) this.#blobCopies.delete(blob.digest);
    }
  }

  async #placeBlob(
    upstream: UpstreamSource,
    upstreamRepository: string,
    repository: string,
    blob: Descriptor,
    addDone: (bytes: number) => void,
    log: Logger,
  ): Promise<void> {
    const { local } = this.#deps;
    if (await local.hasBlob(repository, blob.digest)) {
      addDone(blob.size);
      return;
    }
    if (await local.linkBlob(repository, blob)) {
      log.debug({ blobDigest: blob.digest, bytes: blob.size }, 'blob linked without download');
      addDone(blob.size);
      return;
    }
    await this.#downloadAndPut(upstream, upstreamRepository, repository, blob, addDone, log);
  }

  async #downloadAndPut(
    upstream: UpstreamSource,
    upstreamRepository: string,
    repository: string,
    blob: Descriptor,
    addDone: (bytes: number) => void,
    log: Logger,
  ): Promise<void> {
    await this.#deps.blobSemaphore.run(async () => {
      if (!this.#deps.mayStartTransfer()) throw new TransferNotAllowed();
      await this.#deps.checkDiskSpace(blob.size);
      const started = this.#now();
      log.debug({ blobDigest: blob.digest, bytes: blob.size }, 'blob download started');
      const { local } = this.#deps;
      const sink = local.openBlobSink?.(repository, blob, this.#signal);
      const path = await upstream.downloadBlob(upstreamRepository, blob, {
        partialDir: this.#deps.partialDir,
        signal: this.#signal,
        onProgress: (bytes) => {
          this.#deps.onBytesDownloaded(bytes);
          addDone(bytes);
        },
        ...(sink !== undefined ? { sink } : {}),
      });
      try {
        // Without a committed sink the verified file is pushed in a second pass: the sink failed
        // on the way, or an earlier run had already finished the file.
        if (sink === undefined || !sink.committed) {
          if (sink?.error !== undefined) {
            log.warn(
              { err: sink.error, blobDigest: blob.digest },
              'streamed upload failed; pushing the downloaded file',
            );
          }
          await local.putBlobFile(repository, blob, path);
        }
      } finally {
        await rm(path, { force: true });
      }
      log.info(
        {
          blobDigest: blob.digest,
          bytes: blob.size,
          durationMs: this.#now() - started,
          streamed: sink?.committed ?? false,
        },
        'blob copied',
      );
    });
  }

  #now(): number {
    return (this.#deps.now ?? Date.now)();
  }
}

export function keyOf(
  artifact: Pick<DesiredArtifact, 'localRepository' | 'tag' | 'digest'>,
): string {
  return artifactKey(artifact.localRepository, artifact.tag, artifact.digest);
}

/** Image manifests under the given nodes (children before parents), each once. */
function flatten(nodes: ManifestNode[]): ManifestNode[] {
  return nodes.flatMap(flattenAll);
}

function flattenAll(node: ManifestNode): ManifestNode[] {
  return [...node.children.flatMap(flattenAll), node];
}

function uniqueBlobs(nodes: ManifestNode[]): Descriptor[] {
  const byDigest = new Map<string, Descriptor>();
  for (const node of nodes) {
    if (node.parsed.kind !== 'image') continue;
    for (const blob of [node.parsed.config, ...node.parsed.layers]) {
      // Foreign layers (with `urls`) are not stored by registries, so they are not copied.
      if (Array.isArray((blob as { urls?: unknown }).urls)) continue;
      // The OCI empty descriptor may carry its bytes inline but must still exist as a blob.
      byDigest.set(blob.digest, blob);
    }
  }
  return [...byDigest.values()];
}
