// The measured phases of the fleet bench. Each returns figures for writeBenchResults.
import { runAlternating, summarize, type Figure, type Measurement } from '@edge/testkit';
import { sleep } from './concurrency.js';
import { readLongPolls, type OperatorApi } from './ground-control.js';
import type { LoadGenerator } from './load-client.js';
import type { RateCommand } from './messages.js';
import { cpuMsBetween, readCpuMs, readCpuMsByName, readRss } from './proc.js';
import { BenchError } from './satellite.js';

/** The latency goal of state requests and heartbeats: p99 under this many milliseconds. */
export const LATENCY_GOAL_MS = 100;
/** Command name of PostgreSQL's server processes in /proc/<pid>/comm (PostgreSQL 15 on Linux). */
const POSTGRES_COMMAND = 'postgres';
/**
 * How often the bench reads Ground Control's long-poll gauge while the fleet parks, in ms.
 * Each scrape makes prom-client list every open socket, about 5 % of Ground Control's profile samples at
 * 10,000 polls when read every 250 ms, so the bench reads it rarely.
 */
const PARK_POLL_INTERVAL_MS = 2_000;
/** Time allowed for all N long polls to be held by Ground Control, in milliseconds. */
const PARK_TIMEOUT_MS = 120_000;
/**
 * Time allowed for one group change to reach every satellite, in milliseconds: far above the
 * 5 s goal, so a slow change is measured instead of aborting the run.
 */
const PROPAGATION_TIMEOUT_MS = 900_000;

export interface Target {
  label: string;
  url: string;
  pid: () => number;
}

export interface RateSettings {
  warmupMs: number;
  durationMs: number;
}

/** Runs one closed-loop rate run and adds the target process's CPU time and RSS. */
async function measureRate(
  load: LoadGenerator,
  target: Target,
  kind: RateCommand['kind'],
  concurrency: number,
  settings: RateSettings,
): Promise<Measurement> {
  const pid = target.pid();
  const cpuBefore = await readCpuMs(pid);
  const loadCpuBefore = await readCpuMs(load.pid);
  const postgresCpuBefore = await readCpuMsByName(POSTGRES_COMMAND);
  const reply = await load.request(
    { type: 'rate', url: target.url, kind, concurrency, ...settings },
    'rate',
  );
  const cpuMs = (await readCpuMs(pid)) - cpuBefore;
  const loadCpuMs = (await readCpuMs(load.pid)) - loadCpuBefore;
  const postgresCpuMs = cpuMsBetween(postgresCpuBefore, await readCpuMsByName(POSTGRES_COMMAND));
  const { rssBytes } = await readRss(pid);
  const result = reply.result;
  if (result.requests !== result.expected) {
    process.stderr.write(
      `warning: ${target.label} ${kind} at ${concurrency} in flight: ` +
        `${result.requests - result.expected} of ${result.requests} answers had another status; ` +
        `statuses ${JSON.stringify(result.statuses)}\n`,
    );
  }
  return {
    wallMs: result.durationMs,
    cpuMs,
    peakRssBytes: rssBytes,
    extra: {
      perSecond: result.perSecond,
      p50Ms: result.p50Ms,
      p99Ms: result.p99Ms,
      unexpected: result.requests - result.expected,
      disconnectsPerRequest: result.requests > 0 ? result.disconnects / result.requests : 0,
      loadGeneratorCpuMs: loadCpuMs,
      postgresCpuMs,
    },
  };
}

/** Units of the extra metrics of measureRate; runAlternating labels every extra as `count`. */
const EXTRA_UNITS: Record<string, string> = {
  perSecond: 'requests/s',
  p50Ms: 'ms',
  p99Ms: 'ms',
  unexpected: 'count',
  disconnectsPerRequest: 'connections closed per request',
  loadGeneratorCpuMs: 'ms',
  postgresCpuMs: 'ms',
};

export interface SweepStep {
  concurrency: number;
  perSecond: number;
  p50Ms: number;
  p99Ms: number;
  ceilingPerSecond: number;
  ceilingP99Ms: number;
  /** Median of the pairwise ratios Ground Control / ceiling of requests per second. */
  ratio: number;
}

/**
 * Measures conditional state requests that return 304 at each number of satellites in flight,
 * Ground Control and the bare Fastify ceiling alternating (A B A B ...).
 */
export async function runStateSweep(
  load: LoadGenerator,
  groundControl: Target,
  ceiling: Target,
  steps: number[],
  pairs: number,
  settings: RateSettings,
): Promise<{ figures: Figure[]; steps: SweepStep[] }> {
  const figures: Figure[] = [];
  const results: SweepStep[] = [];
  for (const concurrency of steps) {
    const comparison = await runAlternating({
      name: `state ${concurrency}`,
      pairs,
      warmup: 0,
      a: {
        label: groundControl.label,
        run: () => measureRate(load, groundControl, 'state', concurrency, settings),
      },
      b: {
        label: ceiling.label,
        run: () => measureRate(load, ceiling, 'state', concurrency, settings),
      },
    });
    const prefix = `state 304 at ${concurrency} in flight`;
    figures.push(
      ...comparison.figures.map((f) => ({
        ...f,
        name: `${prefix} ${f.name}`,
        unit: f.unit === 'count' ? (EXTRA_UNITS[f.name.split(' ').at(-1) ?? ''] ?? f.unit) : f.unit,
      })),
    );
    const a = comparison.a.stats;
    const b = comparison.b.stats;
    results.push({
      concurrency,
      perSecond: a.perSecond?.median ?? 0,
      p50Ms: a.p50Ms?.median ?? 0,
      p99Ms: a.p99Ms?.median ?? 0,
      ceilingPerSecond: b.perSecond?.median ?? 0,
      ceilingP99Ms: b.p99Ms?.median ?? 0,
      ratio: comparison.ratios.perSecond?.median ?? 0,
    });
  }
  return { figures, steps: results };
}

export interface HeartbeatResult {
  perSecond: number;
  p50Ms: number;
  p99Ms: number;
  figures: Figure[];
}

/** Measures heartbeat status reports in a closed loop, `runs` times, and takes medians. */
export async function runHeartbeats(
  load: LoadGenerator,
  groundControl: Target,
  concurrency: number,
  runs: number,
  settings: RateSettings,
): Promise<HeartbeatResult> {
  const measurements: Measurement[] = [];
  for (let i = 0; i < runs; i++) {
    measurements.push(await measureRate(load, groundControl, 'heartbeat', concurrency, settings));
  }
  const stat = (
    key: 'perSecond' | 'p50Ms' | 'p99Ms' | 'unexpected' | 'loadGeneratorCpuMs' | 'postgresCpuMs',
  ) => summarize(measurements.map((m) => m.extra?.[key] ?? 0));
  const cpu = summarize(measurements.map((m) => m.cpuMs));
  const perSecond = stat('perSecond');
  const p50 = stat('p50Ms');
  const p99 = stat('p99Ms');
  const unexpected = stat('unexpected');
  const name = `heartbeats at ${concurrency} in flight`;
  return {
    perSecond: perSecond.median,
    p50Ms: p50.median,
    p99Ms: p99.median,
    figures: [
      { name: `${name} perSecond`, unit: 'requests/s', value: perSecond.median, ...perSecond },
      { name: `${name} p50Ms`, unit: 'ms', value: p50.median, ...p50 },
      { name: `${name} p99Ms`, unit: 'ms', value: p99.median, ...p99 },
      { name: `${name} server cpuMs`, unit: 'ms', value: cpu.median, ...cpu },
      {
        name: `${name} load generator cpuMs`,
        unit: 'ms',
        value: stat('loadGeneratorCpuMs').median,
        ...stat('loadGeneratorCpuMs'),
      },
      {
        name: `${name} postgres cpuMs`,
        unit: 'ms',
        value: stat('postgresCpuMs').median,
        ...stat('postgresCpuMs'),
      },
      { name: `${name} non-200 answers`, unit: 'count', value: unexpected.max, ...unexpected },
    ],
  };
}

export interface FleetResult {
  rssBytes: number;
  longPollsHeld: number;
  propagationMs: number[];
  medianArrivalMs: number[];
  heartbeatPerSecond: number;
  heartbeatP99Ms: number;
  figures: Figure[];
}

/**
 * Waits until Ground Control has `count` long polls open and returns the number open. After
 * the timeout it returns the number open then, because a server that completes fewer than
 * N / wait polls per second can never keep all N open, and that number is the finding.
 */
async function waitForParked(url: string, count: number): Promise<number> {
  const deadline = Date.now() + PARK_TIMEOUT_MS;
  for (;;) {
    const held = await readLongPolls(url);
    if (held >= count) return held;
    if (Date.now() > deadline) {
      process.stderr.write(
        `warning: Ground Control held ${held} of ${count} long polls after ${PARK_TIMEOUT_MS} ms; ` +
          'measuring with those\n',
      );
      return held;
    }
    await sleep(PARK_POLL_INTERVAL_MS);
  }
}

async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new BenchError(`${what} timed out after ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

export interface Change {
  tag: string;
  digest: string;
}

/**
 * Parks every satellite in a long poll, reads Ground Control's RSS, then changes the group's tag
 * `changes.length` times and times each change until every satellite has received the new digest.
 */
export async function runFleet(
  load: LoadGenerator,
  groundControl: Target,
  api: OperatorApi,
  options: {
    satellites: number;
    waitSeconds: number;
    heartbeatIntervalSeconds: number;
    heartbeatConnections: number;
    group: string;
    changes: Change[];
    repository: string;
    registry: string;
  },
): Promise<FleetResult> {
  await load.request(
    {
      type: 'fleet-start',
      url: groundControl.url,
      waitSeconds: options.waitSeconds,
      heartbeatIntervalSeconds: options.heartbeatIntervalSeconds,
      heartbeatConnections: options.heartbeatConnections,
    },
    'fleet-started',
  );
  const longPollsHeld = await waitForParked(groundControl.url, options.satellites);
  const { rssBytes } = await readRss(groundControl.pid());
  const propagationMs: number[] = [];
  const medianArrivalMs: number[] = [];
  for (const change of options.changes) {
    const arrived = load.next('arrived');
    // Awaited below; this keeps a failure of the next steps from also leaving it unhandled.
    arrived.catch(() => undefined);
    await load.request({ type: 'expect', digest: change.digest }, 'expecting');
    const changedAt = Date.now();
    await api.replaceSelections(options.group, [
      { registry: options.registry, repository: options.repository, tag: change.tag },
    ]);
    const reply = await withTimeout(
      arrived,
      PROPAGATION_TIMEOUT_MS,
      `change to tag ${change.tag} reaching ${options.satellites} satellites`,
    );
    propagationMs.push(reply.lastAt - changedAt);
    medianArrivalMs.push(reply.medianAt - changedAt);
    await waitForParked(groundControl.url, options.satellites);
  }
  const stopped = await load.request({ type: 'fleet-stop' }, 'fleet-stopped');
  const propagation = summarize(propagationMs);
  const median = summarize(medianArrivalMs);
  const n = options.satellites;
  const beats = stopped.heartbeats;
  return {
    rssBytes,
    longPollsHeld,
    propagationMs,
    medianArrivalMs,
    heartbeatPerSecond: beats.perSecond,
    heartbeatP99Ms: beats.p99Ms,
    figures: [
      { name: `long polls held`, unit: 'count', value: longPollsHeld },
      { name: `RSS with ${n} long polls`, unit: 'bytes', value: rssBytes },
      {
        name: `change reaching all ${n} satellites`,
        unit: 'ms',
        value: propagation.median,
        ...propagation,
      },
      {
        name: `change reaching half of ${n} satellites`,
        unit: 'ms',
        value: median.median,
        ...median,
      },
      { name: `fleet heartbeats perSecond`, unit: 'requests/s', value: beats.perSecond },
      { name: `fleet heartbeats p99Ms`, unit: 'ms', value: beats.p99Ms },
      { name: `fleet long polls failed`, unit: 'count', value: stopped.longPolls.failed },
    ],
  };
}
