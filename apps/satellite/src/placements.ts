import { z } from 'zod';
import { readJsonFile, writeJsonAtomic } from './atomic-file.js';
import type { DataDirLayout } from './data-dir.js';

/**
 * Record of one artifact the satellite wrote to the local registry. Only recorded artifacts are
 * ever removed; content placed by anyone else is left alone. A record is written before the
 * manifest is put, so a crash in between leaves a record for an absent manifest, which removal
 * treats as already gone.
 */
const placementSchema = z.object({
  localRepository: z.string(),
  digest: z.string(),
  /** Tags the satellite set on this digest. */
  tags: z.array(z.string()),
  /** Child manifests put by digest for an index, and referrer manifests. */
  childDigests: z.array(z.string()),
  referrerDigests: z.array(z.string()),
  /** True when a platform filter left the index out and only matching children were written. */
  reduced: z.boolean(),
  placedAt: z.string(),
  /** When the artifact left the desired state; removal waits the grace period from here. */
  unassignedSince: z.string().nullable(),
});
export type Placement = z.infer<typeof placementSchema>;

const placementsFileSchema = z.object({ placements: z.array(placementSchema) });

export function placementKey(localRepository: string, digest: string): string {
  return `${localRepository}@${digest}`;
}

/** Placement records kept in one JSON file, rewritten atomically on every change. */
export class PlacementStore {
  readonly #records = new Map<string, Placement>();
  #writing: Promise<void> = Promise.resolve();

  private constructor(private readonly path: string) {}

  static async open(layout: DataDirLayout): Promise<PlacementStore> {
    const store = new PlacementStore(layout.placementsFile);
    const raw = await readJsonFile(layout.placementsFile);
    if (raw !== undefined) {
      for (const record of placementsFileSchema.parse(raw).placements) {
        store.#records.set(placementKey(record.localRepository, record.digest), record);
      }
    }
    return store;
  }

  get(localRepository: string, digest: string): Placement | undefined {
    return this.#records.get(placementKey(localRepository, digest));
  }

  all(): Placement[] {
    return [...this.#records.values()];
  }

  async upsert(record: Placement): Promise<void> {
    this.#records.set(placementKey(record.localRepository, record.digest), record);
    await this.#save();
  }

  async remove(localRepository: string, digest: string): Promise<void> {
    this.#records.delete(placementKey(localRepository, digest));
    await this.#save();
  }

  #save(): Promise<void> {
    // Writes are chained so that a later snapshot never lands before an earlier one.
    const write = this.#writing.then(() => writeJsonAtomic(this.path, { placements: this.all() }));
    this.#writing = write.catch(() => undefined);
    return write;
  }
}
