// One simulated satellite: its own Ed25519 key pair, the join call and signed EdDSA JWTs per the
// satellite protocol, with the clock corrected by the Date header of Ground Control's answers.
import { randomUUID } from 'node:crypto';
import { SignJWT, exportJWK, generateKeyPair, type CryptoKey } from 'jose';
import type { Dispatcher } from 'undici';
import {
  PROTOCOL_VERSION,
  SATELLITE_API_PREFIX,
  SATELLITE_JWT_ALGORITHM,
  SATELLITE_JWT_AUDIENCE,
  SATELLITE_JWT_MAX_LIFETIME_SECONDS,
  desiredStateSchema,
  joinResponseSchema,
  type StatusReport,
} from '@edge/contract';

/** A JWT is replaced this long before its expiry, in seconds, so no request carries a stale one. */
const JWT_REFRESH_BEFORE_SECONDS = 60;
/** Release string the simulated satellites report. */
const SIMULATED_VERSION = 'bench-fleet';

export class BenchError extends Error {
  readonly code = 'FLEET_BENCH_FAILED';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'BenchError';
  }
}

/** Reads a whole response body as text; every body is consumed so sockets return to the pool. */
async function bodyText(response: Dispatcher.ResponseData): Promise<string> {
  return response.body.text();
}

export class SimulatedSatellite {
  id = '';
  etag: string | null = null;
  revision = 0;
  /** Manifest digests of the last desired state received. */
  digests: ReadonlySet<string> = new Set();
  private privateKey: CryptoKey | undefined;
  private jwt: { token: string; exp: number } | undefined;
  /** Ground Control's clock minus the local clock, in milliseconds, from the last Date header. */
  private clockOffsetMs = 0;

  constructor(
    readonly name: string,
    private readonly joinToken: string,
  ) {}

  /** Generates the key pair and joins; throws BenchError with Ground Control's error body. */
  async join(pool: Dispatcher): Promise<void> {
    const pair = await generateKeyPair(SATELLITE_JWT_ALGORITHM, { crv: 'Ed25519' });
    this.privateKey = pair.privateKey;
    const jwk = await exportJWK(pair.publicKey);
    const response = await pool.request({
      method: 'POST',
      path: `${SATELLITE_API_PREFIX}/join`,
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        protocolVersion: PROTOCOL_VERSION,
        token: this.joinToken,
        publicKey: { kty: jwk.kty, crv: jwk.crv, x: jwk.x },
        hostname: `${this.name}.bench.invalid`,
        version: SIMULATED_VERSION,
      }),
    });
    const text = await bodyText(response);
    if (response.statusCode !== 200) {
      throw new BenchError(
        `join of satellite ${this.name} failed with HTTP ${response.statusCode}: ${text}`,
      );
    }
    this.observeDate(response.headers.date);
    this.id = joinResponseSchema.parse(JSON.parse(text)).satelliteId;
  }

  /** Returns `Bearer <JWT>`, signing a new JWT when the current one is close to expiry. */
  async authorization(): Promise<string> {
    const nowSeconds = Math.floor((Date.now() + this.clockOffsetMs) / 1_000);
    if (this.jwt === undefined || this.jwt.exp - JWT_REFRESH_BEFORE_SECONDS <= nowSeconds) {
      if (this.privateKey === undefined) {
        throw new BenchError(`satellite ${this.name} has no key yet; join before signing`);
      }
      const exp = nowSeconds + SATELLITE_JWT_MAX_LIFETIME_SECONDS;
      const token = await new SignJWT({})
        .setProtectedHeader({ alg: SATELLITE_JWT_ALGORITHM, typ: 'JWT' })
        .setIssuer(this.id)
        .setSubject(this.id)
        .setAudience(SATELLITE_JWT_AUDIENCE)
        .setIssuedAt(nowSeconds)
        .setExpirationTime(exp)
        .setJti(randomUUID())
        .sign(this.privateKey);
      this.jwt = { token, exp };
    }
    return `Bearer ${this.jwt.token}`;
  }

  /** Sends `GET /state` with `If-None-Match`; returns the status after updating the ETag. */
  async getState(pool: Dispatcher, waitSeconds: number, signal?: AbortSignal): Promise<number> {
    const query = waitSeconds > 0 ? `?wait=${waitSeconds}` : '';
    const headers: Record<string, string> = { authorization: await this.authorization() };
    if (this.etag !== null) headers['if-none-match'] = this.etag;
    const response = await pool.request({
      method: 'GET',
      path: `${SATELLITE_API_PREFIX}/state${query}`,
      headers,
      signal,
    });
    this.observeDate(response.headers.date);
    if (response.statusCode === 304) {
      // A 304 has no content. dump() as in the satellite's own client, which also discards a
      // body the server announced in Content-Length; undici then closes that connection.
      await response.body.dump();
      return 304;
    }
    const text = await bodyText(response);
    if (response.statusCode === 200) {
      const state = desiredStateSchema.parse(JSON.parse(text));
      const etag = response.headers.etag;
      this.etag = typeof etag === 'string' ? etag : null;
      this.revision = state.revision;
      this.digests = new Set(state.artifacts.map((artifact) => artifact.digest));
    }
    return response.statusCode;
  }

  /** Sends a heartbeat status report of an in-sync site; returns the HTTP status. */
  async sendStatus(pool: Dispatcher): Promise<number> {
    const report: StatusReport = {
      protocolVersion: PROTOCOL_VERSION,
      appliedRevision: this.revision,
      phase: 'in-sync',
      artifacts: [...this.digests].map((digest) => ({
        localRepository: 'test/app-a',
        tag: null,
        digest,
        state: 'present',
        bytesDone: 0,
        bytesTotal: 0,
      })),
      storage: { usedBytes: 0, freeBytes: 1 << 30 },
      version: SIMULATED_VERSION,
      errors: [],
    };
    const response = await pool.request({
      method: 'POST',
      path: `${SATELLITE_API_PREFIX}/status`,
      headers: { authorization: await this.authorization(), 'content-type': 'application/json' },
      body: JSON.stringify(report),
    });
    await bodyText(response);
    this.observeDate(response.headers.date);
    return response.statusCode;
  }

  private observeDate(date: string | string[] | undefined): void {
    if (typeof date !== 'string') return;
    const serverMs = Date.parse(date);
    // The Date header has whole seconds, so offsets under a second are noise, not skew.
    if (Number.isFinite(serverMs) && Math.abs(serverMs - Date.now()) > 1_000) {
      this.clockOffsetMs = serverMs - Date.now();
    }
  }
}
