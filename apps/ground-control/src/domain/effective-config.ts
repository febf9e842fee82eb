import { and, asc, desc, eq, inArray, isNotNull } from 'drizzle-orm';
import { DEFAULT_SATELLITE_CONFIG, type SatelliteConfig } from '@edge/contract';
import type { Db } from '../db/database.js';
import { configs, groups, satelliteGroups } from '../db/schema.js';

/**
 * Picks the config document of each satellite: its own when it has one, otherwise that of its
 * group with the highest priority (ties broken by group name). The chosen document applies as a
 * whole; fields it leaves out take the defaults, never values from another document. Two
 * queries serve any number of satellites.
 */
export async function effectiveConfigs(
  db: Db,
  satellites: ReadonlyArray<{ id: string; configId: string | null }>,
): Promise<Map<string, SatelliteConfig>> {
  const chosen = new Map<string, string | null>();
  const withoutOwn: string[] = [];
  for (const satellite of satellites) {
    chosen.set(satellite.id, satellite.configId);
    if (satellite.configId === null) withoutOwn.push(satellite.id);
  }
  if (withoutOwn.length > 0) {
    const candidates = await db
      .select({ satelliteId: satelliteGroups.satelliteId, configId: groups.configId })
      .from(satelliteGroups)
      .innerJoin(groups, eq(groups.id, satelliteGroups.groupId))
      .where(and(inArray(satelliteGroups.satelliteId, withoutOwn), isNotNull(groups.configId)))
      .orderBy(desc(groups.priority), asc(groups.name));
    // Rows come best first, so the first one seen per satellite wins.
    const picked = new Set<string>();
    for (const row of candidates) {
      if (picked.has(row.satelliteId)) continue;
      picked.add(row.satelliteId);
      chosen.set(row.satelliteId, row.configId);
    }
  }
  const configIds = [...new Set([...chosen.values()].filter((id): id is string => id !== null))];
  const settingsById = new Map<string, Partial<SatelliteConfig>>();
  if (configIds.length > 0) {
    const rows = await db
      .select({ id: configs.id, settings: configs.settings })
      .from(configs)
      .where(inArray(configs.id, configIds));
    for (const row of rows) settingsById.set(row.id, row.settings as Partial<SatelliteConfig>);
  }
  const result = new Map<string, SatelliteConfig>();
  for (const [satelliteId, configId] of chosen) {
    const settings = configId === null ? {} : (settingsById.get(configId) ?? {});
    result.set(satelliteId, { ...DEFAULT_SATELLITE_CONFIG, ...settings });
  }
  return result;
}
