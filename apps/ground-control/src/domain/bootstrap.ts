import { join } from 'node:path';
import { eq } from 'drizzle-orm';
import type { Logger } from 'pino';
import { hashPassword } from '../auth/passwords.js';
import { generatePassword } from '../crypto/tokens.js';
import type { Db } from '../db/database.js';
import { sessions, users } from '../db/schema.js';
import { writeFileAtomic } from '../files.js';

export const ADMIN_USERNAME = 'admin';
export const INITIAL_PASSWORD_FILE = 'initial-admin-password';

/**
 * Creates the `admin` account on the first start, from GC_ADMIN_PASSWORD or with a generated
 * password written to the data folder (mode 0600). Only the file's path is logged. When several
 * replicas start at once, the insert lets exactly one of them create the account.
 */
export async function ensureAdmin(
  db: Db,
  options: { adminPassword: string | undefined; dataDir: string; logger: Logger },
): Promise<void> {
  const [existing] = await db
    .select({ id: users.id })
    .from(users)
    .where(eq(users.username, ADMIN_USERNAME));
  if (existing !== undefined) return;
  const password = options.adminPassword ?? generatePassword();
  const inserted = await db
    .insert(users)
    .values({ username: ADMIN_USERNAME, passwordHash: await hashPassword(password), role: 'admin' })
    .onConflictDoNothing()
    .returning({ id: users.id });
  if (inserted.length === 0) return;
  if (options.adminPassword !== undefined) {
    options.logger.info(
      { username: ADMIN_USERNAME },
      'created the admin account from GC_ADMIN_PASSWORD',
    );
    return;
  }
  const path = join(options.dataDir, INITIAL_PASSWORD_FILE);
  await writeFileAtomic(path, `${password}\n`, 0o600);
  options.logger.warn(
    { username: ADMIN_USERNAME, path },
    'created the admin account with a generated password; read it from the file, then change it',
  );
}

/** Sets a new generated password, clears a lockout and ends the user's sessions. */
export async function resetPassword(db: Db, username: string): Promise<string | null> {
  const password = generatePassword();
  const updated = await db
    .update(users)
    .set({
      passwordHash: await hashPassword(password),
      failedLogins: 0,
      lockedUntil: null,
      updatedAt: new Date(),
    })
    .where(eq(users.username, username))
    .returning({ id: users.id });
  const user = updated[0];
  if (user === undefined) return null;
  await db.delete(sessions).where(eq(sessions.userId, user.id));
  return password;
}
