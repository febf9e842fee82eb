import { desiredStateSchema } from '@edge/contract';
import type { DesiredState } from '@edge/contract';
import { z } from 'zod';
import { readJsonFile, writeJsonAtomic } from './atomic-file.js';
import type { DataDirLayout } from './data-dir.js';
import { SatelliteError } from './errors.js';

const storedStateSchema = z.object({
  etag: z.string().optional(),
  receivedAt: z.string(),
  state: desiredStateSchema,
});
export type StoredDesiredState = z.infer<typeof storedStateSchema>;

/** Loads the last desired state received, so a restart while offline keeps the site in shape. */
export async function loadDesiredState(
  layout: DataDirLayout,
): Promise<StoredDesiredState | undefined> {
  let raw: unknown;
  try {
    raw = await readJsonFile(layout.desiredStateFile);
  } catch (error) {
    throw new SatelliteError(
      'STATE_FILE_INVALID',
      `The stored desired state ${layout.desiredStateFile} is not valid JSON. Remove it; the satellite fetches a new one from Ground Control.`,
      { cause: error },
    );
  }
  if (raw === undefined) return undefined;
  const parsed = storedStateSchema.safeParse(raw);
  if (!parsed.success) {
    throw new SatelliteError(
      'STATE_FILE_INVALID',
      `The stored desired state ${layout.desiredStateFile} does not match the protocol schema. Remove it; the satellite fetches a new one from Ground Control.`,
    );
  }
  return parsed.data;
}

export async function saveDesiredState(
  layout: DataDirLayout,
  state: DesiredState,
  etag: string | undefined,
): Promise<StoredDesiredState> {
  const stored: StoredDesiredState = {
    ...(etag ? { etag } : {}),
    receivedAt: new Date().toISOString(),
    state,
  };
  await writeJsonAtomic(layout.desiredStateFile, stored);
  return stored;
}
