import { access } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startService, waitUntilReady, type ChildService } from './children.js';
import type { DataDir } from './data-dir.js';
import type { RunningServices } from './running-services.js';
import { QuickstartError } from './errors.js';
import { LOOPBACK } from './ports.js';

/** Repository root, three levels above `apps/quickstart/dist/`. */
const REPOSITORY_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
export const GROUND_CONTROL_MAIN = join(REPOSITORY_ROOT, 'apps/ground-control/dist/main.js');
export const SATELLITE_MAIN = join(REPOSITORY_ROOT, 'apps/satellite/dist/main.js');
export const REGISTRY_CLI = join(REPOSITORY_ROOT, 'packages/registry/dist/cli.js');

/**
 * Time allowed until a service returns 200 on its readiness URL, in ms. Ground Control on PGlite
 * migrates its database on the first start, which took 39 s on a busy 2-core machine.
 */
export const READY_TIMEOUT_MS = 120_000;

/** Time limits for each service's graceful stop before SIGKILL, in ms: its own shutdown limit plus 5 s. */
export const STOP_TIMEOUT_MS = {
  // The satellite's default shutdownTimeoutSeconds is 25.
  satellite: 30_000,
  // Ground Control allows 10 s for open requests.
  groundControl: 15_000,
  registry: 10_000,
} as const;

/** Environment of a child: ours without settings of the services, so that only ours apply. */
function childEnvironment(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (key.startsWith('GC_') || key.startsWith('SATELLITE_') || key === 'DATABASE_URL') continue;
    env[key] = value;
  }
  return { ...env, ...extra };
}

/** Fails with BUILD_MISSING when a service's build output is absent. */
export async function assertBuilt(): Promise<void> {
  for (const file of [GROUND_CONTROL_MAIN, SATELLITE_MAIN, REGISTRY_CLI]) {
    try {
      await access(file);
    } catch {
      throw new QuickstartError('BUILD_MISSING', `${file} is missing; run pnpm build first`);
    }
  }
}

/** Starts the embedded registry with push on, as the central registry, and waits for `/v2/`. */
export async function startUpstreamRegistry(
  paths: DataDir,
  port: number,
  services: RunningServices,
): Promise<ChildService> {
  const service = await startService(
    'central registry',
    REGISTRY_CLI,
    ['serve', '--root', paths.upstreamStore, '--listen', `${LOOPBACK}:${port}`, '--push'],
    childEnvironment({}),
    join(paths.logs, 'central-registry.log'),
    (service) => services.add(service, STOP_TIMEOUT_MS.registry),
  );
  await waitUntilReady(service, `http://${LOOPBACK}:${port}/v2/`, READY_TIMEOUT_MS);
  return service;
}

/** Starts Ground Control on PGlite in the data folder and waits for `/readyz`. */
export async function startGroundControl(
  paths: DataDir,
  port: number,
  adminPassword: string,
  services: RunningServices,
): Promise<ChildService> {
  const service = await startService(
    'Ground Control',
    GROUND_CONTROL_MAIN,
    [],
    childEnvironment({
      GC_HOST: LOOPBACK,
      GC_PORT: String(port),
      GC_DATA_DIR: paths.groundControl,
      // Used only when the admin account does not exist yet, that is on the first start.
      GC_ADMIN_PASSWORD: adminPassword,
      GC_LOG_LEVEL: 'info',
    }),
    join(paths.logs, 'ground-control.log'),
    (service) => services.add(service, STOP_TIMEOUT_MS.groundControl),
  );
  await waitUntilReady(service, `http://${LOOPBACK}:${port}/readyz`, READY_TIMEOUT_MS);
  return service;
}

export interface SatelliteStart {
  groundControlUrl: string;
  /** Join token; undefined when the satellite's data folder already contains an identity. */
  joinToken: string | undefined;
  sitePort: number;
  metricsPort: number;
}

/** Starts the satellite with its embedded registry and waits for its `/healthz`. */
export async function startSatellite(
  paths: DataDir,
  start: SatelliteStart,
  services: RunningServices,
): Promise<ChildService> {
  const service = await startService(
    'satellite',
    SATELLITE_MAIN,
    ['run'],
    childEnvironment({
      SATELLITE_GROUND_CONTROL_URL: start.groundControlUrl,
      SATELLITE_DATA_DIR: paths.satellite,
      SATELLITE_REGISTRY: 'embedded',
      SATELLITE_REGISTRY_LISTEN: `${LOOPBACK}:${start.sitePort}`,
      SATELLITE_METRICS_LISTEN: `${LOOPBACK}:${start.metricsPort}`,
      SATELLITE_LOG_LEVEL: 'info',
      // Passed in the environment, not as a flag, so that it does not show in `ps`.
      ...(start.joinToken !== undefined ? { SATELLITE_TOKEN: start.joinToken } : {}),
    }),
    join(paths.logs, 'satellite.log'),
    (service) => services.add(service, STOP_TIMEOUT_MS.satellite),
  );
  await waitUntilReady(
    service,
    `http://${LOOPBACK}:${start.metricsPort}/healthz`,
    READY_TIMEOUT_MS,
  );
  return service;
}
