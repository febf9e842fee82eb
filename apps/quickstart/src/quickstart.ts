import type { QuickstartOptions } from './args.js';
import type { RunningServices } from './running-services.js';
import { prepareDataDir } from './data-dir.js';
import { OperatorApi } from './operator-api.js';
import { claimPort, LOOPBACK } from './ports.js';
import {
  ADMIN_PASSWORD_LABEL,
  formatFleet,
  formatFleetReport,
  formatPullCommands,
} from './report.js';
import { assertBuilt, startGroundControl, startSatellite } from './services.js';
import { ensureConfig, ensureGroup, ensureRegistry, ensureSatellite, NAMES } from './setup.js';
import { fetchFleet, waitForInSync } from './sync.js';
import { externalUpstream, startDemoUpstream } from './upstream.js';

/** User name of the account Ground Control creates on its first start. */
const ADMIN_USERNAME = 'admin';

/**
 * Runs the quickstart up to a fleet in sync: data folder, central registry (with the demo images
 * unless --upstream), Ground Control, the operator API setup, the satellite, then the wait.
 */
export async function runQuickstart(
  options: QuickstartOptions,
  services: RunningServices,
  progress: (line: string) => void,
  signal: AbortSignal,
): Promise<void> {
  await assertBuilt();
  const prepared = await prepareDataDir(options.dataDir, options.reset);
  const { paths } = prepared;
  progress(
    {
      new: `data folder ${paths.root}: new`,
      reused: `data folder ${paths.root}: reusing the data of an earlier run (--reset starts over)`,
      reset: `data folder ${paths.root}: reset, the earlier data was deleted`,
    }[prepared.origin],
  );

  const gcPort = await claimPort(options.gcPort, '--gc-port');
  const sitePort = await claimPort(options.sitePort, '--site-port');
  const upstreamPort =
    options.upstream === undefined ? await claimPort(options.upstreamPort, '--upstream-port') : 0;
  const metricsPort = await claimPort(0, 'the satellite metrics port');

  const upstream =
    options.upstream === undefined
      ? await startDemoUpstream(paths, upstreamPort, progress, services)
      : await externalUpstream(options.upstream);
  if (signal.aborted) return;

  progress('starting Ground Control on PGlite (the first start migrates its database)');
  const groundControlUrl = `http://${LOOPBACK}:${gcPort}`;
  const groundControl = await startGroundControl(paths, gcPort, prepared.adminPassword, services);
  progress(`Ground Control ready at ${groundControlUrl} (log: ${groundControl.logFile})`);
  if (prepared.passwordIsNew) {
    progress(`${ADMIN_PASSWORD_LABEL} ${prepared.adminPassword}`);
  }
  progress(`admin user "${ADMIN_USERNAME}"; its password is stored in ${paths.stateFile}`);
  if (signal.aborted) return;

  const api = new OperatorApi(groundControlUrl);
  await api.login(ADMIN_USERNAME, prepared.adminPassword);
  await ensureRegistry(api, upstream.entry);
  await ensureConfig(api);
  const group = await ensureGroup(api, upstream.images);
  progress(
    `group ${NAMES.group}: ${group.selections
      .map((selection) => `${selection.repository}:${selection.tag ?? ''}`)
      .join(', ')}`,
  );
  const joinToken = await ensureSatellite(api, paths.satellite);
  progress(
    joinToken === undefined
      ? `satellite ${NAMES.satellite}: already joined, restarting it`
      : `satellite ${NAMES.satellite}: created, with a join token`,
  );
  if (signal.aborted) return;

  const satellite = await startSatellite(
    paths,
    { groundControlUrl, joinToken, sitePort, metricsPort },
    services,
  );
  progress(
    `satellite started; site registry at http://${LOOPBACK}:${sitePort} (log: ${satellite.logFile})`,
  );
  progress(`waiting up to ${options.timeoutSeconds} s for the fleet view to show it in sync`);
  await waitForInSync(api, NAMES.satellite, services.list(), options.timeoutSeconds * 1000, signal);

  const fleet = await fetchFleet(api);
  progress(
    formatFleetReport(
      formatFleet(fleet),
      formatPullCommands(sitePort, upstream.entry.url, upstream.images),
    ),
  );
}
