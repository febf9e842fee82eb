import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCommand } from '../src/index.js';
import type { RegistryHandle } from '../src/index.js';

/**
 * Pulls `ref` from the registry into a fresh OCI layout with `skopeo copy` and returns the
 * manifest digest that skopeo wrote into the layout's index.json.
 */
export async function skopeoPullDigest(registry: RegistryHandle, ref: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'testkit-pull-'));
  try {
    const creds =
      registry.username === undefined
        ? []
        : ['--src-creds', `${registry.username}:${registry.password}`];
    await runCommand('skopeo', [
      'copy',
      '--quiet',
      '--preserve-digests',
      '--src-tls-verify=false',
      ...creds,
      `docker://${registry.host}/${ref}`,
      `oci:${join(dir, 'layout')}:pulled`,
    ]);
    const index = JSON.parse(await readFile(join(dir, 'layout', 'index.json'), 'utf8')) as {
      manifests: { digest: string }[];
    };
    const digest = index.manifests[0]?.digest;
    if (!digest) throw new Error(`skopeo wrote no manifest for ${ref}`);
    return digest;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
