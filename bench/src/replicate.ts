// Replication benchmark: the satellite against `skopeo sync --all --preserve-digests`, both
// copying the test-kit image set from an upstream docker-registry with basic auth, through a
// counting proxy, alternating A B A B.
//
//   pnpm bench:replicate            full run: 200 MiB layer, 5 pairs per comparison
//   pnpm bench:replicate --smoke    1 MiB layer, one pair
//   node bench/dist/replicate.js --only reconcile-external-cold --pairs 1
//                                   one comparison (a key printed as "running KEY")
//
// BENCH_SATELLITE_NODE_ARGS goes to `node` before the satellite's entry, e.g.
// `--cpu-prof --cpu-prof-dir=/tmp/profiles` for a CPU profile of each satellite run.
//
// The satellite is measured two ways: the whole `sync --once` process under GNU time, and the
// reconcile inside a running `satellite run` from the moment Ground Control stores the new
// revision until status.json reports it in sync (CPU and peak RSS from /proc for that window).
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  buildTestImages,
  isSmokeMode,
  measureCommand,
  printTable,
  pushTestImages,
  runAlternating,
  spawnProcess,
  startFaultProxy,
  startRegistry,
  summarize,
  writeBenchResults,
  type BenchComparison,
  type BenchSide,
  type FaultProxy,
  type Figure,
  type ManagedProcess,
  type Measurement,
  type RegistryHandle,
  type TestImages,
} from '@edge/testkit';
import {
  IMAGE_SET,
  optionValue,
  satelliteArgs,
  SKOPEO_BLOB_INFO_CACHE,
  createSatellite,
  createUpstream,
  downloadedBytesTotal,
  processCpuMs,
  processPeakRssBytes,
  readLocalStatus,
  resetPeakRss,
  resetSatelliteData,
  satelliteEnv,
  selectionsOf,
  skopeoSyncArgs,
  startGroundControl,
  waitInSync,
  writeSkopeoSyncFile,
  type GroundControl,
  type SatelliteSite,
} from './replication/environment.js';

/** Size of the large:1 layer in MiB (full run / smoke run). */
const LARGE_LAYER_MIB = { full: 200, smoke: 1 };
/** Measured pairs per comparison; the smoke mode of runAlternating runs one. */
const PAIRS = 5;
/** Runs of `node -e 0` for Node's own start-up time. */
const NODE_STARTUP_RUNS = 5;
/** Time allowed for one reconcile of the whole set, in ms; a cold copy took a few seconds. */
const RECONCILE_TIMEOUT_MS = 120_000;
/** Goals: reconcile wall time over skopeo's, and the satellite's peak RSS. */
const GOAL_COLD_EXTERNAL_RATIO = 1.0;
const GOAL_COLD_EMBEDDED_RATIO = 0.7;
const GOAL_WARM_RATIO = 1.0;
const GOAL_PEAK_RSS_BYTES = 150 * 1000 * 1000;
/** The image left out of the group before a warm reconcile, so that re-adding it is a revision. */
const WARM_TOGGLE_IMAGE = 'app-b:1';
const UPSTREAM_NAME = 'up';

interface Context {
  images: TestImages;
  gc: GroundControl;
  proxy: FaultProxy;
  syncFile: string;
  /** Registries started by the bench and still running, stopped at the end. */
  registries: Set<RegistryHandle>;
}

/** A site and the registry it writes to when external (replaced by an empty one for cold runs). */
interface Site extends SatelliteSite {
  group: string;
  external?: RegistryHandle;
}

async function replaceExternal(context: Context, site: Site): Promise<void> {
  if (site.external !== undefined) {
    context.registries.delete(site.external);
    await site.external.stop();
  }
  site.external = await startRegistry({ auth: 'none' });
  context.registries.add(site.external);
  site.registry = { kind: 'external', url: site.external.url };
}

function upstreamBytes(context: Context, measurement: Measurement): Measurement {
  return {
    ...measurement,
    extra: { ...measurement.extra, upstreamBytes: context.proxy.counters.responseBytes },
  };
}

/** `satellite sync --once` as one process, cold (site emptied first) or warm. */
function syncOnceSide(context: Context, site: Site, cold: boolean): BenchSide {
  let env: NodeJS.ProcessEnv = {};
  return {
    label: `once-${site.registry.kind}-${cold ? 'cold' : 'warm'}`,
    before: async () => {
      if (cold) {
        await resetSatelliteData(site.dataDir);
        if (site.registry.kind === 'external') await replaceExternal(context, site);
      }
      env = await satelliteEnv(context.gc, site);
      context.proxy.resetCounters();
    },
    run: async () =>
      upstreamBytes(
        context,
        await measureCommand(process.execPath, satelliteArgs(['sync', '--once']), { env }),
      ),
  };
}

/** Builds the skopeo peer; `pairedWith` keeps figure names apart across comparisons. */
function skopeoSide(context: Context, cold: boolean, pairedWith: string): BenchSide {
  let destination: RegistryHandle | undefined;
  return {
    label: `skopeo-${cold ? 'cold' : 'warm'}(${pairedWith})`,
    before: async () => {
      if (cold || destination === undefined) {
        if (destination !== undefined) {
          context.registries.delete(destination);
          await destination.stop();
        }
        destination = await startRegistry({ auth: 'none' });
        context.registries.add(destination);
        if (!cold) {
          // A warm run needs the set present, so the first one fills the new registry.
          await measureCommand('skopeo', skopeoSyncArgs(context.syncFile, destination.host));
        }
      }
      if (cold) await rm(SKOPEO_BLOB_INFO_CACHE, { force: true });
      context.proxy.resetCounters();
    },
    run: async () => {
      if (destination === undefined) throw new Error('skopeo side ran before its setup');
      return upstreamBytes(
        context,
        await measureCommand('skopeo', skopeoSyncArgs(context.syncFile, destination.host)),
      );
    },
  };
}

/** A running `satellite run` with its metrics URL. */
interface Daemon {
  process: ManagedProcess;
  metricsUrl: string;
}

async function startDaemon(context: Context, site: Site): Promise<Daemon> {
  const env = await satelliteEnv(context.gc, site);
  const child = spawnProcess(process.execPath, satelliteArgs(['run']), {
    name: `satellite ${site.name}`,
    env,
  });
  return { process: child, metricsUrl: `http://${env.SATELLITE_METRICS_LISTEN ?? ''}` };
}

async function appliedRevision(site: Site): Promise<number> {
  return (await readLocalStatus(site.dataDir))?.appliedRevision ?? 0;
}

/**
 * Measures one reconcile of a running satellite. The group gets the whole image set, and the
 * clock starts when Ground Control has returned the change, because it resolves tags first.
 */
async function measureReconcile(
  context: Context,
  site: Site,
  daemon: Daemon,
  expectedPresent: number,
): Promise<Measurement> {
  const pid = daemon.process.pid;
  const previous = await appliedRevision(site);
  await resetPeakRss(pid);
  const cpuBefore = await processCpuMs(pid);
  const downloadedBefore = await downloadedBytesTotal(daemon.metricsUrl);
  await context.gc.api(
    'PUT',
    `/api/v1/groups/${site.group}/selections`,
    selectionsOf(context.images, IMAGE_SET, UPSTREAM_NAME),
  );
  context.proxy.resetCounters();
  const started = performance.now();
  await waitInSync(
    site.dataDir,
    previous + 1,
    expectedPresent,
    RECONCILE_TIMEOUT_MS,
    daemon.process,
  );
  const wallMs = performance.now() - started;
  return {
    wallMs,
    cpuMs: (await processCpuMs(pid)) - cpuBefore,
    peakRssBytes: await processPeakRssBytes(pid),
    extra: {
      upstreamBytes: context.proxy.counters.responseBytes,
      downloadedBlobBytes: (await downloadedBytesTotal(daemon.metricsUrl)) - downloadedBefore,
    },
  };
}

/** Builds the reconcile side, cold (empty site, empty group first) or warm. */
function reconcileSide(
  context: Context,
  site: Site,
  cold: boolean,
): BenchSide & { stop(): Promise<void> } {
  let daemon: Daemon | undefined;
  const stopDaemon = async (): Promise<void> => {
    await daemon?.process.stop('SIGTERM', 30_000);
    daemon = undefined;
  };
  const setGroup = (names: readonly string[]) =>
    context.gc.api(
      'PUT',
      `/api/v1/groups/${site.group}/selections`,
      selectionsOf(context.images, names, UPSTREAM_NAME),
    );
  return {
    label: `reconcile-${site.registry.kind}-${cold ? 'cold' : 'warm'}`,
    before: async () => {
      if (cold) {
        await stopDaemon();
        await resetSatelliteData(site.dataDir);
        if (site.registry.kind === 'external') await replaceExternal(context, site);
        await setGroup([]);
        daemon = await startDaemon(context, site);
        await waitInSync(site.dataDir, 1, 0, RECONCILE_TIMEOUT_MS, daemon.process);
      } else {
        daemon ??= await startDaemon(context, site);
        const previous = await appliedRevision(site);
        await setGroup(IMAGE_SET.filter((name) => name !== WARM_TOGGLE_IMAGE));
        await waitInSync(
          site.dataDir,
          previous + 1,
          IMAGE_SET.length - 1,
          RECONCILE_TIMEOUT_MS,
          daemon.process,
        );
      }
    },
    run: async () => {
      if (daemon === undefined) throw new Error('reconcile side ran before its setup');
      return measureReconcile(context, site, daemon, IMAGE_SET.length);
    },
    stop: stopDaemon,
  };
}

async function measureNodeStartup(): Promise<Figure> {
  const runs: number[] = [];
  for (let i = 0; i < (isSmokeMode() ? 1 : NODE_STARTUP_RUNS); i++) {
    runs.push((await measureCommand(process.execPath, ['-e', '0'])).wallMs);
  }
  const stats = summarize(runs);
  return { name: 'node -e 0 wallMs', unit: 'ms', value: stats.median, ...stats };
}

async function createSite(context: Context, kind: 'embedded' | 'external'): Promise<Site> {
  const name = `bench-${kind}`;
  await context.gc.api('POST', '/api/v1/groups', {
    name,
    selections: selectionsOf(context.images, IMAGE_SET, UPSTREAM_NAME),
  });
  const site: Site = {
    name,
    group: name,
    dataDir: await mkdtemp(join(tmpdir(), `bench-replicate-${kind}-`)),
    token: await createSatellite(context.gc, name, name),
    registry: { kind: 'embedded' },
  };
  if (kind === 'external') await replaceExternal(context, site);
  // The first run joins and fills the site, so that every measured run reuses the identity.
  await measureCommand(process.execPath, satelliteArgs(['sync', '--once']), {
    env: await satelliteEnv(context.gc, site),
  });
  return site;
}

interface GoalCheck {
  name: string;
  met: boolean;
  text: string;
}

function ratioOf(result: BenchComparison, metric: string): number {
  return result.ratios[metric]?.median ?? Number.NaN;
}

function checkGoals(results: Record<string, BenchComparison>): GoalCheck[] {
  const checks: GoalCheck[] = [];
  const ratioGoal = (key: string, goal: number) => {
    const result = results[key];
    if (result === undefined) return;
    const ratio = ratioOf(result, 'wallMs');
    checks.push({
      name: `${result.a.label} wall / skopeo`,
      met: ratio <= goal,
      text: `${ratio.toFixed(2)} (goal <= ${goal})`,
    });
  };
  ratioGoal('reconcile-external-cold', GOAL_COLD_EXTERNAL_RATIO);
  ratioGoal('reconcile-embedded-cold', GOAL_COLD_EMBEDDED_RATIO);
  ratioGoal('reconcile-external-warm', GOAL_WARM_RATIO);
  ratioGoal('reconcile-embedded-warm', GOAL_WARM_RATIO);
  for (const key of ['reconcile-external-warm', 'reconcile-embedded-warm']) {
    const result = results[key];
    const bytes = result?.a.stats.downloadedBlobBytes?.max;
    if (result === undefined || bytes === undefined) continue;
    checks.push({
      name: `${result.a.label} blob bytes`,
      met: bytes === 0,
      text: `max ${bytes} (goal 0)`,
    });
  }
  for (const [key, result] of Object.entries(results)) {
    if (!key.startsWith('reconcile-')) continue;
    const peak = result.a.stats.peakRssBytes?.max ?? Number.NaN;
    checks.push({
      name: `${result.a.label} peak RSS`,
      met: peak < GOAL_PEAK_RSS_BYTES,
      text: `max ${(peak / 1e6).toFixed(1)} MB (goal < ${GOAL_PEAK_RSS_BYTES / 1e6} MB)`,
    });
  }
  return checks;
}

/** Sets the unit `bytes` on byte counts of `extra`, which the test kit reports as `count`. */
function withByteUnit(figure: Figure): Figure {
  return figure.unit === 'count' && figure.name.endsWith('Bytes')
    ? { ...figure, unit: 'bytes' }
    : figure;
}

/** Formats one summary line: value and unit, then the peer and the ratio where present. */
function summaryLine(figure: Figure): string {
  const digits = figure.unit === 'ratio' ? 3 : 0;
  const parts = [`${figure.name}: ${figure.value.toFixed(digits)} ${figure.unit}`];
  if (figure.unit !== 'ratio' && figure.peer !== undefined && figure.peer !== null) {
    parts.push(`peer ${figure.peer.toFixed(digits)}`);
  }
  if (figure.unit !== 'ratio' && figure.ratio !== undefined && figure.ratio !== null) {
    parts.push(`ratio ${figure.ratio.toFixed(3)}`);
  }
  parts.push(
    `(min ${(figure.min ?? figure.value).toFixed(digits)}, max ${(figure.max ?? figure.value).toFixed(digits)})`,
  );
  return parts.join(', ');
}

async function main(): Promise<void> {
  const smoke = isSmokeMode();
  const layerMiB = smoke ? LARGE_LAYER_MIB.smoke : LARGE_LAYER_MIB.full;
  const images = await buildTestImages({ largeLayerMiB: layerMiB });
  const workDir = await mkdtemp(join(tmpdir(), 'bench-replicate-'));
  const registries = new Set<RegistryHandle>();
  const cleanups: (() => Promise<void>)[] = [];
  try {
    const upstream = await startRegistry({ auth: 'basic' });
    registries.add(upstream);
    await pushTestImages(upstream, images, { only: [...IMAGE_SET], referrersIndex: false });
    // Both sides read the upstream through this proxy, which counts the bytes it returns.
    const proxy = await startFaultProxy(upstream.url);
    cleanups.push(() => proxy.stop());
    const gc = await startGroundControl();
    cleanups.push(() => gc.stop());
    await createUpstream(gc, UPSTREAM_NAME, proxy.url, upstream);
    const { username, password } = upstream;
    if (username === undefined || password === undefined) {
      throw new Error('the upstream registry started without basic-auth credentials');
    }
    const syncFile = await writeSkopeoSyncFile(workDir, new URL(proxy.url).host, images, {
      username,
      password,
    });
    const context: Context = { images, gc, proxy, syncFile, registries };
    const embedded = await createSite(context, 'embedded');
    const external = await createSite(context, 'external');
    for (const site of [embedded, external]) {
      cleanups.push(() => rm(site.dataDir, { recursive: true, force: true }));
    }

    const results: Record<string, BenchComparison> = {};
    const only = optionValue('--only');
    const pairs = Number(optionValue('--pairs') ?? PAIRS);
    const compare = async (key: string, a: BenchSide, b: BenchSide) => {
      if (only !== undefined && only !== key) return;
      console.error(`running ${key}`);
      results[key] = await runAlternating({ name: key, pairs, a, b });
      // Written after every comparison, so that an interrupted full run keeps what it measured.
      await writeBenchResults(
        'replicate',
        Object.values(results).flatMap((result) => result.figures.map(withByteUnit)),
        { partial: true, largeLayerMiB: layerMiB, pairs: smoke ? 1 : pairs },
      );
    };
    for (const cold of [true, false]) {
      for (const site of [embedded, external]) {
        const side = syncOnceSide(context, site, cold);
        await compare(side.label, side, skopeoSide(context, cold, side.label));
      }
    }
    for (const site of [embedded, external]) {
      for (const cold of [true, false]) {
        const side = reconcileSide(context, site, cold);
        cleanups.push(() => side.stop());
        try {
          await compare(side.label, side, skopeoSide(context, cold, side.label));
        } finally {
          // The warm series reuses the daemon of the cold one only through the data folder.
          await side.stop();
        }
      }
    }

    const figures = [
      await measureNodeStartup(),
      ...Object.values(results).flatMap((result) => result.figures.map(withByteUnit)),
    ];
    printTable(figures);
    const checks = checkGoals(results);
    const path = await writeBenchResults('replicate', figures, {
      smoke,
      largeLayerMiB: layerMiB,
      images: [...IMAGE_SET],
      blobBytes: images.totalBytes,
      pairs: smoke ? 1 : pairs,
      goals: checks,
    });
    console.log(`results written to ${path}`);
    for (const figure of figures) console.log(summaryLine(figure));
    for (const check of checks) {
      console.log(`goal ${check.met ? 'met' : 'MISSED'}: ${check.name} ${check.text}`);
    }
  } finally {
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
    for (const registry of registries) await registry.stop().catch(() => undefined);
    await rm(workDir, { recursive: true, force: true });
  }
}

await main();
