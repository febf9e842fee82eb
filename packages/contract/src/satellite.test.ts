import { describe, expect, it } from 'vitest';
import {
  DEFAULT_SATELLITE_CONFIG,
  PROTOCOL_VERSION,
  desiredStateSchema,
  ed25519PublicJwkSchema,
  joinRequestSchema,
  satelliteConfigSchema,
  statusReportSchema,
} from './index.js';

const digest = `sha256:${'a'.repeat(64)}`;
const satelliteId = '0b6f3f5e-7c1a-4d2b-9f3e-2a1b3c4d5e6f';
const upstreamId = '1c7f3f5e-7c1a-4d2b-9f3e-2a1b3c4d5e6f';
const publicKey = { kty: 'OKP', crv: 'Ed25519', x: 'A'.repeat(43) };

function desiredState(): Record<string, unknown> {
  return {
    protocolVersion: PROTOCOL_VERSION,
    satelliteId,
    revision: 3,
    upstreams: [
      {
        id: upstreamId,
        url: 'https://registry.example.com',
        credential: { username: 'robot', password: 'secret', expiresAt: null },
      },
    ],
    artifacts: [
      {
        upstream: upstreamId,
        repository: 'library/alpine',
        tag: '3.20',
        digest,
        mediaType: 'application/vnd.oci.image.index.v1+json',
        size: 1234,
        platforms: ['linux/arm64/v8'],
        referrers: [],
        localRepository: 'central/library/alpine',
      },
    ],
    config: { ...DEFAULT_SATELLITE_CONFIG },
  };
}

describe('satellite protocol schemas', () => {
  it('keeps unknown fields of a newer server readable', () => {
    const parsed = desiredStateSchema.safeParse({ ...desiredState(), addedLater: { a: 1 } });
    expect(parsed.success).toBe(true);
  });

  it('rejects a desired state with a malformed digest', () => {
    const state = desiredState();
    const artifacts = state['artifacts'] as Record<string, unknown>[];
    artifacts[0] = { ...artifacts[0], digest: 'sha256:xyz' };
    expect(desiredStateSchema.safeParse(state).success).toBe(false);
  });

  it('accepts a join request and ignores unknown fields', () => {
    const parsed = joinRequestSchema.safeParse({
      protocolVersion: 1,
      token: 'jt_abc',
      publicKey,
      hostname: 'shop-17',
      version: '0.1.0',
      futureField: true,
    });
    expect(parsed.success).toBe(true);
  });

  it('rejects a JWK that carries the private key', () => {
    expect(ed25519PublicJwkSchema.safeParse(publicKey).success).toBe(true);
    expect(ed25519PublicJwkSchema.safeParse({ ...publicKey, d: 'B'.repeat(43) }).success).toBe(
      false,
    );
    expect(ed25519PublicJwkSchema.safeParse({ ...publicKey, crv: 'P-256' }).success).toBe(false);
  });

  it('validates the default config against its schema', () => {
    expect(satelliteConfigSchema.safeParse(DEFAULT_SATELLITE_CONFIG).success).toBe(true);
  });

  it('rejects a sync window with a bad time', () => {
    const config = {
      ...DEFAULT_SATELLITE_CONFIG,
      syncWindows: [{ days: ['mon'], start: '25:00', end: '06:00', timeZone: 'UTC' }],
    };
    expect(satelliteConfigSchema.safeParse(config).success).toBe(false);
  });

  it('bounds the artifacts of a status report', () => {
    const artifact = {
      localRepository: 'library/alpine',
      tag: null,
      digest,
      state: 'failed',
      reason: 'upstream answered 404',
      bytesDone: 0,
      bytesTotal: 10,
    };
    const report = {
      protocolVersion: 1,
      appliedRevision: 0,
      phase: 'syncing',
      artifacts: [artifact],
      storage: { usedBytes: 1, freeBytes: 2 },
      version: '0.1.0',
      errors: [],
    };
    expect(statusReportSchema.safeParse(report).success).toBe(true);
    const tooMany = { ...report, artifacts: Array.from({ length: 10_001 }, () => artifact) };
    expect(statusReportSchema.safeParse(tooMany).success).toBe(false);
  });
});
