import { eq } from 'drizzle-orm';
import { decodeJwt, errors as joseErrors, importJWK, jwtVerify, type CryptoKey } from 'jose';
import {
  SATELLITE_JWT_ALGORITHM,
  SATELLITE_JWT_AUDIENCE,
  SATELLITE_JWT_CLOCK_SKEW_SECONDS,
  SATELLITE_JWT_MAX_LIFETIME_SECONDS,
  idSchema,
  satelliteJwtClaimsSchema,
} from '@edge/contract';
import type { Db } from '../db/database.js';
import { satellites } from '../db/schema.js';
import { AppError } from '../errors.js';

/** NOTIFY channel whose payload is a satellite id (or `*`) whose key or state changed. */
export const SATELLITE_CHANNEL = 'gc_satellite';
/** Verified tokens kept in memory; a satellite uses one token for several calls. */
const MAX_CACHED_TOKENS = 100_000;

interface SatelliteEntry {
  key: CryptoKey | null;
  state: 'pending' | 'active' | 'revoked';
  name: string;
}

export interface AuthenticatedSatellite {
  id: string;
  name: string;
}

function invalid(message: string): AppError {
  return new AppError('SATELLITE_TOKEN_INVALID', message);
}

/**
 * Verifies satellite JWTs against the stored Ed25519 keys. Verified tokens and loaded keys stay
 * in memory until the token expires. A NOTIFY on the satellite channel evicts a satellite on
 * every replica when it is revoked, deleted or joins again with a new key.
 */
export class SatelliteAuthenticator {
  private readonly satellitesById = new Map<string, Promise<SatelliteEntry | null>>();
  private readonly verified = new Map<string, { satelliteId: string; exp: number }>();

  constructor(
    private readonly db: Db,
    private readonly now: () => number,
  ) {}

  /** Drops cached keys and tokens of one satellite, or of all for `*`. */
  evict(satelliteId: string): void {
    if (satelliteId === '*') {
      this.satellitesById.clear();
      this.verified.clear();
      return;
    }
    this.satellitesById.delete(satelliteId);
    for (const [token, entry] of this.verified) {
      if (entry.satelliteId === satelliteId) this.verified.delete(token);
    }
  }

  async authenticate(authorization: string | undefined): Promise<AuthenticatedSatellite> {
    const match = /^Bearer ([A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+)$/.exec(
      authorization ?? '',
    );
    if (match === null) {
      throw invalid('missing or malformed Authorization header: send "Bearer <satellite JWT>"');
    }
    const token = match[1]!;
    const nowSeconds = Math.floor(this.now() / 1_000);

    const cached = this.verified.get(token);
    if (cached !== undefined && cached.exp + SATELLITE_JWT_CLOCK_SKEW_SECONDS > nowSeconds) {
      const entry = await this.load(cached.satelliteId);
      return this.admit(cached.satelliteId, entry);
    }

    let unverified: ReturnType<typeof decodeJwt>;
    try {
      unverified = decodeJwt(token);
    } catch {
      throw invalid('satellite JWT cannot be decoded; sign a JWT with the key stored at join');
    }
    const claims = satelliteJwtClaimsSchema.safeParse(unverified);
    if (!claims.success) {
      throw invalid('satellite JWT lacks iss, sub, aud, iat, exp or jti, or has wrong types');
    }
    const { iss, sub, iat, exp } = claims.data;
    if (iss !== sub || !idSchema.safeParse(iss).success) {
      throw invalid('satellite JWT must carry the satellite id in both iss and sub');
    }
    if (exp - iat > SATELLITE_JWT_MAX_LIFETIME_SECONDS) {
      throw invalid(
        `satellite JWT lives ${exp - iat} s; the maximum is ${SATELLITE_JWT_MAX_LIFETIME_SECONDS} s`,
      );
    }
    if (iat > nowSeconds + SATELLITE_JWT_CLOCK_SKEW_SECONDS) {
      throw new AppError(
        'SATELLITE_CLOCK_SKEW',
        `satellite JWT was issued ${iat - nowSeconds} s in the future, more than the allowed ` +
          `${SATELLITE_JWT_CLOCK_SKEW_SECONDS} s; correct the clock by the offset of the Date header`,
        { details: { serverTime: new Date(this.now()).toISOString() } },
      );
    }
    if (exp + SATELLITE_JWT_CLOCK_SKEW_SECONDS <= nowSeconds) {
      throw new AppError(
        'SATELLITE_TOKEN_EXPIRED',
        'satellite JWT has expired; sign a new one with the clock corrected by the Date header',
        { details: { serverTime: new Date(this.now()).toISOString() } },
      );
    }

    const entry = await this.load(iss);
    if (entry === null || entry.key === null) {
      throw invalid('satellite JWT names a satellite that does not exist or has not joined');
    }
    try {
      await jwtVerify(token, entry.key, {
        algorithms: [SATELLITE_JWT_ALGORITHM],
        audience: SATELLITE_JWT_AUDIENCE,
        issuer: iss,
        subject: iss,
        clockTolerance: SATELLITE_JWT_CLOCK_SKEW_SECONDS,
        currentDate: new Date(this.now()),
      });
    } catch (error) {
      if (error instanceof joseErrors.JWTExpired) {
        throw new AppError('SATELLITE_TOKEN_EXPIRED', 'satellite JWT has expired; sign a new one');
      }
      const reason = error instanceof joseErrors.JOSEError ? error.code : 'verification failed';
      throw invalid(`satellite JWT verification failed (${reason}); sign it with the joined key`);
    }
    if (this.verified.size >= MAX_CACHED_TOKENS) {
      const oldest = this.verified.keys().next().value;
      if (oldest !== undefined) this.verified.delete(oldest);
    }
    this.verified.set(token, { satelliteId: iss, exp });
    return this.admit(iss, entry);
  }

  private admit(satelliteId: string, entry: SatelliteEntry | null): AuthenticatedSatellite {
    if (entry === null || entry.key === null) {
      throw invalid('satellite no longer exists; create it again and join with a new token');
    }
    if (entry.state === 'revoked') {
      throw new AppError(
        'SATELLITE_REVOKED',
        'this satellite was revoked; stop syncing and keep serving what is present',
      );
    }
    return { id: satelliteId, name: entry.name };
  }

  private load(satelliteId: string): Promise<SatelliteEntry | null> {
    let entry = this.satellitesById.get(satelliteId);
    if (entry === undefined) {
      entry = this.fetch(satelliteId);
      this.satellitesById.set(satelliteId, entry);
      entry.catch(() => this.satellitesById.delete(satelliteId));
    }
    return entry;
  }

  private async fetch(satelliteId: string): Promise<SatelliteEntry | null> {
    const [row] = await this.db
      .select({ publicKey: satellites.publicKey, state: satellites.state, name: satellites.name })
      .from(satellites)
      .where(eq(satellites.id, satelliteId));
    if (row === undefined) return null;
    const key =
      row.publicKey === null
        ? null
        : ((await importJWK(row.publicKey, SATELLITE_JWT_ALGORITHM)) as CryptoKey);
    return { key, state: row.state, name: row.name };
  }
}
