import { access } from 'node:fs/promises';
import { join } from 'node:path';
import {
  configDocumentSchema,
  groupSchema,
  joinTokenSchema,
  registrySchema,
  satelliteSchema,
  createdSatelliteSchema,
  type CreateRegistry,
  type Group,
  type Selection,
} from '@edge/contract';
import type { ImageSelection } from './args.js';
import { QuickstartError } from './errors.js';
import type { OperatorApi } from './operator-api.js';

/** Names of what the quickstart creates in Ground Control. */
export const NAMES = {
  registry: 'quickstart-upstream',
  config: 'quickstart',
  group: 'quickstart-demo',
  satellite: 'quickstart-site',
} as const;

/**
 * Settings of the quickstart's config document, in seconds. Short intervals let the fleet view
 * turn in-sync within seconds; a satellite counts as stale after three poll intervals.
 */
const QUICKSTART_SETTINGS = { pollIntervalSeconds: 10, heartbeatIntervalSeconds: 10 } as const;

export interface UpstreamEntry {
  url: string;
  credential: { username: string; password: string } | undefined;
}

/** Creates the `kind: oci` registry entry, or points the existing one at `upstream`. */
export async function ensureRegistry(api: OperatorApi, upstream: UpstreamEntry): Promise<void> {
  const path = `/registries/${NAMES.registry}`;
  const existing = await api.find(path, registrySchema);
  if (existing === undefined) {
    const body: CreateRegistry = {
      name: NAMES.registry,
      kind: 'oci',
      url: upstream.url,
      ...(upstream.credential !== undefined ? { credential: upstream.credential } : {}),
    };
    await api.call('POST', '/registries', registrySchema, body);
    return;
  }
  if (existing.kind !== 'oci') {
    throw new QuickstartError(
      'DATA_DIR_INVALID',
      `registry "${NAMES.registry}" in Ground Control has kind ${existing.kind}, not oci; run ` +
        'again with --reset',
    );
  }
  await api.call('PATCH', path, registrySchema, {
    url: upstream.url,
    credential: upstream.credential ?? null,
  });
}

/** Creates or updates the config document with the quickstart's short intervals. */
export async function ensureConfig(api: OperatorApi): Promise<void> {
  const path = `/configs/${NAMES.config}`;
  if ((await api.find(path, configDocumentSchema)) === undefined) {
    await api.call('POST', '/configs', configDocumentSchema, {
      name: NAMES.config,
      description: 'Short poll and heartbeat intervals for the quickstart',
      settings: QUICKSTART_SETTINGS,
    });
    return;
  }
  await api.call('PATCH', path, configDocumentSchema, { settings: QUICKSTART_SETTINGS });
}

/**
 * Creates the group with one selection per image, or replaces the existing group's selections.
 * Ground Control resolves the tags before it responds, so a tag it cannot resolve fails here.
 */
export async function ensureGroup(
  api: OperatorApi,
  images: readonly ImageSelection[],
): Promise<Group> {
  const selections: Selection[] = images.map((image) => ({
    registry: NAMES.registry,
    repository: image.repository,
    tag: image.tag,
  }));
  const path = `/groups/${NAMES.group}`;
  const group =
    (await api.find(path, groupSchema)) === undefined
      ? await api.call('POST', '/groups', groupSchema, {
          name: NAMES.group,
          description: 'Images the quickstart replicates',
          config: NAMES.config,
          selections,
        })
      : await api.call('PATCH', path, groupSchema, { config: NAMES.config, selections });
  const unresolved = group.selections.filter((selection) => selection.resolved === null);
  if (unresolved.length > 0) {
    const reasons = unresolved.map(
      (selection) =>
        `${selection.repository}:${selection.tag ?? '?'} (${selection.error?.code ?? 'unresolved'}: ` +
        `${selection.error?.message ?? 'no resolution yet'})`,
    );
    throw new QuickstartError(
      'UPSTREAM_FAILED',
      `Ground Control could not resolve ${reasons.join('; ')}; check that the tags exist in the ` +
        'upstream registry and that the credentials may pull them',
    );
  }
  return group;
}

/**
 * Creates the satellite in the group and returns its join token, or, when it exists, updates its
 * group and config and returns a new join token unless the satellite folder already contains an
 * identity (a joined satellite restarts without a token).
 */
export async function ensureSatellite(
  api: OperatorApi,
  satelliteDataDir: string,
): Promise<string | undefined> {
  const path = `/satellites/${NAMES.satellite}`;
  const existing = await api.find(path, satelliteSchema);
  if (existing === undefined) {
    const created = await api.call('POST', '/satellites', createdSatelliteSchema, {
      name: NAMES.satellite,
      labels: { site: 'quickstart' },
      groups: [NAMES.group],
      config: NAMES.config,
    });
    return created.joinToken.token;
  }
  if (existing.state === 'revoked') {
    throw new QuickstartError(
      'DATA_DIR_INVALID',
      `satellite "${NAMES.satellite}" is revoked in Ground Control; run again with --reset`,
    );
  }
  await api.call('PATCH', path, satelliteSchema, { groups: [NAMES.group], config: NAMES.config });
  const hasIdentity = await access(join(satelliteDataDir, 'identity.json')).then(
    () => true,
    () => false,
  );
  if (hasIdentity && existing.joinedAt !== null) return undefined;
  const token = await api.call('POST', `${path}/join-token`, joinTokenSchema, {});
  return token.token;
}
