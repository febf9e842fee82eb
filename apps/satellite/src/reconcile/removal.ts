import type { DesiredState } from '@edge/contract';
import type { Logger } from 'pino';
import { errorMessage } from '../errors.js';
import type { Placement, PlacementStore } from '../placements.js';
import type { LocalRegistry } from './ports.js';

export interface RemovalResult {
  removed: number;
  /** Placed artifacts kept because tags the satellite did not set point at them. */
  kept: number;
  freedBytes: number;
  /** False when removals happened but garbage collection was deferred. */
  collected: boolean;
  /** When the next unassigned artifact's grace period ends, in ms since the epoch. */
  nextRemovalAt: number | null;
}

/**
 * Removes artifacts that this satellite placed and that left the desired state at least
 * `gracePeriodMs` ago. Content without a placement record is never touched.
 *
 * On an external CNCF Distribution, deleting a manifest by digest removes every tag that points
 * at it, and tags cannot be deleted alone. So the satellite first lists the tags on that digest,
 * and keeps the manifest when any of them was not set by the satellite. Distribution never frees
 * blob space on delete; its own offline `garbage-collect` does.
 */
export async function removeUnassigned(input: {
  state: DesiredState;
  local: LocalRegistry;
  placements: PlacementStore;
  gracePeriodMs: number;
  logger: Logger;
  /** Run garbage collection after removals; false defers it to a later call. */
  collect: boolean;
  now?: number;
}): Promise<RemovalResult> {
  const { state, local, placements, logger } = input;
  const now = input.now ?? Date.now();
  const desired = new Set<string>();
  for (const artifact of state.artifacts) {
    desired.add(`${artifact.localRepository}@${artifact.digest}`);
    for (const referrer of artifact.referrers) {
      desired.add(`${artifact.localRepository}@${referrer.digest}`);
    }
  }
  // Digests still needed as children of desired indexes in the same repository.
  const stillNeeded = new Set(desired);
  for (const placement of placements.all()) {
    if (desired.has(`${placement.localRepository}@${placement.digest}`)) {
      for (const child of [...placement.childDigests, ...placement.referrerDigests]) {
        stillNeeded.add(`${placement.localRepository}@${child}`);
      }
    }
  }

  const result: RemovalResult = {
    removed: 0,
    kept: 0,
    freedBytes: 0,
    collected: false,
    nextRemovalAt: null,
  };
  const noteNextRemoval = (at: number): void => {
    result.nextRemovalAt = Math.min(result.nextRemovalAt ?? Infinity, at);
  };
  for (const placement of placements.all()) {
    const key = `${placement.localRepository}@${placement.digest}`;
    if (desired.has(key)) {
      if (placement.unassignedSince !== null) {
        await placements.upsert({ ...placement, unassignedSince: null });
      }
      continue;
    }
    if (placement.unassignedSince === null) {
      await placements.upsert({ ...placement, unassignedSince: new Date(now).toISOString() });
      logger.info(
        {
          repository: placement.localRepository,
          digest: placement.digest,
          gracePeriodMs: input.gracePeriodMs,
        },
        'artifact left the desired state; removal after the grace period',
      );
      if (input.gracePeriodMs > 0) {
        noteNextRemoval(now + input.gracePeriodMs);
        continue;
      }
    } else if (now - Date.parse(placement.unassignedSince) < input.gracePeriodMs) {
      noteNextRemoval(Date.parse(placement.unassignedSince) + input.gracePeriodMs);
      continue;
    }
    try {
      const removed = await removePlacement(placement, local, placements, stillNeeded, logger);
      if (removed) result.removed += 1;
      else result.kept += 1;
    } catch (error) {
      logger.warn(
        { err: error, repository: placement.localRepository, digest: placement.digest },
        `removal failed; retrying on the next reconcile: ${errorMessage(error)}`,
      );
    }
  }
  if (result.removed > 0 && input.collect) {
    const collected = await local.collectGarbage();
    result.freedBytes = collected.freedBytes;
    result.collected = true;
    logger.info({ removed: result.removed, bytes: collected.freedBytes }, 'garbage collected');
  }
  return result;
}

async function removePlacement(
  placement: Placement,
  local: LocalRegistry,
  placements: PlacementStore,
  stillNeeded: Set<string>,
  logger: Logger,
): Promise<boolean> {
  const repository = placement.localRepository;
  const log = logger.child({ repository, digest: placement.digest });
  const targets = placement.reduced ? placement.childDigests : [placement.digest];
  for (const digest of targets) {
    const foreign = (await local.tagsPointingAt(repository, digest)).filter(
      (tag) => !placement.tags.includes(tag),
    );
    if (foreign.length > 0) {
      log.warn(
        { foreignTags: foreign },
        'artifact kept: tags the satellite did not set point at it, and deleting the manifest would remove them',
      );
      return false;
    }
  }

  for (const digest of [
    placement.digest,
    ...placement.childDigests,
    ...placement.referrerDigests,
  ]) {
    await local.unpin(repository, digest);
  }

  for (const digest of targets) {
    if (!(await local.hasManifest(repository, digest))) continue;
    await local.deleteManifest(repository, digest);
  }

  // Referrers and index children go too, unless a desired artifact still needs them.
  // NOTE: on an external registry the sha256-<hex> referrers fallback index stays behind.
  const extra = [
    ...placement.referrerDigests,
    ...(placement.reduced ? [] : placement.childDigests),
  ];
  for (const digest of extra) {
    if (stillNeeded.has(`${repository}@${digest}`)) continue;
    if (!(await local.hasManifest(repository, digest))) continue;
    if ((await local.tagsPointingAt(repository, digest)).length > 0) continue;
    await local.deleteManifest(repository, digest);
  }

  await placements.remove(repository, placement.digest);
  log.info('placed artifact removed');
  return true;
}
