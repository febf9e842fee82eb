// The long-poll phase of the load generator: every satellite keeps one `GET /state?wait=` open
// and sends a heartbeat at its interval, until the bench stops the phase.
import { setMaxListeners } from 'node:events';
import { Pool } from 'undici';
import { sleep } from './concurrency.js';
import { LatencyRecorder } from './latency.js';
import type { FleetStartCommand, RateResult, Reply } from './messages.js';
import type { SimulatedSatellite } from './satellite.js';

/** Long polls opened per ramp step, so N connects do not overflow the listen backlog at once. */
const RAMP_BATCH = 500;
/** Pause between ramp steps, in milliseconds. */
const RAMP_PAUSE_MS = 50;
/** Pause after a failed poll before the next, in milliseconds, as a satellite backs off. */
const ERROR_PAUSE_MS = 1_000;
/** Extra connections over one per satellite, for polls whose socket is still closing. */
const POLL_CONNECTION_MARGIN = 64;

interface Expectation {
  digest: string;
  arrivals: (number | undefined)[];
  remaining: number;
}

export class FleetRun {
  private readonly pollPool: Pool;
  private readonly heartbeatPool: Pool;
  private readonly abort = new AbortController();
  private readonly loops: Promise<void>[] = [];
  private readonly heartbeatsInFlight = new Set<Promise<void>>();
  private readonly timers: NodeJS.Timeout[] = [];
  private readonly heartbeatLatency = new LatencyRecorder();
  private readonly heartbeatStatuses: Record<string, number> = {};
  private readonly counters = { changed: 0, unchanged: 0, failed: 0 };
  private expectation: Expectation | undefined;
  private stopped = false;
  private heartbeatDisconnects = 0;
  private readonly startedAt = performance.now();

  constructor(
    private readonly satellites: readonly SimulatedSatellite[],
    private readonly command: FleetStartCommand,
    private readonly send: (reply: Reply) => void,
  ) {
    this.pollPool = new Pool(command.url, {
      connections: satellites.length + POLL_CONNECTION_MARGIN,
      pipelining: 1,
    });
    this.heartbeatPool = new Pool(command.url, {
      connections: command.heartbeatConnections,
      pipelining: 1,
    });
    this.heartbeatPool.on('disconnect', () => this.heartbeatDisconnects++);
    // Every poll listens on the one abort signal, far more than the default warning limit of 10.
    setMaxListeners(satellites.length + POLL_CONNECTION_MARGIN, this.abort.signal);
  }

  /** Opens the long polls in ramp steps and starts the heartbeat timers at random offsets. */
  async start(): Promise<void> {
    const intervalMs = this.command.heartbeatIntervalSeconds * 1_000;
    for (let i = 0; i < this.satellites.length; i++) {
      const satellite = this.satellites[i] as SimulatedSatellite;
      this.loops.push(this.pollLoop(satellite, i));
      const first = setTimeout(() => {
        this.beat(satellite);
        this.timers.push(setInterval(() => this.beat(satellite), intervalMs));
      }, Math.random() * intervalMs);
      this.timers.push(first);
      if ((i + 1) % RAMP_BATCH === 0) await sleep(RAMP_PAUSE_MS);
    }
  }

  /** Watches for `digest`; sends `arrived` once every satellite has received a state that lists it. */
  expect(digest: string): void {
    const arrivals = this.satellites.map((satellite) =>
      satellite.digests.has(digest) ? Date.now() : undefined,
    );
    const remaining = arrivals.filter((at) => at === undefined).length;
    this.expectation = { digest, arrivals, remaining };
    this.send({ type: 'expecting', digest });
    if (remaining === 0) this.finishExpectation();
  }

  /** Ends every poll and heartbeat and returns the phase's figures. */
  async stop(): Promise<Reply> {
    this.stopped = true;
    for (const timer of this.timers) clearTimeout(timer);
    this.abort.abort();
    await Promise.allSettled(this.loops);
    await Promise.allSettled([...this.heartbeatsInFlight]);
    await this.pollPool.destroy();
    await this.heartbeatPool.close();
    const durationMs = performance.now() - this.startedAt;
    const beats = this.heartbeatLatency.count;
    const heartbeats: RateResult = {
      requests: beats,
      expected: this.heartbeatStatuses['200'] ?? 0,
      statuses: this.heartbeatStatuses,
      durationMs,
      perSecond: beats / (durationMs / 1_000),
      p50Ms: this.heartbeatLatency.percentile(50),
      p99Ms: this.heartbeatLatency.percentile(99),
      maxMs: this.heartbeatLatency.percentile(100),
      disconnects: this.heartbeatDisconnects,
    };
    return { type: 'fleet-stopped', heartbeats, longPolls: { ...this.counters } };
  }

  private async pollLoop(satellite: SimulatedSatellite, index: number): Promise<void> {
    while (!this.stopped) {
      try {
        const status = await satellite.getState(
          this.pollPool,
          this.command.waitSeconds,
          this.abort.signal,
        );
        if (status === 200) {
          this.counters.changed++;
          this.noteArrival(satellite, index);
        } else if (status === 304) {
          this.counters.unchanged++;
        } else {
          this.counters.failed++;
          await sleep(ERROR_PAUSE_MS);
        }
      } catch {
        if (this.stopped) return;
        this.counters.failed++;
        await sleep(ERROR_PAUSE_MS);
      }
    }
  }

  private noteArrival(satellite: SimulatedSatellite, index: number): void {
    const expectation = this.expectation;
    if (expectation === undefined || expectation.arrivals[index] !== undefined) return;
    if (!satellite.digests.has(expectation.digest)) return;
    expectation.arrivals[index] = Date.now();
    expectation.remaining--;
    if (expectation.remaining === 0) this.finishExpectation();
  }

  private finishExpectation(): void {
    const expectation = this.expectation;
    if (expectation === undefined) return;
    this.expectation = undefined;
    const times = expectation.arrivals
      .filter((at): at is number => at !== undefined)
      .sort((x, y) => x - y);
    this.send({
      type: 'arrived',
      digest: expectation.digest,
      firstAt: times[0] ?? 0,
      medianAt: times[Math.floor(times.length / 2)] ?? 0,
      lastAt: times.at(-1) ?? 0,
    });
  }

  private beat(satellite: SimulatedSatellite): void {
    if (this.stopped) return;
    const started = performance.now();
    const run = satellite
      .sendStatus(this.heartbeatPool)
      .then((status) => String(status))
      .catch(() => 'error')
      .then((status) => {
        this.heartbeatLatency.record(performance.now() - started);
        this.heartbeatStatuses[status] = (this.heartbeatStatuses[status] ?? 0) + 1;
      })
      .finally(() => this.heartbeatsInFlight.delete(run));
    this.heartbeatsInFlight.add(run);
  }
}
