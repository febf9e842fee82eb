import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { blobsOf, digestOf, parseDigest, parseManifest, type ParsedManifest } from '../oci.js';
import { hashFile } from './blob-files.js';
import { isNotFound } from './fs-atomic.js';
import type { LayoutState, ManifestRecord } from './layout-index.js';

export interface ConsistencyProblem {
  kind:
    | 'manifest-blob-missing'
    | 'manifest-digest-mismatch'
    | 'blob-missing'
    | 'blob-size-mismatch'
    | 'child-missing'
    | 'blob-digest-mismatch'
    | 'manifest-unparsable';
  repository?: string;
  digest: string;
  detail: string;
}

function blobPath(root: string, digest: string): string {
  const parsed = parseDigest(digest);
  return join(root, 'blobs', parsed.algorithm, parsed.hex);
}

async function statBlob(root: string, digest: string): Promise<{ size: number } | null> {
  try {
    return { size: (await stat(blobPath(root, digest))).size };
  } catch (error) {
    if (isNotFound(error)) return null;
    throw error;
  }
}

/**
 * Checks every manifest record of `state`: its blob is present and hashes to its digest, it
 * parses, its children are recorded and its blobs exist with the declared sizes. With
 * `verifyBlobContent` it also rehashes every blob file. The caller holds the store's lock.
 */
export async function checkLayout(input: {
  root: string;
  state: LayoutState;
  verifyBlobContent: boolean;
}): Promise<ConsistencyProblem[]> {
  const problems: ConsistencyProblem[] = [];
  for (const [name, repository] of input.state.repositories) {
    for (const record of repository.manifests.values()) {
      await checkRecord(input.root, name, record, repository.manifests, problems);
    }
  }
  if (!input.verifyBlobContent) return problems;
  for (const algorithm of ['sha256', 'sha512'] as const) {
    const directory = join(input.root, 'blobs', algorithm);
    for (const name of await readdir(directory)) {
      const written = await hashFile(join(directory, name), algorithm);
      if (written.digest !== `${algorithm}:${name}`) {
        problems.push({
          kind: 'blob-digest-mismatch',
          digest: `${algorithm}:${name}`,
          detail: `content hashes to ${written.digest}`,
        });
      }
    }
  }
  return problems;
}

async function checkRecord(
  root: string,
  repository: string,
  record: ManifestRecord,
  records: Map<string, ManifestRecord>,
  problems: ConsistencyProblem[],
): Promise<void> {
  let bytes: Buffer;
  try {
    bytes = await readFile(blobPath(root, record.digest));
  } catch (error) {
    if (!isNotFound(error)) throw error;
    problems.push({
      kind: 'manifest-blob-missing',
      repository,
      digest: record.digest,
      detail: 'manifest blob file is missing',
    });
    return;
  }
  const algorithm = parseDigest(record.digest).algorithm;
  if (digestOf(bytes, algorithm) !== record.digest) {
    problems.push({
      kind: 'manifest-digest-mismatch',
      repository,
      digest: record.digest,
      detail: 'manifest bytes hash to another digest',
    });
    return;
  }
  let parsed: ParsedManifest;
  try {
    parsed = parseManifest(bytes, record.mediaType);
  } catch (error) {
    problems.push({
      kind: 'manifest-unparsable',
      repository,
      digest: record.digest,
      detail: String(error),
    });
    return;
  }
  for (const child of parsed.manifests) {
    if (!records.has(child.digest)) {
      problems.push({
        kind: 'child-missing',
        repository,
        digest: child.digest,
        detail: `child of ${record.digest}`,
      });
    }
  }
  for (const blob of blobsOf(parsed)) {
    if (blob.urls !== undefined && blob.urls.length > 0) continue;
    const found = await statBlob(root, blob.digest);
    if (!found) {
      problems.push({
        kind: 'blob-missing',
        repository,
        digest: blob.digest,
        detail: `used by ${record.digest}`,
      });
    } else if (found.size !== blob.size) {
      problems.push({
        kind: 'blob-size-mismatch',
        repository,
        digest: blob.digest,
        detail: `${found.size} bytes, descriptor says ${blob.size}`,
      });
    }
  }
}
