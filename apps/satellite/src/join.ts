import { hostname } from 'node:os';
import type { Logger } from 'pino';
import type { DataDirLayout } from './data-dir.js';
import { SatelliteError } from './errors.js';
import type { GroundControlClient } from './ground-control-client.js';
import { loadOrCreateKeyPair, readIdentity, writeIdentity } from './identity.js';
import type { IdentityRecord } from './identity.js';
import { SATELLITE_VERSION } from './version.js';

/**
 * Returns the stored identity, or joins Ground Control with the token on the first start. A
 * token given after the satellite has joined is ignored: join tokens are single-use, and the
 * environment of a restarted service often still contains the consumed one.
 */
export async function ensureIdentity(input: {
  layout: DataDirLayout;
  client: GroundControlClient;
  groundControlUrl: string;
  token: string | undefined;
  logger: Logger;
}): Promise<IdentityRecord> {
  const { layout, client, logger } = input;
  const existing = await readIdentity(layout);
  const keys = await loadOrCreateKeyPair(layout);
  if (existing) {
    if (existing.publicKey.x !== keys.publicJwk.x) {
      throw new SatelliteError(
        'IDENTITY_INVALID',
        `The private key ${layout.privateKeyFile} does not match the public key in ${layout.identityFile}. Restore the matching key, or remove both files and join again with a new token.`,
      );
    }
    if (input.token) {
      logger.info(
        { satelliteId: existing.satelliteId },
        'join token ignored: this satellite has already joined and reuses its stored identity',
      );
    }
    client.setIdentity(existing.satelliteId, keys.privateKey);
    return existing;
  }
  if (!input.token) {
    throw new SatelliteError(
      'JOIN_TOKEN_MISSING',
      `No identity in ${layout.root} and no join token. Create the satellite in Ground Control and start with --token or SATELLITE_TOKEN.`,
    );
  }
  const joined = await client.join({
    token: input.token,
    publicKey: keys.publicJwk,
    hostname: hostname().slice(0, 253) || 'unknown',
    version: SATELLITE_VERSION,
  });
  const record: IdentityRecord = {
    satelliteId: joined.satelliteId,
    name: joined.name,
    groundControlUrl: input.groundControlUrl,
    publicKey: keys.publicJwk,
    joinedAt: new Date().toISOString(),
  };
  await writeIdentity(layout, record);
  client.setIdentity(record.satelliteId, keys.privateKey);
  logger.info({ satelliteId: record.satelliteId, name: record.name }, 'joined Ground Control');
  return record;
}
