import type { Db } from '../db/database.js';
import { auditLog } from '../db/schema.js';

/** Performer of an action: `user:<name>`, `token:<name>`, `satellite:<id>` or `system`. */
export type Actor = string;

export async function recordAudit(
  db: Db,
  entry: { actor: Actor; action: string; target: string; details?: Record<string, unknown> },
): Promise<void> {
  await db.insert(auditLog).values({
    actor: entry.actor,
    action: entry.action,
    target: entry.target,
    details: entry.details ?? {},
  });
}
