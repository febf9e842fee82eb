// Fleet-scale benchmark of Ground Control on PostgreSQL. A load generator process
// (bench/dist/fleet-load.js) simulates N satellites that join for real. The bench measures 304
// state requests against a bare Fastify ceiling, heartbeats, the time a group change takes to
// reach every long-polling satellite, and Ground Control's RSS with N long polls waiting.
// Run with `pnpm bench:fleet` after `pnpm build`. Flags: `--smoke` (20 satellites, short
// phases), `--satellites N`, `--profile state|heartbeat|fleet` (that phase under --cpu-prof).
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { DEFAULT_SATELLITE_CONFIG, STATE_WAIT_MAX_SECONDS } from '@edge/contract';
import {
  buildTestImages,
  getFreePort,
  isSmokeMode,
  printTable,
  pushTestImages,
  spawnProcess,
  startRegistry,
  waitForHttp,
  writeBenchResults,
  type Figure,
  type ManagedProcess,
  type RegistryHandle,
} from '@edge/testkit';
import {
  createDatabase,
  OperatorApi,
  startGroundControl,
  type Database,
  type GroundControl,
} from './fleet/ground-control.js';
import { LoadGenerator } from './fleet/load-client.js';
import {
  LATENCY_GOAL_MS,
  runFleet,
  runHeartbeats,
  runStateSweep,
  type Target,
} from './fleet/phases.js';
import { readLoadAverage } from './fleet/proc.js';
import { formatProfile, summarizeProfile } from './fleet/profile.js';
import { BenchError } from './fleet/satellite.js';
import { headlineFigures, printSummaryLines, type Goals } from './fleet/summary.js';

const DEFAULT_ADMIN_DATABASE_URL = 'postgres://edge_test:edge_test@127.0.0.1:5432/edge_test';
const CEILING_ENTRY = join(import.meta.dirname, 'fleet-ceiling.js');
const REGISTRY_NAME = 'bench';
const GROUP_NAME = 'fleet';
const REPOSITORY = 'test/app-a';
const PROFILE_PHASES = ['state', 'heartbeat', 'fleet'] as const;
type ProfilePhase = (typeof PROFILE_PHASES)[number];

/** Sizes of a full run and of the smoke run that CI runs. */
const FULL = {
  satellites: 10_000,
  /** Satellites with a state request in flight at once, one closed-loop step each. */
  stateSteps: [8, 32, 128, 512],
  pairs: 3,
  rate: { warmupMs: 1_000, durationMs: 5_000 },
  heartbeatConcurrency: 64,
  heartbeatRuns: 3,
  /** Each change sends every satellite a new desired state, minutes of work at N = 10,000. */
  changes: 1,
};
const SMOKE = {
  satellites: 20,
  stateSteps: [4, 16],
  pairs: 1,
  rate: { warmupMs: 300, durationMs: 1_500 },
  heartbeatConcurrency: 8,
  heartbeatRuns: 1,
  changes: 1,
};
/** Joins in flight at once; each join is one transaction in Ground Control. */
const JOIN_CONCURRENCY = 32;
/** Connections of the fleet phase's own heartbeat pool, so heartbeats do not queue behind polls. */
const HEARTBEAT_CONNECTIONS = 64;

const GOALS: Goals = {
  statePerSecond: 5_000,
  heartbeatPerSecond: 2_000,
  propagationMs: 5_000,
  rssBytes: 500 * 1024 * 1024,
  latencyMs: LATENCY_GOAL_MS,
  /** The propagation and RSS goals are stated for this fleet size. */
  satellites: 10_000,
};

interface Options {
  smoke: boolean;
  satellites: number;
  profile: ProfilePhase | undefined;
}

function parseOptions(): Options {
  const { values } = parseArgs({
    options: {
      smoke: { type: 'boolean', default: false },
      satellites: { type: 'string' },
      profile: { type: 'string' },
    },
  });
  const smoke = values.smoke || isSmokeMode();
  const satellites = Number(values.satellites ?? (smoke ? SMOKE : FULL).satellites);
  if (!Number.isInteger(satellites) || satellites < 1) {
    throw new BenchError(`--satellites "${values.satellites}" is invalid; pass a whole number`);
  }
  const profile = values.profile;
  if (profile !== undefined && !(PROFILE_PHASES as readonly string[]).includes(profile)) {
    throw new BenchError(`--profile "${profile}" is invalid; use ${PROFILE_PHASES.join(', ')}`);
  }
  return { smoke, satellites, profile: profile as ProfilePhase | undefined };
}

async function startCeiling(): Promise<{ process: ManagedProcess; url: string }> {
  const port = await getFreePort();
  const child = spawnProcess(process.execPath, [CEILING_ENTRY, String(port)], {
    name: 'fleet-ceiling',
  });
  const url = `http://127.0.0.1:${port}`;
  await waitForHttp(`${url}/satellite/v1/state`, { expectStatus: [304], process: child });
  return { process: child, url };
}

async function main(): Promise<void> {
  const options = parseOptions();
  const sizes = options.smoke ? SMOKE : FULL;
  const n = options.satellites;
  const scratch = await mkdtemp(join(tmpdir(), 'bench-fleet-'));
  const secrets = {
    encryptionKey: randomBytes(32).toString('base64'),
    adminPassword: randomBytes(18).toString('base64url'),
  };
  const cleanups: (() => Promise<void>)[] = [];
  try {
    const images = await buildTestImages({ largeLayerMiB: 1 });
    const registry: RegistryHandle = await startRegistry();
    cleanups.push(() => registry.stop());
    await pushTestImages(registry, images, { only: ['app-a:1', 'app-a:2'] });
    const digestOf = (name: string): string => {
      const image = images.images[name];
      if (image === undefined) throw new BenchError(`test image ${name} is missing`);
      return image.digest;
    };

    const database: Database = await createDatabase(
      process.env.TEST_DATABASE_URL ?? DEFAULT_ADMIN_DATABASE_URL,
    );
    cleanups.push(() => database.drop());
    const dataDir = join(scratch, 'ground-control');
    await mkdir(dataDir);
    let groundControl: GroundControl = await startGroundControl(
      { databaseUrl: database.url, dataDir },
      secrets,
    );
    cleanups.push(() => groundControl.stop());
    const ceiling = await startCeiling();
    cleanups.push(() => ceiling.process.stop());

    const setupStarted = performance.now();
    const api = await OperatorApi.login(groundControl.url, secrets.adminPassword);
    cleanups.push(() => api.close());
    await api.createRegistry(REGISTRY_NAME, registry.url);
    await api.createGroup(GROUP_NAME, [
      { registry: REGISTRY_NAME, repository: REPOSITORY, tag: '1' },
    ]);
    const tokens = await api.createSatellites(n, GROUP_NAME);
    const createMs = performance.now() - setupStarted;
    const tokensFile = join(scratch, 'join-tokens.json');
    await writeFile(tokensFile, JSON.stringify(tokens), { mode: 0o600 });

    const load = new LoadGenerator();
    cleanups.push(() => load.stop());
    const joined = await load.request(
      { type: 'join', url: groundControl.url, tokensFile, concurrency: JOIN_CONCURRENCY },
      'joined',
    );
    await rm(tokensFile);
    process.stdout.write(
      `set-up: ${n} satellites created in ${(createMs / 1_000).toFixed(1)} s, joined in ` +
        `${(joined.joinMs / 1_000).toFixed(1)} s, first state in ${(joined.primeMs / 1_000).toFixed(1)} s\n`,
    );

    const profiles: string[] = [];
    let fleetError: string | undefined;
    /** Restarts Ground Control under `node --cpu-prof` for `phase` when --profile names it. */
    const profiled = async <T>(phase: ProfilePhase, run: () => Promise<T>): Promise<T> => {
      if (options.profile !== phase) return run();
      const profileDir = join(scratch, `profile-${phase}`);
      // The same port, so the operator API client and the satellites keep their base URL.
      const port = Number(new URL(groundControl.url).port);
      await groundControl.stop();
      groundControl = await startGroundControl(
        {
          databaseUrl: database.url,
          dataDir,
          nodeArgs: ['--cpu-prof', `--cpu-prof-dir=${profileDir}`],
          port,
        },
        secrets,
      );
      const result = await run();
      await groundControl.stop();
      const text = formatProfile(
        `Ground Control CPU profile, ${phase} phase`,
        await summarizeProfile(profileDir),
      );
      process.stdout.write(`${text}\n`);
      profiles.push(text);
      groundControl = await startGroundControl(
        { databaseUrl: database.url, dataDir, port },
        secrets,
      );
      return result;
    };
    // The target reads the URL and PID at each run, because a profiled phase restarts the process.
    const gcTarget: Target = {
      label: 'ground-control',
      get url() {
        return groundControl.url;
      },
      pid: () => groundControl.process.pid,
    };
    const ceilingTarget: Target = {
      label: 'bare-fastify',
      url: ceiling.url,
      pid: () => ceiling.process.pid,
    };

    const loadBefore = await readLoadAverage();
    const steps = sizes.stateSteps.filter((step) => step <= n);
    const sweep = await profiled('state', () =>
      runStateSweep(
        load,
        gcTarget,
        ceilingTarget,
        steps.length > 0 ? steps : [n],
        sizes.pairs,
        sizes.rate,
      ),
    );
    const heartbeats = await profiled('heartbeat', () =>
      runHeartbeats(
        load,
        gcTarget,
        Math.min(sizes.heartbeatConcurrency, n),
        sizes.heartbeatRuns,
        sizes.rate,
      ),
    );
    const changes = Array.from({ length: sizes.changes }, (_, i) =>
      i % 2 === 0
        ? { tag: '2', digest: digestOf('app-a:2') }
        : { tag: '1', digest: digestOf('app-a:1') },
    );
    printTable([...sweep.figures, ...heartbeats.figures]);
    const fleet = await profiled('fleet', () =>
      runFleet(load, gcTarget, api, {
        satellites: n,
        waitSeconds: STATE_WAIT_MAX_SECONDS,
        heartbeatIntervalSeconds: DEFAULT_SATELLITE_CONFIG.heartbeatIntervalSeconds,
        heartbeatConnections: HEARTBEAT_CONNECTIONS,
        group: GROUP_NAME,
        changes,
        repository: REPOSITORY,
        registry: REGISTRY_NAME,
      }),
    ).catch((error: unknown) => {
      // The earlier phases' figures are still worth writing; the summary names the failure.
      fleetError = error instanceof Error ? error.message : String(error);
      process.stderr.write(`fleet phase failed: ${fleetError}\n`);
      return undefined;
    });
    const loadAfter = await readLoadAverage();

    const headline = headlineFigures(sweep.steps, heartbeats, fleet, n, GOALS);
    const figures: Figure[] = [
      ...headline,
      ...sweep.figures,
      ...heartbeats.figures,
      ...(fleet?.figures ?? []),
      { name: 'set-up create satellites', unit: 'ms', value: createMs },
      { name: 'set-up join satellites', unit: 'ms', value: joined.joinMs },
    ];
    printTable(figures);
    const path = await writeBenchResults('fleet', figures, {
      smoke: options.smoke,
      satellites: n,
      stateSteps: steps,
      pairs: sizes.pairs,
      rate: sizes.rate,
      heartbeatConcurrency: sizes.heartbeatConcurrency,
      postgres: database.serverVersion,
      loadAverage: { before: loadBefore, after: loadAfter },
      longPollWaitSeconds: STATE_WAIT_MAX_SECONDS,
      profile: options.profile ?? null,
      profiles,
      goals: GOALS,
      fleetError: fleetError ?? null,
    });
    process.stdout.write(`results: ${path}\n`);
    printSummaryLines(headline);
    if (fleetError !== undefined) process.stdout.write(`fleet phase: FAILED, ${fleetError}\n`);
  } finally {
    for (const cleanup of cleanups.reverse()) {
      await cleanup().catch((error: unknown) => {
        process.stderr.write(
          `clean-up failed: ${error instanceof Error ? error.message : String(error)}\n`,
        );
      });
    }
    await rm(scratch, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  process.stderr.write(
    `bench:fleet failed: ${error instanceof Error ? error.message : String(error)}\n`,
  );
  process.exitCode = 1;
});
