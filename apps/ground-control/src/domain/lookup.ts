import { eq, inArray } from 'drizzle-orm';
import type { Db } from '../db/database.js';
import { configs, groups, registries } from '../db/schema.js';
import { notFound } from '../errors.js';

export async function configIdByName(
  db: Db,
  name: string | null | undefined,
): Promise<string | null> {
  if (name === null || name === undefined) return null;
  const [row] = await db.select({ id: configs.id }).from(configs).where(eq(configs.name, name));
  if (row === undefined) throw notFound('config', name);
  return row.id;
}

export async function groupIdsByName(db: Db, names: string[]): Promise<string[]> {
  const unique = [...new Set(names)];
  if (unique.length === 0) return [];
  const rows = await db
    .select({ id: groups.id, name: groups.name })
    .from(groups)
    .where(inArray(groups.name, unique));
  const missing = unique.find((name) => !rows.some((row) => row.name === name));
  if (missing !== undefined) throw notFound('group', missing);
  return rows.map((row) => row.id);
}

export async function registryIdsByName(db: Db, names: string[]): Promise<Map<string, string>> {
  const unique = [...new Set(names)];
  if (unique.length === 0) return new Map();
  const rows = await db
    .select({ id: registries.id, name: registries.name })
    .from(registries)
    .where(inArray(registries.name, unique));
  const missing = unique.find((name) => !rows.some((row) => row.name === name));
  if (missing !== undefined) throw notFound('registry', missing);
  return new Map(rows.map((row) => [row.name, row.id]));
}
