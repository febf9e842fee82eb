import { readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { ParsedManifest } from '../oci.js';
import type { LayoutState } from './layout-index.js';

export interface GarbageReport {
  removedBlobs: number;
  removedManifests: number;
  freedBytes: number;
}

interface CollectInput {
  state: LayoutState;
  now: number;
  gracePeriodMs: number;
  dryRun: boolean;
  manifestInfo: (digest: string, mediaType: string) => Promise<{ parsed: ParsedManifest } | null>;
}

/**
 * Collects the blobs that index.json entries of other tools reach: each entry's manifest, its
 * config and layers, and for an index its children, recursively.
 */
async function foreignContent(input: CollectInput): Promise<Set<string>> {
  const kept = new Set<string>();
  const pending = input.state.foreign.map((entry) => ({
    digest: entry.digest,
    mediaType: entry.mediaType,
  }));
  while (pending.length > 0) {
    const next = pending.pop() as { digest: string; mediaType: string };
    if (kept.has(next.digest)) continue;
    kept.add(next.digest);
    const parsed = (await input.manifestInfo(next.digest, next.mediaType))?.parsed;
    if (parsed?.config) kept.add(parsed.config.digest);
    for (const layer of parsed?.layers ?? []) kept.add(layer.digest);
    for (const child of parsed?.manifests ?? [])
      pending.push({ digest: child.digest, mediaType: child.mediaType });
  }
  return kept;
}

export interface MarkResult {
  removedManifests: number;
  removedManifestDigests: string[];
  /** Digests of manifests, configs and layers that kept manifests use. */
  keptBlobs: Set<string>;
}

/**
 * Marks what tags, pins, foreign index entries and young records reach, following index children
 * and referrers (`subject`) inside each repository, and drops the unmarked manifest records from
 * `state` (unless `dryRun`). The caller persists `state` before `sweepBlobs`, so a crash between
 * the two leaves unreferenced blobs behind, never a record whose blobs are gone.
 */
export async function markGarbage(input: CollectInput): Promise<MarkResult> {
  const { state, now, gracePeriodMs } = input;
  const keptBlobs = await foreignContent(input);
  const removedManifestDigests: string[] = [];
  let removedManifests = 0;

  for (const [name, repository] of state.repositories) {
    const infos = new Map<string, ParsedManifest | null>();
    for (const record of repository.manifests.values()) {
      infos.set(
        record.digest,
        (await input.manifestInfo(record.digest, record.mediaType))?.parsed ?? null,
      );
    }
    const referrersOf = new Map<string, string[]>();
    for (const [digest, parsed] of infos) {
      const subject = parsed?.subject?.digest;
      if (subject === undefined) continue;
      referrersOf.set(subject, [...(referrersOf.get(subject) ?? []), digest]);
    }

    const roots = new Set<string>(repository.tags.values());
    for (const pin of state.pins.values()) if (pin.repository === name) roots.add(pin.digest);
    for (const record of repository.manifests.values()) {
      if (now - record.createdMs < gracePeriodMs) roots.add(record.digest);
    }
    const kept = new Set<string>();
    const pending = [...roots];
    while (pending.length > 0) {
      const digest = pending.pop() as string;
      if (kept.has(digest) || !repository.manifests.has(digest)) continue;
      kept.add(digest);
      const parsed = infos.get(digest);
      for (const child of parsed?.manifests ?? []) pending.push(child.digest);
      pending.push(...(referrersOf.get(digest) ?? []));
    }

    for (const record of repository.manifests.values()) {
      if (kept.has(record.digest)) {
        keptBlobs.add(record.digest);
        const parsed = infos.get(record.digest);
        if (parsed?.config) keptBlobs.add(parsed.config.digest);
        for (const layer of parsed?.layers ?? []) keptBlobs.add(layer.digest);
      } else {
        removedManifests += 1;
        removedManifestDigests.push(record.digest);
        if (!input.dryRun) repository.manifests.delete(record.digest);
      }
    }
    if (!input.dryRun) {
      for (const [tag, digest] of repository.tags)
        if (!repository.manifests.has(digest)) repository.tags.delete(tag);
      if (repository.manifests.size === 0) state.repositories.delete(name);
    }
  }

  return { removedManifests, removedManifestDigests, keptBlobs };
}

/** Deletes blob files outside `keptBlobs` whose mtime is older than the grace period. */
export async function sweepBlobs(input: {
  root: string;
  keptBlobs: Set<string>;
  now: number;
  gracePeriodMs: number;
  dryRun: boolean;
}): Promise<{ removedBlobs: number; freedBytes: number }> {
  const { keptBlobs, now, gracePeriodMs } = input;
  let removedBlobs = 0;
  let freedBytes = 0;
  for (const algorithm of ['sha256', 'sha512']) {
    const directory = join(input.root, 'blobs', algorithm);
    for (const name of await readdir(directory)) {
      if (keptBlobs.has(`${algorithm}:${name}`)) continue;
      const path = join(directory, name);
      const info = await stat(path).catch(() => null);
      if (!info || now - info.mtimeMs < gracePeriodMs) continue;
      removedBlobs += 1;
      freedBytes += info.size;
      if (!input.dryRun) await rm(path, { force: true });
    }
  }
  return { removedBlobs, freedBytes };
}
