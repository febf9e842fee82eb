import { join } from 'node:path';
import { writeFileAtomic } from '../files.js';
import type { DemoImage } from './build.js';

/**
 * Writes `oci-layout` and an `index.json` that tags each image with the standard
 * `org.opencontainers.image.ref.name` annotation (`<repository>:<tag>`), so that OCI tools such as
 * `skopeo inspect oci:<dir>:<repository>:<tag>` read the layout directly.
 */
export async function writeLayoutIndex(
  layoutDir: string,
  images: readonly DemoImage[],
): Promise<void> {
  await writeFileAtomic(join(layoutDir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  const index = {
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.index.v1+json',
    manifests: images.map((image) => ({
      mediaType: image.mediaType,
      digest: image.digest,
      size: image.size,
      annotations: { 'org.opencontainers.image.ref.name': `${image.repository}:${image.tag}` },
    })),
  };
  await writeFileAtomic(join(layoutDir, 'index.json'), JSON.stringify(index));
}
