import { and, asc, desc, eq, isNotNull } from 'drizzle-orm';
import { DEFAULT_SATELLITE_CONFIG, type SatelliteConfig } from '@edge/contract';
import type { Db } from '../db/database.js';
import { configs, groups, satelliteGroups } from '../db/schema.js';

/**
 * Picks the config document of a satellite: its own when it has one, otherwise that of its
 * group with the highest priority (ties broken by group name). The chosen document applies as a
 * whole; fields it leaves out take the defaults, never values from another document.
 */
export async function effectiveConfig(
  db: Db,
  satellite: { id: string; configId: string | null },
): Promise<SatelliteConfig> {
  let configId = satellite.configId;
  if (configId === null) {
    const [best] = await db
      .select({ configId: groups.configId })
      .from(satelliteGroups)
      .innerJoin(groups, eq(groups.id, satelliteGroups.groupId))
      .where(and(eq(satelliteGroups.satelliteId, satellite.id), isNotNull(groups.configId)))
      .orderBy(desc(groups.priority), asc(groups.name))
      .limit(1);
    configId = best?.configId ?? null;
  }
  if (configId === null) return { ...DEFAULT_SATELLITE_CONFIG };
  const [row] = await db
    .select({ settings: configs.settings })
    .from(configs)
    .where(eq(configs.id, configId));
  return { ...DEFAULT_SATELLITE_CONFIG, ...((row?.settings ?? {}) as Partial<SatelliteConfig>) };
}
