import { createPrivateKey, createPublicKey, generateKeyPairSync, randomUUID } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { chmod, readFile } from 'node:fs/promises';
import { SignJWT } from 'jose';
import { z } from 'zod';
import { readJsonFile, writeFileAtomic, writeJsonAtomic } from './atomic-file.js';
import type { ClockOffset } from './clock.js';
import type { DataDirLayout } from './data-dir.js';
import { SatelliteError } from './errors.js';

/** JWT audience Ground Control expects from satellites. */
export const SATELLITE_JWT_AUDIENCE = 'ground-control';
/** Lifetime of each request JWT: 2 minutes, well inside Ground Control's 5-minute maximum. */
export const SATELLITE_JWT_TTL_SECONDS = 120;

const publicJwkSchema = z.object({
  kty: z.literal('OKP'),
  crv: z.literal('Ed25519'),
  x: z.string(),
});
export type PublicJwk = z.infer<typeof publicJwkSchema>;

const identityFileSchema = z.object({
  satelliteId: z.string().min(1),
  name: z.string().optional(),
  groundControlUrl: z.string(),
  publicKey: publicJwkSchema,
  joinedAt: z.string(),
});
export type IdentityRecord = z.infer<typeof identityFileSchema>;

export interface KeyPair {
  privateKey: KeyObject;
  publicJwk: PublicJwk;
}

/** Creates a new Ed25519 key pair. */
export function generateKeyPair(): KeyPair {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  return { privateKey, publicJwk: toPublicJwk(publicKey) };
}

function toPublicJwk(publicKey: KeyObject): PublicJwk {
  const jwk = publicKey.export({ format: 'jwk' });
  return publicJwkSchema.parse({ kty: jwk.kty, crv: jwk.crv, x: jwk.x });
}

/**
 * Loads the private key, creating and storing a new one (mode 0600) when none exists. The key
 * is written before joining, so a crash between join and storing the identity reuses the same
 * key instead of orphaning a registered public key.
 */
export async function loadOrCreateKeyPair(layout: DataDirLayout): Promise<KeyPair> {
  let pem: string | undefined;
  try {
    pem = await readFile(layout.privateKeyFile, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  if (pem !== undefined) {
    try {
      const privateKey = createPrivateKey(pem);
      await chmod(layout.privateKeyFile, 0o600);
      return { privateKey, publicJwk: toPublicJwk(createPublicKey(privateKey)) };
    } catch (error) {
      throw new SatelliteError(
        'IDENTITY_INVALID',
        `The private key ${layout.privateKeyFile} is not a valid Ed25519 PEM key. Restore it from a backup, or remove the data folder's identity files and join again with a new token.`,
        { cause: error },
      );
    }
  }
  const pair = generateKeyPair();
  const exported = pair.privateKey.export({ format: 'pem', type: 'pkcs8' });
  await writeFileAtomic(layout.privateKeyFile, exported, { mode: 0o600 });
  return pair;
}

export async function readIdentity(layout: DataDirLayout): Promise<IdentityRecord | undefined> {
  const raw = await readJsonFile(layout.identityFile);
  if (raw === undefined) return undefined;
  const parsed = identityFileSchema.safeParse(raw);
  if (!parsed.success) {
    throw new SatelliteError(
      'IDENTITY_INVALID',
      `The identity file ${layout.identityFile} is invalid (${parsed.error.issues[0]?.message ?? 'unknown'}). Restore it, or remove identity.json and identity.key and join again with a new token.`,
    );
  }
  return parsed.data;
}

export async function writeIdentity(layout: DataDirLayout, record: IdentityRecord): Promise<void> {
  await writeJsonAtomic(layout.identityFile, record);
}

/** Signs a short-lived request JWT with the satellite key, timed on Ground Control's clock. */
export async function signSatelliteJwt(
  satelliteId: string,
  privateKey: KeyObject,
  clock: ClockOffset,
): Promise<string> {
  const issuedAt = Math.floor(clock.now() / 1000);
  return new SignJWT({})
    .setProtectedHeader({ alg: 'EdDSA', typ: 'JWT' })
    .setIssuer(satelliteId)
    .setSubject(satelliteId)
    .setAudience(SATELLITE_JWT_AUDIENCE)
    .setIssuedAt(issuedAt)
    .setExpirationTime(issuedAt + SATELLITE_JWT_TTL_SECONDS)
    .setJti(randomUUID())
    .sign(privateKey);
}
