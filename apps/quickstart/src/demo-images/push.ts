import type { RegistryClient } from '@edge/oci';
import { blobPath } from './blobs.js';
import type { DemoImageSet } from './build.js';
import { readFile } from 'node:fs/promises';

/**
 * Pushes every demo image into `registry` (host and port): blobs the repository lacks, then index
 * children by digest, then the tagged manifest, the order registries require. Returns the pushed
 * references.
 */
export async function pushDemoImages(
  client: RegistryClient,
  registry: string,
  set: DemoImageSet,
): Promise<string[]> {
  const pushed: string[] = [];
  for (const image of set.images) {
    const repo = { registry, repository: image.repository };
    for (const blob of image.blobs) {
      const present = await client.headBlob(repo, blob.digest);
      if (present?.size === blob.size) continue;
      await client.uploadBlob(repo, blob.digest, { file: blobPath(set.layoutDir, blob.digest) });
    }
    for (const child of image.children) {
      // Manifests are a few hundred bytes, so reading them whole is fine.
      const bytes = await readFile(blobPath(set.layoutDir, child.digest));
      await client.putManifest(repo, child.digest, bytes, child.mediaType);
    }
    const bytes = await readFile(blobPath(set.layoutDir, image.digest));
    await client.putManifest(repo, image.tag, bytes, image.mediaType);
    pushed.push(`${registry}/${image.repository}:${image.tag}`);
  }
  return pushed;
}
