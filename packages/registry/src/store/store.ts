import {
  copyFile,
  type FileHandle,
  mkdir,
  open,
  readdir,
  readFile,
  rename,
  rm,
  stat,
  utimes,
} from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { RegistryError } from '../errors.js';
import {
  assertRepositoryName,
  assertTag,
  blobsOf,
  digestOf,
  parseDigest,
  parseManifest,
  tryParseDigest,
  type Descriptor,
  type ParsedDigest,
  type ParsedManifest,
} from '../oci.js';
import { fsyncFile, streamToFile } from './blob-files.js';
import { checkLayout, type ConsistencyProblem } from './check.js';
import {
  fsyncDirectory,
  isNotFound,
  tempName,
  writeFileAtomic,
  writeFileSynced,
} from './fs-atomic.js';
import { markGarbage, sweepBlobs, type GarbageReport } from './gc.js';
export type { ConsistencyProblem } from './check.js';
import {
  emptyState,
  parseIndexFile,
  pinKey,
  repositoryOf,
  serializeIndexFile,
  type LayoutState,
  type ManifestRecord,
} from './layout-index.js';
import { Mutex } from './mutex.js';
import { lockStore, unlockStore } from './process-lock.js';
import { UploadSessions } from './uploads.js';

/** Kept 24 hours by default because a sync over a slow link can place layers hours before its manifest. */
export const DEFAULT_GC_GRACE_PERIOD_MS = 24 * 60 * 60 * 1000;
/** 4 MiB, the manifest size limit of CNCF Distribution; larger manifests are rejected. */
export const DEFAULT_MAX_MANIFEST_BYTES = 4 * 1024 * 1024;
/**
 * Read size of `openBlob` streams. 1 MiB instead of Node's 64 KiB default cuts the reads per blob
 * sixteenfold. The HTTP server does not use these streams (see `openBlobFile`).
 */
const BLOB_READ_CHUNK_BYTES = 1024 * 1024;
const OCI_LAYOUT_FILE = '{"imageLayoutVersion":"1.0.0"}\n';

export interface OciStoreOptions {
  gcGracePeriodMs?: number;
  maxManifestBytes?: number;
  /** Run garbage collection after every manifest or tag deletion (default true). */
  collectAfterDelete?: boolean;
}

export interface ManifestInfo {
  parsed: ParsedManifest;
  size: number;
}

function blobNotFound(digest: string): RegistryError {
  return new RegistryError('BLOB_UNKNOWN', `blob ${digest} not found: push or copy it first`);
}

function manifestNotFound(repository: string, reference: string): RegistryError {
  return new RegistryError(
    'MANIFEST_UNKNOWN',
    `manifest ${reference} not found in repository ${repository}: push it or check the reference`,
  );
}

/**
 * Content-addressed store laid out as an OCI image layout. Blobs are visible in every repository;
 * manifests, tags and pins are per repository and live in `index.json` annotations.
 */
export class OciStore {
  private readonly lock = new Mutex();
  private readonly infoCache = new Map<string, ManifestInfo>();
  readonly uploads: UploadSessions;
  readonly gcGracePeriodMs: number;
  readonly maxManifestBytes: number;
  private readonly collectAfterDelete: boolean;

  private constructor(
    readonly root: string,
    private state: LayoutState,
    options: OciStoreOptions,
  ) {
    this.gcGracePeriodMs = options.gcGracePeriodMs ?? DEFAULT_GC_GRACE_PERIOD_MS;
    this.maxManifestBytes = options.maxManifestBytes ?? DEFAULT_MAX_MANIFEST_BYTES;
    this.collectAfterDelete = options.collectAfterDelete ?? true;
    this.uploads = new UploadSessions(join(root, 'uploads'), this);
  }

  /**
   * Opens (and creates when missing) a store at `root` and removes its own stale temp files.
   * Takes `<root>/lock`, so a second process opening the same root gets STORE_LOCKED until
   * `close()`; stores opened twice in one process share the lock.
   */
  static async open(root: string, options: OciStoreOptions = {}): Promise<OciStore> {
    await mkdir(root, { recursive: true });
    await lockStore(root);
    try {
      return await OciStore.openLocked(root, options);
    } catch (error) {
      await unlockStore(root);
      throw error;
    }
  }

  private static async openLocked(root: string, options: OciStoreOptions): Promise<OciStore> {
    for (const directory of [
      'blobs/sha256',
      'blobs/sha512',
      'tmp/store',
      'tmp/incoming',
      'uploads',
    ]) {
      await mkdir(join(root, directory), { recursive: true });
    }
    // A temp file of this folder belongs to a write that a crash interrupted; nothing points at it.
    for (const name of await readdir(join(root, 'tmp/store'))) {
      await rm(join(root, 'tmp/store', name), { force: true });
    }
    for (const name of await readdir(root)) {
      if (name.startsWith('.index.json-') && name.endsWith('.tmp')) await rm(join(root, name));
    }
    const layoutPath = join(root, 'oci-layout');
    try {
      await stat(layoutPath);
    } catch (error) {
      if (!isNotFound(error)) throw error;
      await writeFileAtomic(layoutPath, OCI_LAYOUT_FILE);
    }
    let state: LayoutState;
    try {
      state = parseIndexFile(await readFile(join(root, 'index.json'), 'utf8'));
    } catch (error) {
      if (!isNotFound(error)) {
        throw new RegistryError(
          'STORE_CORRUPT',
          `index.json in ${root} is not a valid OCI image index: restore it from a backup or move it away`,
          undefined,
          { cause: error },
        );
      }
      state = emptyState();
      await writeFileAtomic(join(root, 'index.json'), serializeIndexFile(state));
    }
    return new OciStore(root, state, options);
  }

  /** Releases the lock file after the writes in progress; the store is not usable afterwards. */
  async close(): Promise<void> {
    await this.lock.run(() => unlockStore(this.root));
  }

  /** Returns a folder on the store's filesystem for files that callers hand to `adoptBlobFile`. */
  tempDir(): string {
    return join(this.root, 'tmp/incoming');
  }

  blobPath(digest: string): string {
    const parsed = parseDigest(digest);
    return join(this.root, 'blobs', parsed.algorithm, parsed.hex);
  }

  private storeTemp(prefix: string): string {
    return tempName(join(this.root, 'tmp/store'), prefix);
  }

  private async persist(): Promise<void> {
    await writeFileAtomic(join(this.root, 'index.json'), serializeIndexFile(this.state));
  }

  // ---- blobs

  async putBlob(
    stream: Readable,
    expected: { digest?: string; size?: number } = {},
  ): Promise<{ digest: string; size: number }> {
    const parsed = expected.digest === undefined ? undefined : parseDigest(expected.digest);
    const temp = this.storeTemp('blob');
    try {
      const written = await streamToFile(stream, temp, {
        algorithm: parsed?.algorithm ?? 'sha256',
        ...(expected.size === undefined ? {} : { maxSize: expected.size }),
      });
      this.verifyWritten(written, expected);
      await fsyncFile(temp);
      await this.commitBlobFile(temp, written.digest);
      return written;
    } finally {
      await rm(temp, { force: true });
    }
  }

  /** Throws SIZE_INVALID or DIGEST_INVALID when a written blob differs from what the caller declared. */
  verifyWritten(
    written: { digest: string; size: number },
    expected: { digest?: string; size?: number },
  ): void {
    if (expected.size !== undefined && written.size !== expected.size) {
      throw new RegistryError(
        'SIZE_INVALID',
        `blob has ${written.size} bytes but ${expected.size} were declared: send the whole blob`,
      );
    }
    if (expected.digest !== undefined && written.digest !== expected.digest) {
      throw new RegistryError(
        'DIGEST_INVALID',
        `blob content has digest ${written.digest}, not the declared ${expected.digest}: check the upload`,
      );
    }
  }

  /**
   * Moves a verified file into `blobs/` under the lock, so a garbage collection never runs while a
   * blob is half-placed. An existing blob gets a fresh mtime, which restarts its grace period.
   */
  async commitBlobFile(path: string, digest: string): Promise<void> {
    const target = this.blobPath(digest);
    await this.lock.run(async () => {
      if (await this.touchIfPresent(target)) return;
      await rename(path, target);
      await fsyncDirectory(join(target, '..'));
    });
  }

  private async touchIfPresent(path: string): Promise<boolean> {
    const now = new Date();
    try {
      await utimes(path, now, now);
      return true;
    } catch (error) {
      if (isNotFound(error)) return false;
      throw error;
    }
  }

  /**
   * Takes over a file that the caller has already verified (digest and size) by renaming it into
   * the store; across filesystems it is copied first. The file is gone from `path` afterwards.
   */
  async adoptBlobFile(path: string, digest: string, size: number): Promise<void> {
    parseDigest(digest);
    const info = await stat(path);
    if (info.size !== size) {
      throw new RegistryError(
        'SIZE_INVALID',
        `file ${path} has ${info.size} bytes but blob ${digest} should have ${size}: download it again`,
      );
    }
    await fsyncFile(path);
    const now = new Date();
    await utimes(path, now, now);
    try {
      await this.commitBlobFile(path, digest);
    } catch (error) {
      if (!(error instanceof Error && 'code' in error && error.code === 'EXDEV')) throw error;
      const temp = this.storeTemp('adopt');
      try {
        await copyFile(path, temp);
        await fsyncFile(temp);
        await this.commitBlobFile(temp, digest);
      } finally {
        await rm(temp, { force: true });
      }
    }
    await rm(path, { force: true });
  }

  async statBlob(digest: string): Promise<{ size: number } | null> {
    try {
      const info = await stat(this.blobPath(digest));
      return { size: info.size };
    } catch (error) {
      if (isNotFound(error)) return null;
      throw error;
    }
  }

  async hasBlob(digest: string): Promise<boolean> {
    return (await this.statBlob(digest)) !== null;
  }

  /**
   * Opens a blob for streaming; `range.end` is inclusive. The file is opened before returning, so a
   * collection that removes the blob afterwards does not cut the response.
   */
  async openBlob(digest: string, range?: { start: number; end?: number }): Promise<Readable> {
    const handle = await this.openBlobHandle(digest);
    return handle.createReadStream({
      highWaterMark: BLOB_READ_CHUNK_BYTES,
      ...(range === undefined ? {} : { start: range.start }),
      ...(range?.end === undefined ? {} : { end: range.end }),
    });
  }

  /**
   * Opens a blob file for positional reads and returns it with its size; the caller closes the
   * handle. Like `openBlob`, the file stays readable after a collection removes the blob.
   */
  async openBlobFile(digest: string): Promise<{ file: FileHandle; size: number }> {
    const file = await this.openBlobHandle(digest);
    try {
      const info = await file.stat();
      return { file, size: info.size };
    } catch (error) {
      await file.close();
      throw error;
    }
  }

  private async openBlobHandle(digest: string): Promise<FileHandle> {
    try {
      return await open(this.blobPath(digest), 'r');
    } catch (error) {
      if (isNotFound(error)) throw blobNotFound(digest);
      throw error;
    }
  }

  /** Deletes a blob that no recorded manifest uses; MANIFEST_REFERENCED otherwise. */
  async deleteBlob(digest: string): Promise<void> {
    parseDigest(digest);
    await this.lock.run(async () => {
      for (const [name, repository] of this.state.repositories) {
        for (const record of repository.manifests.values()) {
          const info = await this.manifestInfo(record.digest);
          const uses =
            record.digest === digest ||
            (info !== null && blobsOf(info.parsed).some((d) => d.digest === digest));
          if (uses) {
            throw new RegistryError(
              'MANIFEST_REFERENCED',
              `blob ${digest} is used by manifest ${record.digest} in ${name}: delete that manifest first`,
            );
          }
        }
      }
      try {
        await rm(this.blobPath(digest));
      } catch (error) {
        if (isNotFound(error)) throw blobNotFound(digest);
        throw error;
      }
    });
  }

  // ---- manifests

  /** Reads and parses a stored manifest blob; null when the blob is absent or unparsable. */
  async manifestInfo(digest: string, mediaType?: string): Promise<ManifestInfo | null> {
    const cached = this.infoCache.get(digest);
    if (cached) return cached;
    const type = mediaType ?? this.recordedMediaType(digest);
    if (type === undefined) return null;
    let bytes: Buffer;
    try {
      bytes = await readFile(this.blobPath(digest));
    } catch (error) {
      if (isNotFound(error)) return null;
      throw error;
    }
    try {
      const info = { parsed: parseManifest(bytes, type), size: bytes.length };
      this.infoCache.set(digest, info);
      return info;
    } catch {
      return null;
    }
  }

  private recordedMediaType(digest: string): string | undefined {
    for (const repository of this.state.repositories.values()) {
      const record = repository.manifests.get(digest);
      if (record) return record.mediaType;
    }
    return undefined;
  }

  private resolveReference(repository: string, reference: string): string | undefined {
    const state = this.state.repositories.get(repository);
    if (!state) return undefined;
    if (tryParseDigest(reference)) return state.manifests.has(reference) ? reference : undefined;
    return state.tags.get(reference);
  }

  private parseReference(reference: string): { tag?: string; digest?: ParsedDigest } {
    if (reference.includes(':')) return { digest: parseDigest(reference) };
    assertTag(reference);
    return { tag: reference };
  }

  /**
   * Stores manifest bytes unchanged and records them in `repository`, tagged when `reference` is a
   * tag. Accepted only when its config and layers (image) or children (index, same repository)
   * are present; a foreign layer with `urls` is exempt.
   */
  async putManifest(
    repository: string,
    reference: string,
    bytes: Buffer,
    mediaType: string,
  ): Promise<{ digest: string; subject?: string }> {
    assertRepositoryName(repository);
    const target = this.parseReference(reference);
    if (bytes.length > this.maxManifestBytes) {
      throw new RegistryError(
        'SIZE_INVALID',
        `manifest has ${bytes.length} bytes, more than the limit of ${this.maxManifestBytes}: split the index or raise maxManifestBytes`,
        undefined,
        { status: 413 },
      );
    }
    const parsed = parseManifest(bytes, mediaType);
    const digest = digestOf(bytes, target.digest?.algorithm ?? 'sha256');
    if (target.digest && target.digest.digest !== digest) {
      throw new RegistryError(
        'DIGEST_INVALID',
        `manifest bytes have digest ${digest}, not ${target.digest.digest} from the URL: send the exact bytes`,
      );
    }
    await this.lock.run(async () => {
      await this.checkReferencesPresent(repository, parsed);
      const path = this.blobPath(digest);
      if (!(await this.touchIfPresent(path))) {
        const temp = this.storeTemp('manifest');
        try {
          await writeFileSynced(temp, bytes);
          await rename(temp, path);
          await fsyncDirectory(join(path, '..'));
        } finally {
          await rm(temp, { force: true });
        }
      }
      this.infoCache.set(digest, { parsed, size: bytes.length });
      const state = repositoryOf(this.state, repository);
      const existing = state.manifests.get(digest);
      state.manifests.set(digest, {
        digest,
        mediaType: parsed.mediaType,
        size: bytes.length,
        createdMs: existing?.createdMs ?? Date.now(),
      });
      if (target.tag !== undefined) state.tags.set(target.tag, digest);
      await this.persist();
    });
    return parsed.subject ? { digest, subject: parsed.subject.digest } : { digest };
  }

  private async checkReferencesPresent(repository: string, parsed: ParsedManifest): Promise<void> {
    const missing: string[] = [];
    if (parsed.kind === 'index') {
      const records = this.state.repositories.get(repository)?.manifests;
      for (const child of parsed.manifests) {
        if (!records?.has(child.digest)) missing.push(child.digest);
      }
    } else {
      for (const blob of blobsOf(parsed)) {
        if (blob.urls !== undefined && blob.urls.length > 0) continue;
        const found = await this.statBlob(blob.digest);
        if (!found) {
          missing.push(blob.digest);
        } else if (found.size !== blob.size) {
          throw new RegistryError(
            'MANIFEST_INVALID',
            `manifest lists blob ${blob.digest} with size ${blob.size}, but the stored blob has ${found.size} bytes: fix the descriptor`,
          );
        }
      }
    }
    if (missing.length > 0) {
      const what = parsed.kind === 'index' ? `child manifests in ${repository}` : 'blobs';
      throw new RegistryError(
        'MANIFEST_BLOB_UNKNOWN',
        `manifest references ${missing.length} missing ${what} (${missing.slice(0, 5).join(', ')}): push them first`,
        missing.map((digest) => ({ digest })),
      );
    }
  }

  async getManifest(
    repository: string,
    reference: string,
  ): Promise<{ bytes: Buffer; mediaType: string; digest: string } | null> {
    const digest = this.resolveReference(repository, reference);
    if (digest === undefined) return null;
    const record = this.state.repositories.get(repository)?.manifests.get(digest);
    if (!record) return null;
    try {
      const bytes = await readFile(this.blobPath(digest));
      return { bytes, mediaType: record.mediaType, digest };
    } catch (error) {
      if (isNotFound(error)) return null;
      throw error;
    }
  }

  /** Returns the manifest record for a tag or digest, without reading its bytes. */
  statManifest(repository: string, reference: string): ManifestRecord | null {
    const digest = this.resolveReference(repository, reference);
    if (digest === undefined) return null;
    return this.state.repositories.get(repository)?.manifests.get(digest) ?? null;
  }

  async setTag(repository: string, tag: string, digest: string): Promise<void> {
    assertTag(tag);
    await this.lock.run(async () => {
      const state = this.state.repositories.get(repository);
      if (!state?.manifests.has(digest)) throw manifestNotFound(repository, digest);
      state.tags.set(tag, digest);
      await this.persist();
    });
  }

  async deleteTag(repository: string, tag: string): Promise<void> {
    await this.lock.run(async () => {
      const state = this.state.repositories.get(repository);
      if (!state?.tags.delete(tag)) throw manifestNotFound(repository, tag);
      await this.persist();
    });
    if (this.collectAfterDelete) await this.collectGarbage();
  }

  /**
   * Removes a manifest from a repository with its tags and pins. Rejected with MANIFEST_REFERENCED
   * while another manifest of the repository lists it as an index child.
   */
  async deleteManifest(repository: string, digest: string): Promise<void> {
    parseDigest(digest);
    await this.lock.run(async () => {
      const state = this.state.repositories.get(repository);
      if (!state?.manifests.has(digest)) throw manifestNotFound(repository, digest);
      for (const record of state.manifests.values()) {
        if (record.digest === digest) continue;
        const info = await this.manifestInfo(record.digest);
        if (info?.parsed.manifests.some((child) => child.digest === digest)) {
          throw new RegistryError(
            'MANIFEST_REFERENCED',
            `manifest ${digest} is a child of index ${record.digest} in ${repository}: delete the index first`,
          );
        }
      }
      state.manifests.delete(digest);
      for (const [tag, target] of state.tags) if (target === digest) state.tags.delete(tag);
      for (const [key, pin] of this.state.pins) {
        if (pin.repository === repository && pin.digest === digest) this.state.pins.delete(key);
      }
      if (state.manifests.size === 0) this.state.repositories.delete(repository);
      await this.persist();
    });
    if (this.collectAfterDelete) await this.collectGarbage();
  }

  // ---- listing

  hasRepository(repository: string): boolean {
    return this.state.repositories.has(repository);
  }

  listRepositories(): Promise<string[]> {
    return Promise.resolve([...this.state.repositories.keys()].sort());
  }

  /** Tags of a repository in lexical order; an unknown repository has none. */
  listTags(repository: string): Promise<string[]> {
    const state = this.state.repositories.get(repository);
    return Promise.resolve(state ? [...state.tags.keys()].sort() : []);
  }

  listManifests(
    repository: string,
  ): Promise<{ digest: string; mediaType: string; tags: string[] }[]> {
    const state = this.state.repositories.get(repository);
    if (!state) return Promise.resolve([]);
    const result = [...state.manifests.values()].map((record) => ({
      digest: record.digest,
      mediaType: record.mediaType,
      tags: [...state.tags.entries()]
        .filter(([, d]) => d === record.digest)
        .map(([t]) => t)
        .sort(),
    }));
    return Promise.resolve(result.sort((a, b) => (a.digest < b.digest ? -1 : 1)));
  }

  /** Descriptors of the manifests in `repository` whose `subject` is `subject`, sorted by digest. */
  async referrers(
    repository: string,
    subject: string,
    artifactType?: string,
  ): Promise<Descriptor[]> {
    parseDigest(subject);
    const state = this.state.repositories.get(repository);
    if (!state) return [];
    const result: Descriptor[] = [];
    for (const record of state.manifests.values()) {
      const info = await this.manifestInfo(record.digest);
      if (info?.parsed.subject?.digest !== subject) continue;
      const type = info.parsed.artifactType ?? info.parsed.config?.mediaType;
      if (artifactType !== undefined && type !== artifactType) continue;
      const descriptor: Descriptor = {
        mediaType: record.mediaType,
        digest: record.digest,
        size: record.size,
      };
      if (type !== undefined) descriptor.artifactType = type;
      if (info.parsed.annotations) descriptor.annotations = info.parsed.annotations;
      result.push(descriptor);
    }
    return result.sort((a, b) => (a.digest < b.digest ? -1 : 1));
  }

  // ---- pins and garbage collection

  /** Makes a manifest a garbage-collection root for `owner` until `unpin`. */
  async pin(owner: string, repository: string, digest: string): Promise<void> {
    assertOwner(owner);
    await this.lock.run(async () => {
      if (!this.state.repositories.get(repository)?.manifests.has(digest)) {
        throw manifestNotFound(repository, digest);
      }
      this.state.pins.set(pinKey(owner, repository, digest), { owner, repository, digest });
      await this.persist();
    });
  }

  async unpin(owner: string, repository: string, digest: string): Promise<void> {
    await this.lock.run(async () => {
      if (this.state.pins.delete(pinKey(owner, repository, digest))) await this.persist();
    });
  }

  listPins(): { owner: string; repository: string; digest: string }[] {
    return [...this.state.pins.values()].map((pin) => ({ ...pin }));
  }

  /**
   * Removes manifests and blobs that no tag or pin reaches (through index children and `subject`
   * links) and that are older than the grace period. Holds the write lock throughout.
   */
  async collectGarbage(options: { dryRun?: boolean } = {}): Promise<GarbageReport> {
    return this.lock.run(async () => {
      const now = Date.now();
      const dryRun = options.dryRun ?? false;
      const marked = await markGarbage({
        state: this.state,
        now,
        gracePeriodMs: this.gcGracePeriodMs,
        dryRun,
        manifestInfo: (digest, mediaType) => this.manifestInfo(digest, mediaType),
      });
      if (!dryRun && marked.removedManifests > 0) await this.persist();
      const swept = await sweepBlobs({
        root: this.root,
        keptBlobs: marked.keptBlobs,
        now,
        gracePeriodMs: this.gcGracePeriodMs,
        dryRun,
      });
      if (!dryRun) {
        for (const digest of marked.removedManifestDigests) this.infoCache.delete(digest);
        await this.uploads.removeStale();
      }
      return {
        removedBlobs: swept.removedBlobs,
        removedManifests: marked.removedManifests,
        freedBytes: swept.freedBytes,
      };
    });
  }

  async usage(): Promise<{ bytes: number; blobs: number }> {
    let bytes = 0;
    let blobs = 0;
    for (const algorithm of ['sha256', 'sha512']) {
      const directory = join(this.root, 'blobs', algorithm);
      for (const name of await readdir(directory)) {
        try {
          bytes += (await stat(join(directory, name))).size;
          blobs += 1;
        } catch (error) {
          if (!isNotFound(error)) throw error;
        }
      }
    }
    return { bytes, blobs };
  }

  /**
   * Checks that every recorded manifest, its blobs and its children are present and intact.
   * With `verifyBlobContent` it also rehashes every blob file. Returns the problems found.
   */
  async check(options: { verifyBlobContent?: boolean } = {}): Promise<ConsistencyProblem[]> {
    return this.lock.run(() =>
      checkLayout({
        root: this.root,
        state: this.state,
        verifyBlobContent: options.verifyBlobContent ?? false,
      }),
    );
  }
}

/** Pin owners appear in index.json annotations; printable text keeps that file readable. */
const OWNER_PATTERN = /^[\x21-\x7e]{1,200}$/;

function assertOwner(owner: string): void {
  if (!OWNER_PATTERN.test(owner)) {
    throw new TypeError(
      `invalid pin owner ${JSON.stringify(owner.slice(0, 200))}: use 1-200 printable ASCII characters without spaces`,
    );
  }
}
