import { z } from 'zod';
import { MediaType } from '../oci.js';

/**
 * Annotation keys that this store writes into the OCI layout's `index.json`. The standard
 * `org.opencontainers.image.ref.name` carries `<repository>:<tag>`, so `skopeo copy
 * oci:<root>:<repository>:<tag>` finds a tagged manifest; the other keys record what the image
 * layout itself has no field for.
 */
export const Annotation = {
  refName: 'org.opencontainers.image.ref.name',
  kind: 'org.edge-images.registry.kind',
  repository: 'org.edge-images.registry.repository',
  tag: 'org.edge-images.registry.tag',
  created: 'org.edge-images.registry.created',
  owner: 'org.edge-images.registry.pinned-by',
} as const;

export interface ManifestRecord {
  digest: string;
  mediaType: string;
  size: number;
  createdMs: number;
}

export interface RepositoryState {
  manifests: Map<string, ManifestRecord>;
  tags: Map<string, string>;
}

export interface Pin {
  owner: string;
  repository: string;
  digest: string;
}

/** The whole mutable state of the store; `index.json` is its only persistent form. */
export interface LayoutState {
  repositories: Map<string, RepositoryState>;
  pins: Map<string, Pin>;
  /** Entries written by other tools (no kind annotation); kept as they are and treated as GC roots. */
  foreign: IndexEntry[];
}

const entrySchema = z.looseObject({
  mediaType: z.string(),
  digest: z.string(),
  size: z.number().int().nonnegative(),
  annotations: z.record(z.string(), z.string()).optional(),
});
export type IndexEntry = z.infer<typeof entrySchema>;

const indexFileSchema = z.looseObject({
  schemaVersion: z.literal(2),
  manifests: z.array(entrySchema),
});

export function pinKey(owner: string, repository: string, digest: string): string {
  return `${owner}\u0000${repository}\u0000${digest}`;
}

export function emptyState(): LayoutState {
  return { repositories: new Map(), pins: new Map(), foreign: [] };
}

export function repositoryOf(state: LayoutState, name: string): RepositoryState {
  let repository = state.repositories.get(name);
  if (!repository) {
    repository = { manifests: new Map(), tags: new Map() };
    state.repositories.set(name, repository);
  }
  return repository;
}

/** Parses `index.json`; throws with the zod issue when the file is not an OCI index. */
export function parseIndexFile(text: string): LayoutState {
  const file = indexFileSchema.parse(JSON.parse(text));
  const state = emptyState();
  const tagEntries: IndexEntry[] = [];
  const pinEntries: IndexEntry[] = [];
  for (const entry of file.manifests) {
    const annotations = entry.annotations ?? {};
    const kind = annotations[Annotation.kind];
    const repository = annotations[Annotation.repository];
    if (kind === 'manifest' && repository !== undefined) {
      const created = Date.parse(annotations[Annotation.created] ?? '');
      repositoryOf(state, repository).manifests.set(entry.digest, {
        digest: entry.digest,
        mediaType: entry.mediaType,
        size: entry.size,
        createdMs: Number.isFinite(created) ? created : 0,
      });
    } else if (kind === 'tag' && repository !== undefined) {
      tagEntries.push(entry);
    } else if (kind === 'pin' && repository !== undefined) {
      pinEntries.push(entry);
    } else {
      state.foreign.push(entry);
    }
  }
  // Tags and pins only count for manifests recorded in their repository.
  for (const entry of tagEntries) {
    const annotations = entry.annotations ?? {};
    const repository = state.repositories.get(annotations[Annotation.repository] ?? '');
    const tag = annotations[Annotation.tag];
    if (repository?.manifests.has(entry.digest) && tag !== undefined) {
      repository.tags.set(tag, entry.digest);
    }
  }
  for (const entry of pinEntries) {
    const annotations = entry.annotations ?? {};
    const name = annotations[Annotation.repository] ?? '';
    const owner = annotations[Annotation.owner];
    if (state.repositories.get(name)?.manifests.has(entry.digest) && owner !== undefined) {
      state.pins.set(pinKey(owner, name, entry.digest), {
        owner,
        repository: name,
        digest: entry.digest,
      });
    }
  }
  return state;
}

function compareText(a: string, b: string): number {
  if (a < b) return -1;
  if (a > b) return 1;
  return 0;
}

/** Serialises the state as an OCI image index, sorted so that equal states give equal bytes. */
export function serializeIndexFile(state: LayoutState): string {
  const entries: IndexEntry[] = [];
  const names = [...state.repositories.keys()].sort(compareText);
  for (const name of names) {
    const repository = state.repositories.get(name);
    if (!repository) continue;
    const records = [...repository.manifests.values()].sort((a, b) =>
      compareText(a.digest, b.digest),
    );
    for (const record of records) {
      entries.push({
        mediaType: record.mediaType,
        digest: record.digest,
        size: record.size,
        annotations: {
          [Annotation.kind]: 'manifest',
          [Annotation.repository]: name,
          [Annotation.created]: new Date(record.createdMs).toISOString(),
        },
      });
    }
    const tags = [...repository.tags.entries()].sort((a, b) => compareText(a[0], b[0]));
    for (const [tag, digest] of tags) {
      const record = repository.manifests.get(digest);
      if (!record) continue;
      entries.push({
        mediaType: record.mediaType,
        digest,
        size: record.size,
        annotations: {
          [Annotation.refName]: `${name}:${tag}`,
          [Annotation.kind]: 'tag',
          [Annotation.repository]: name,
          [Annotation.tag]: tag,
        },
      });
    }
  }
  const pins = [...state.pins.entries()].sort((a, b) => compareText(a[0], b[0]));
  for (const [, pin] of pins) {
    const record = state.repositories.get(pin.repository)?.manifests.get(pin.digest);
    if (!record) continue;
    entries.push({
      mediaType: record.mediaType,
      digest: pin.digest,
      size: record.size,
      annotations: {
        [Annotation.kind]: 'pin',
        [Annotation.repository]: pin.repository,
        [Annotation.owner]: pin.owner,
      },
    });
  }
  entries.push(...state.foreign);
  const index = { schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: entries };
  return `${JSON.stringify(index, null, 1)}\n`;
}
