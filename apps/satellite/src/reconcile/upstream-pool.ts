import type { DesiredUpstream } from '@edge/contract';
import { RegistryClient } from '@edge/oci';
import type { Descriptor, RepositoryRef } from '@edge/oci';
import type { Logger } from 'pino';
import type { DispatcherCache } from '../http-dispatcher.js';
import type { BandwidthLimiter } from '../limits.js';
import type { DownloadOptions, ManifestBytes, UpstreamSource } from './ports.js';

/**
 * One registry client per upstream of the desired state. Credentials are read through a
 * callback on every authentication, so a rotated credential in a new revision is used by the
 * next request without a new client or a restart.
 */
export class UpstreamPool {
  readonly #upstreams = new Map<string, DesiredUpstream>();
  readonly #sources = new Map<string, { key: string; source: UpstreamSource }>();

  constructor(
    private readonly deps: {
      dispatchers: DispatcherCache;
      bandwidth: BandwidthLimiter;
      logger: Logger;
    },
  ) {}

  update(upstreams: readonly DesiredUpstream[]): void {
    this.#upstreams.clear();
    for (const upstream of upstreams) this.#upstreams.set(upstream.id, upstream);
    for (const id of this.#sources.keys()) if (!this.#upstreams.has(id)) this.#sources.delete(id);
  }

  get(id: string): UpstreamSource | undefined {
    const upstream = this.#upstreams.get(id);
    if (!upstream) return undefined;
    const key = `${upstream.url}|${upstream.insecure ? 1 : 0}|${upstream.caBundle ?? ''}`;
    const cached = this.#sources.get(id);
    if (cached?.key === key) return cached.source;
    const source = this.#create(id, upstream);
    this.#sources.set(id, { key, source });
    return source;
  }

  async close(): Promise<void> {
    this.#sources.clear();
    return Promise.resolve();
  }

  #create(id: string, upstream: DesiredUpstream): UpstreamSource {
    const url = new URL(upstream.url);
    const host = url.host;
    const client = new RegistryClient({
      credentials: () => {
        const credential = this.#upstreams.get(id)?.credential;
        return credential
          ? { username: credential.username, password: credential.password }
          : undefined;
      },
      plainHttp: url.protocol === 'http:' ? [host] : false,
      dispatcher: this.deps.dispatchers.get({
        ...(upstream.caBundle ? { ca: upstream.caBundle } : {}),
        ...(upstream.insecure ? { insecure: true } : {}),
      }),
    });
    const bandwidth = this.deps.bandwidth;
    const ref = (repository: string): RepositoryRef => ({ registry: host, repository });
    return {
      async getManifest(repository, digest, signal): Promise<ManifestBytes> {
        const fetched = await client.getManifest(ref(repository), digest, { signal });
        return { bytes: fetched.bytes, mediaType: fetched.mediaType };
      },
      downloadBlob(
        repository: string,
        descriptor: Descriptor,
        options: DownloadOptions,
      ): Promise<string> {
        return client.downloadBlob(ref(repository), descriptor.digest, {
          partialDirectory: options.partialDir,
          size: descriptor.size,
          onProgress: options.onProgress,
          bandwidth,
          signal: options.signal,
          ...(options.sink !== undefined ? { sink: options.sink } : {}),
        });
      },
    };
  }
}
