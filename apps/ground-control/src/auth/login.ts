import { eq, sql } from 'drizzle-orm';
import type { AppContext } from '../context.js';
import { generateToken, hashToken } from '../crypto/tokens.js';
import { loginAttempts, sessions, users } from '../db/schema.js';
import { AppError } from '../errors.js';
import { hashPassword, verifyPassword } from './passwords.js';

/** Length of a login rate-limit window, in milliseconds. */
const RATE_WINDOW_MS = 60_000;

let dummyHash: Promise<string> | undefined;

/**
 * Counts one login attempt from an address in the database, so every replica enforces the same
 * limit, and rejects it once the address exceeds the per-minute limit.
 */
async function countAttempt(context: AppContext, address: string): Promise<void> {
  const now = new Date(context.now());
  const windowFloor = new Date(context.now() - RATE_WINDOW_MS);
  const [row] = await context.db
    .insert(loginAttempts)
    .values({ address, windowStart: now, count: 1 })
    .onConflictDoUpdate({
      target: loginAttempts.address,
      set: {
        count: sql`case when ${loginAttempts.windowStart} <= ${windowFloor} then 1 else ${loginAttempts.count} + 1 end`,
        windowStart: sql`case when ${loginAttempts.windowStart} <= ${windowFloor} then ${now} else ${loginAttempts.windowStart} end`,
      },
    })
    .returning({ count: loginAttempts.count, windowStart: loginAttempts.windowStart });
  if (row !== undefined && row.count > context.config.loginRateLimitPerMinute) {
    const retryAfter = Math.max(
      1,
      Math.ceil((row.windowStart.getTime() + RATE_WINDOW_MS - context.now()) / 1_000),
    );
    throw new AppError(
      'RATE_LIMITED',
      `too many login attempts from this address; wait ${retryAfter} s and try again`,
      {
        headers: { 'retry-after': String(retryAfter) },
        details: { retryAfterSeconds: retryAfter },
      },
    );
  }
}

export interface LoginResult {
  token: string;
  expiresAt: Date;
  user: typeof users.$inferSelect;
}

export async function login(
  context: AppContext,
  address: string,
  username: string,
  password: string,
): Promise<LoginResult> {
  await countAttempt(context, address);
  const [user] = await context.db.select().from(users).where(eq(users.username, username));
  if (user === undefined) {
    // Spend the same argon2 work as for a real account, so timing does not reveal user names.
    dummyHash ??= hashPassword('not a real password, only for timing');
    await verifyPassword(await dummyHash, password);
    throw new AppError('INVALID_CREDENTIALS', 'username or password is wrong');
  }
  const now = context.now();
  if (user.lockedUntil !== null && user.lockedUntil.getTime() > now) {
    const retryAfter = Math.ceil((user.lockedUntil.getTime() - now) / 1_000);
    throw new AppError(
      'ACCOUNT_LOCKED',
      `account "${username}" is locked after too many failed logins; wait ${retryAfter} s, ` +
        'or run `ground-control reset-password --user NAME` on the server',
      {
        headers: { 'retry-after': String(retryAfter) },
        details: { retryAfterSeconds: retryAfter },
      },
    );
  }
  if (!(await verifyPassword(user.passwordHash, password))) {
    const failures = user.failedLogins + 1;
    const lock = failures >= context.config.loginLockoutThreshold;
    await context.db
      .update(users)
      .set(
        lock
          ? {
              failedLogins: 0,
              lockedUntil: new Date(now + context.config.loginLockoutSeconds * 1_000),
            }
          : { failedLogins: failures },
      )
      .where(eq(users.id, user.id));
    context.logger.warn({ username, address, locked: lock }, 'login failed');
    throw new AppError('INVALID_CREDENTIALS', 'username or password is wrong');
  }
  if (user.failedLogins !== 0 || user.lockedUntil !== null) {
    await context.db
      .update(users)
      .set({ failedLogins: 0, lockedUntil: null })
      .where(eq(users.id, user.id));
  }
  const token = generateToken('session');
  const expiresAt = new Date(now + context.config.sessionTtlSeconds * 1_000);
  await context.db
    .insert(sessions)
    .values({ userId: user.id, tokenHash: hashToken(token), expiresAt });
  return { token, expiresAt, user: { ...user, failedLogins: 0, lockedUntil: null } };
}
