import type { RegistryClient } from '../src/index.js';

/** Reads the largest layer of `test/large:1` from a registry that contains the test kit's images. */
export async function largestLayer(
  client: RegistryClient,
  registryHost: string,
): Promise<{ digest: string; size: number }> {
  const manifest = await client.getManifest(
    { registry: registryHost, repository: 'test/large' },
    '1',
  );
  if (manifest.manifest.kind !== 'image') throw new Error('large:1 is not an image');
  const largest = [...manifest.manifest.layers].sort((a, b) => b.size - a.size)[0];
  if (largest === undefined) throw new Error('large:1 has no layers');
  return { digest: largest.digest, size: largest.size };
}
