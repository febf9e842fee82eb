import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

/** Random secrets are 256 bits, so guessing one is out of reach. */
const TOKEN_BYTES = 32;

/** Prefixes tell an operator which kind of secret leaked when one shows up in a paste. */
export const TOKEN_PREFIX = {
  session: 'gcs_',
  apiToken: 'gct_',
  joinToken: 'gcj_',
} as const;

export function generateToken(kind: keyof typeof TOKEN_PREFIX): string {
  return TOKEN_PREFIX[kind] + randomBytes(TOKEN_BYTES).toString('base64url');
}

/** SHA-256 hex of a token; the database stores only this. */
export function hashToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

export function generatePassword(): string {
  return randomBytes(18).toString('base64url');
}

export function constantTimeEqual(a: string, b: string): boolean {
  const left = Buffer.from(a);
  const right = Buffer.from(b);
  return left.length === right.length && timingSafeEqual(left, right);
}
