import type { Descriptor } from '@edge/oci';
import { OciStore, startRegistryServer } from '@edge/registry';
import type { RunningRegistryServer } from '@edge/registry';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { LocalRegistry, ManifestBytes } from './ports.js';

/** Pin owner of everything the satellite places, so GC roots of other owners stay distinct. */
export const PIN_OWNER = 'satellite';

/**
 * The in-process registry: an OciStore written directly (no HTTP on the copy path) and, for
 * `run`, an HTTP server that runtimes pull from.
 */
export class EmbeddedRegistry implements LocalRegistry {
  readonly kind = 'embedded';
  #server: RunningRegistryServer | undefined;

  private constructor(readonly store: OciStore) {}

  /**
   * Opens the store. The GC grace period is zero because the satellite runs garbage collection
   * only between reconciles, when no adopted blob is waiting for its manifest.
   */
  static async open(storeDir: string): Promise<EmbeddedRegistry> {
    const store = await OciStore.open(storeDir, { gcGracePeriodMs: 0, collectAfterDelete: false });
    return new EmbeddedRegistry(store);
  }

  get url(): string | null {
    return this.#server?.url ?? null;
  }

  /** Serves the store read-only over the OCI distribution API. */
  async listen(
    address: { host: string; port: number },
    logger: Logger,
    metricsRegistry: Registry,
  ): Promise<string> {
    this.#server = await startRegistryServer({
      store: this.store,
      push: false,
      logger: logger.child({ component: 'registry' }),
      metricsRegistry,
      listen: address,
    });
    return this.#server.url;
  }

  hasManifest(repository: string, digest: string): Promise<boolean> {
    return Promise.resolve(this.store.statManifest(repository, digest) !== null);
  }

  resolveTag(repository: string, tag: string): Promise<string | undefined> {
    return Promise.resolve(this.store.statManifest(repository, tag)?.digest);
  }

  hasBlob(_repository: string, digest: string): Promise<boolean> {
    return this.store.hasBlob(digest);
  }

  /** Blobs are shared by all repositories of the store, so there is nothing more to link. */
  linkBlob(_repository: string, descriptor: Descriptor): Promise<boolean> {
    return this.store.hasBlob(descriptor.digest);
  }

  async putBlobFile(_repository: string, descriptor: Descriptor, path: string): Promise<void> {
    await this.store.adoptBlobFile(path, descriptor.digest, descriptor.size);
  }

  async putManifest(repository: string, reference: string, manifest: ManifestBytes): Promise<void> {
    await this.store.putManifest(repository, reference, manifest.bytes, manifest.mediaType);
  }

  async setTag(repository: string, tag: string, digest: string): Promise<void> {
    await this.store.setTag(repository, tag, digest);
  }

  publishReferrers(): Promise<void> {
    return Promise.resolve();
  }

  async pin(repository: string, digest: string): Promise<void> {
    await this.store.pin(PIN_OWNER, repository, digest);
  }

  async unpin(repository: string, digest: string): Promise<void> {
    await this.store.unpin(PIN_OWNER, repository, digest);
  }

  async tagsPointingAt(repository: string, digest: string): Promise<string[]> {
    const manifests = await this.store.listManifests(repository);
    return manifests.find((entry) => entry.digest === digest)?.tags ?? [];
  }

  async deleteTag(repository: string, tag: string): Promise<boolean> {
    await this.store.deleteTag(repository, tag);
    return true;
  }

  async deleteManifest(repository: string, digest: string): Promise<void> {
    await this.store.deleteManifest(repository, digest);
  }

  async collectGarbage(): Promise<{ freedBytes: number }> {
    const report = await this.store.collectGarbage();
    return { freedBytes: report.freedBytes };
  }

  async usedBytes(): Promise<number> {
    return (await this.store.usage()).bytes;
  }

  async close(): Promise<void> {
    await this.#server?.close();
    this.#server = undefined;
    await closeStore(this.store);
  }
}

/**
 * Releases the store's process lock. Older @edge/registry builds have no lock and no `close`,
 * so the call is optional.
 */
export async function closeStore(store: OciStore): Promise<void> {
  const closable = store as { close?: () => Promise<void> };
  await closable.close?.();
}
