import { hash, verify } from '@node-rs/argon2';

/**
 * Hashes a password with argon2id; @node-rs/argon2 2.x defaults to argon2id with m=19456 KiB,
 * t=2, p=1, the OWASP minimum for argon2id.
 */
export async function hashPassword(password: string): Promise<string> {
  return hash(password);
}

export async function verifyPassword(passwordHash: string, password: string): Promise<boolean> {
  try {
    return await verify(passwordHash, password);
  } catch {
    // A malformed stored hash cannot match any password.
    return false;
  }
}
