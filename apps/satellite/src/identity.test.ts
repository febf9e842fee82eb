import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeJwt, decodeProtectedHeader, importJWK, jwtVerify } from 'jose';
import { afterEach, describe, expect, it } from 'vitest';
import { ClockOffset } from './clock.js';
import { dataDirLayout } from './data-dir.js';
import { loadOrCreateKeyPair, signSatelliteJwt } from './identity.js';

describe('identity', () => {
  let folder = '';
  afterEach(async () => {
    if (folder) await rm(folder, { recursive: true, force: true });
  });

  it('stores the private key with mode 0600 and reuses it', async () => {
    folder = await mkdtemp(join(tmpdir(), 'satellite-identity-'));
    const layout = dataDirLayout(folder);
    const first = await loadOrCreateKeyPair(layout);
    const mode = (await stat(layout.privateKeyFile)).mode & 0o777;
    expect(mode).toBe(0o600);
    const second = await loadOrCreateKeyPair(layout);
    expect(second.publicJwk).toEqual(first.publicJwk);
    expect(first.publicJwk.kty).toBe('OKP');
    expect(first.publicJwk.crv).toBe('Ed25519');
  });

  it('signs a JWT on the corrected clock', async () => {
    folder = await mkdtemp(join(tmpdir(), 'satellite-identity-'));
    const pair = await loadOrCreateKeyPair(dataDirLayout(folder));
    const localNow = Date.parse('2026-01-01T00:00:00Z');
    const clock = new ClockOffset(() => localNow);
    // Ground Control's clock is one hour ahead of the local one.
    clock.observe(new Date(localNow + 3_600_000).toUTCString(), localNow, localNow);
    const token = await signSatelliteJwt('sat-1', pair.privateKey, clock);

    expect(decodeProtectedHeader(token).alg).toBe('EdDSA');
    const claims = decodeJwt(token);
    expect(claims.iat).toBe(Math.floor((localNow + 3_600_000 + 500) / 1000));
    expect((claims.exp ?? 0) - (claims.iat ?? 0)).toBeLessThanOrEqual(300);
    expect(claims.sub).toBe('sat-1');
    expect(claims.iss).toBe('sat-1');
    expect(claims.aud).toBe('ground-control');
    expect(typeof claims.jti).toBe('string');

    const key = await importJWK(pair.publicJwk, 'EdDSA');
    const verified = await jwtVerify(token, key, {
      audience: 'ground-control',
      currentDate: new Date(localNow + 3_600_000),
    });
    expect(verified.payload.sub).toBe('sat-1');
  });
});
