import { fleetSchema, satelliteStatusSchema, type Fleet, type FleetEntry } from '@edge/contract';
import { describeExit, type ChildService } from './children.js';
import { QuickstartError } from './errors.js';
import type { OperatorApi } from './operator-api.js';

/** Pause between fleet view requests while waiting for in-sync, in ms. */
const FLEET_POLL_MS = 1_000;
/** Fleet page size: the API's maximum, so one request lists a small fleet whole. */
const FLEET_PAGE_LIMIT = 500;

export function fetchFleet(api: OperatorApi): Promise<Fleet> {
  return api.call('GET', `/fleet?limit=${FLEET_PAGE_LIMIT}`, fleetSchema);
}

/** Summarises the latest status report of a satellite: its phase and every failed or pending artifact. */
async function describeSatellite(api: OperatorApi, name: string): Promise<string> {
  const status = await api.call('GET', `/satellites/${name}/status`, satelliteStatusSchema);
  const report = status.report;
  if (report === null) return 'the satellite has sent no status report yet';
  const problems = [
    ...report.artifacts
      .filter((artifact) => artifact.state !== 'present')
      .map(
        (artifact) =>
          `${artifact.localRepository}:${artifact.tag ?? artifact.digest} ${artifact.state}` +
          (artifact.reason !== undefined ? ` (${artifact.reason})` : ''),
      ),
    ...report.errors.map((error) => `${error.code}: ${error.message}`),
  ];
  const detail = problems.length > 0 ? `; ${problems.join('; ')}` : '';
  return `phase ${report.phase}, applied revision ${report.appliedRevision} of ${status.desiredRevision}${detail}`;
}

/**
 * Polls the fleet view until the satellite `name` is in-sync with no missing artifact. Fails with
 * SYNC_TIMEOUT after `timeoutMs` (naming the category and the failed artifacts), with
 * SERVICE_FAILED when a service exits, and with SYNC_FAILED when the satellite is revoked.
 */
export async function waitForInSync(
  api: OperatorApi,
  name: string,
  services: readonly ChildService[],
  timeoutMs: number,
  signal: AbortSignal,
): Promise<FleetEntry> {
  const deadline = Date.now() + timeoutMs;
  let last: FleetEntry | undefined;
  while (Date.now() < deadline && !signal.aborted) {
    for (const service of services) {
      if (!service.running()) {
        const exit = await service.exited;
        throw new QuickstartError(
          'SERVICE_FAILED',
          `${service.name} ${describeExit(exit)} while the satellite was syncing; read ` +
            `${service.logFile} for the cause`,
        );
      }
    }
    const fleet = await fetchFleet(api);
    last = fleet.items.find((entry) => entry.name === name);
    if (last?.category === 'in-sync' && last.missingArtifacts === 0) return last;
    if (last?.category === 'revoked') {
      throw new QuickstartError(
        'SYNC_FAILED',
        `satellite ${name} is revoked; run again with --reset`,
      );
    }
    await new Promise((done) => setTimeout(done, FLEET_POLL_MS));
  }
  if (signal.aborted)
    throw new QuickstartError('SYNC_FAILED', 'stopped before the fleet was in sync');
  const category =
    last === undefined ? 'not listed in the fleet view' : `category ${last.category}`;
  throw new QuickstartError(
    'SYNC_TIMEOUT',
    `satellite ${name} was not in sync after ${Math.round(timeoutMs / 1000)} s: ${category}, ` +
      `${await describeSatellite(api, name)}; read the logs, or allow more time with --timeout SECONDS`,
  );
}
