import { MediaType, RegistryClient, isOciError, referrersTag } from '@edge/oci';
import type { Credentials, Descriptor, RepositoryRef, StreamedUpload } from '@edge/oci';
import type { Dispatcher } from 'undici';
import type { LocalRegistry, ManifestBytes } from './ports.js';

/**
 * An external site registry (CNCF Distribution, Zot) reached over the OCI distribution API. Blobs
 * are pushed, or mounted across repositories when the registry already contains them.
 *
 * CNCF Distribution 2.8 facts that shape removal: deleting a manifest by digest removes every tag
 * that points at it, a tag cannot be deleted alone, and deletes never free blob space (its
 * offline `garbage-collect` does).
 */
export class ExternalRegistry implements LocalRegistry {
  readonly kind = 'external';
  readonly url: string;
  readonly #client: RegistryClient;
  readonly #host: string;
  /** A repository known to hold each blob, as the source of cross-repository mounts. */
  readonly #blobHomes = new Map<string, string>();

  constructor(options: { url: string; credentials?: Credentials; dispatcher: Dispatcher }) {
    const url = new URL(options.url);
    this.url = options.url;
    this.#host = url.host;
    this.#client = new RegistryClient({
      ...(options.credentials ? { credentials: { [url.host]: options.credentials } } : {}),
      plainHttp: url.protocol === 'http:' ? [url.host] : false,
      dispatcher: options.dispatcher,
    });
  }

  #ref(repository: string): RepositoryRef {
    return { registry: this.#host, repository };
  }

  async hasManifest(repository: string, digest: string): Promise<boolean> {
    return (await this.#headManifest(repository, digest)) !== undefined;
  }

  async resolveTag(repository: string, tag: string): Promise<string | undefined> {
    return (await this.#headManifest(repository, tag))?.digest;
  }

  async hasBlob(repository: string, digest: string): Promise<boolean> {
    const head = await this.#client.headBlob(this.#ref(repository), digest);
    if (head) this.#blobHomes.set(digest, repository);
    return head !== undefined;
  }

  async linkBlob(repository: string, descriptor: Descriptor): Promise<boolean> {
    const home = this.#blobHomes.get(descriptor.digest);
    if (!home || home === repository) return false;
    const result = await this.#client.mountBlob(this.#ref(repository), descriptor.digest, home);
    return result.mounted;
  }

  /** Streams the download into an upload session that is committed after the digest check. */
  openBlobSink(repository: string, descriptor: Descriptor, signal: AbortSignal): StreamedUpload {
    const upload = this.#client.openStreamedUpload(
      this.#ref(repository),
      descriptor.digest,
      signal,
    );
    const homes = this.#blobHomes;
    return {
      get committed() {
        return upload.committed;
      },
      get error() {
        return upload.error;
      },
      begin: () => upload.begin(),
      write: (chunk) => upload.write(chunk),
      commit: async () => {
        await upload.commit();
        homes.set(descriptor.digest, repository);
      },
      abort: () => upload.abort(),
    };
  }

  async putBlobFile(repository: string, descriptor: Descriptor, path: string): Promise<void> {
    await this.#client.uploadBlob(this.#ref(repository), descriptor.digest, { file: path });
    this.#blobHomes.set(descriptor.digest, repository);
  }

  async putManifest(repository: string, reference: string, manifest: ManifestBytes): Promise<void> {
    await this.#client.putManifest(
      this.#ref(repository),
      reference,
      manifest.bytes,
      manifest.mediaType,
    );
  }

  /** Distribution has no tag API of its own: a tag is set by putting the same bytes by tag. */
  async setTag(
    repository: string,
    tag: string,
    _digest: string,
    manifest: ManifestBytes,
  ): Promise<void> {
    await this.putManifest(repository, tag, manifest);
  }

  /**
   * Merges the referrers into the `sha256-<hex>` fallback index of the subject, keeping entries
   * that others put there. Distribution 2.8 has no referrers API, so clients look for this tag.
   */
  async publishReferrers(
    repository: string,
    subject: string,
    referrers: Descriptor[],
  ): Promise<void> {
    const tag = referrersTag(subject);
    let existing: Descriptor[] = [];
    if (await this.#headManifest(repository, tag)) {
      const fetched = await this.#client.getManifest(this.#ref(repository), tag);
      if (fetched.manifest.kind === 'index') existing = fetched.manifest.manifests;
    }
    const known = new Set(existing.map((descriptor) => descriptor.digest));
    const added = referrers.filter((descriptor) => !known.has(descriptor.digest));
    if (added.length === 0) return;
    const index = {
      schemaVersion: 2,
      mediaType: MediaType.OciIndex,
      manifests: [...existing, ...added],
    };
    await this.putManifest(repository, tag, {
      bytes: Buffer.from(JSON.stringify(index)),
      mediaType: MediaType.OciIndex,
    });
  }

  /** External registries have no pins; their own GC policy decides what stays. */
  pin(): Promise<void> {
    return Promise.resolve();
  }

  unpin(): Promise<void> {
    return Promise.resolve();
  }

  async tagsPointingAt(repository: string, digest: string): Promise<string[]> {
    let tags: string[];
    try {
      tags = await this.#client.listTags(this.#ref(repository));
    } catch (error) {
      if (isOciError(error, 'NAME_UNKNOWN')) return [];
      throw error;
    }
    const matching: string[] = [];
    for (const tag of tags) {
      if ((await this.#headManifest(repository, tag))?.digest === digest) matching.push(tag);
    }
    return matching;
  }

  /** Distribution 2.8 rejects tag deletes, so the caller must delete by digest instead. */
  deleteTag(): Promise<boolean> {
    return Promise.resolve(false);
  }

  async deleteManifest(repository: string, digest: string): Promise<void> {
    await this.#client.deleteManifest(this.#ref(repository), digest);
  }

  /** Blob space on Distribution is freed only by its offline garbage-collect command. */
  collectGarbage(): Promise<{ freedBytes: number }> {
    return Promise.resolve({ freedBytes: 0 });
  }

  // NOTE: the distribution API does not report storage use, so external registries report 0.
  usedBytes(): Promise<number> {
    return Promise.resolve(0);
  }

  close(): Promise<void> {
    return Promise.resolve();
  }

  async #headManifest(
    repository: string,
    reference: string,
  ): Promise<{ digest?: string } | undefined> {
    try {
      return await this.#client.headManifest(this.#ref(repository), reference);
    } catch (error) {
      if (isOciError(error, 'MANIFEST_UNKNOWN') || isOciError(error, 'NAME_UNKNOWN'))
        return undefined;
      throw error;
    }
  }
}
