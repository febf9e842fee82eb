// Load generator of `pnpm bench:fleet`, spawned by bench/dist/fleet.js as its own process so
// its CPU shows apart from the bench's. It simulates N satellites that join Ground Control for
// real and then poll, long-poll and send heartbeats. Commands arrive as JSON lines on stdin and
// every reply is one JSON line on stdout (see fleet/messages.ts).
import { readFile } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { Pool } from 'undici';
import { z } from 'zod';
import { forEachLimit } from './fleet/concurrency.js';
import { FleetRun } from './fleet/fleet-run.js';
import { LatencyRecorder } from './fleet/latency.js';
import {
  commandSchema,
  type Command,
  type JoinCommand,
  type RateCommand,
  type RateResult,
  type Reply,
} from './fleet/messages.js';
import { BenchError, SimulatedSatellite } from './fleet/satellite.js';

const tokensFileSchema = z.array(z.strictObject({ name: z.string(), token: z.string() }));

let satellites: SimulatedSatellite[] = [];
let fleet: FleetRun | undefined;

function send(reply: Reply): void {
  process.stdout.write(`${JSON.stringify(reply)}\n`);
}

/**
 * Joins every satellite, then fetches each one's first state so it has an ETag and sends its
 * first status report.
 */
async function join(command: JoinCommand): Promise<Reply> {
  const entries = tokensFileSchema.parse(JSON.parse(await readFile(command.tokensFile, 'utf8')));
  satellites = entries.map((entry) => new SimulatedSatellite(entry.name, entry.token));
  const pool = new Pool(command.url, { connections: command.concurrency, pipelining: 1 });
  try {
    const joinStarted = performance.now();
    await forEachLimit(satellites, command.concurrency, (satellite) => satellite.join(pool));
    const joinMs = performance.now() - joinStarted;
    const primeStarted = performance.now();
    await forEachLimit(satellites, command.concurrency, async (satellite) => {
      const status = await satellite.getState(pool, 0);
      if (status !== 200) {
        throw new BenchError(
          `first state of satellite ${satellite.name} returned HTTP ${status}, expected 200`,
        );
      }
    });
    // One report per satellite before any phase, so the heartbeat phase measures the unchanged
    // reports of a steady fleet, not first reports that each also write events.
    await forEachLimit(satellites, command.concurrency, async (satellite) => {
      const status = await satellite.sendStatus(pool);
      if (status !== 200) {
        throw new BenchError(
          `first status report of satellite ${satellite.name} returned HTTP ${status}, expected 200`,
        );
      }
    });
    return {
      type: 'joined',
      satellites: satellites.length,
      joinMs,
      primeMs: performance.now() - primeStarted,
    };
  } finally {
    await pool.close();
  }
}

/**
 * Sends requests in a closed loop, `concurrency` at a time with no pause, cycling through the
 * satellites. Requests that start during the warm-up are sent but not counted.
 */
async function rate(command: RateCommand): Promise<RateResult> {
  if (satellites.length === 0) throw new BenchError('rate before join: send a join command first');
  const pool = new Pool(command.url, { connections: command.concurrency, pipelining: 1 });
  const latency = new LatencyRecorder();
  const statuses: Record<string, number> = {};
  const expectedStatus = command.kind === 'state' ? '304' : '200';
  const measureFrom = performance.now() + command.warmupMs;
  const measureUntil = measureFrom + command.durationMs;
  let disconnects = 0;
  pool.on('disconnect', () => {
    const now = performance.now();
    if (now >= measureFrom && now < measureUntil) disconnects++;
  });
  let next = 0;
  const worker = async (): Promise<void> => {
    while (performance.now() < measureUntil) {
      const satellite = satellites[next++ % satellites.length] as SimulatedSatellite;
      const started = performance.now();
      let status: string;
      try {
        const code =
          command.kind === 'state'
            ? await satellite.getState(pool, 0)
            : await satellite.sendStatus(pool);
        status = String(code);
      } catch (error) {
        status = `error ${errorCode(error)}`;
      }
      if (started >= measureFrom && started < measureUntil) {
        latency.record(performance.now() - started);
        statuses[status] = (statuses[status] ?? 0) + 1;
      }
    }
  };
  try {
    await Promise.all(Array.from({ length: command.concurrency }, worker));
  } finally {
    await pool.close();
  }
  return {
    requests: latency.count,
    expected: statuses[expectedStatus] ?? 0,
    statuses,
    durationMs: command.durationMs,
    perSecond: (statuses[expectedStatus] ?? 0) / (command.durationMs / 1_000),
    p50Ms: latency.percentile(50),
    p99Ms: latency.percentile(99),
    maxMs: latency.percentile(100),
    disconnects,
  };
}

/** Names a failed request by its error code (undici's `UND_ERR_*`, a socket error or the name). */
function errorCode(error: unknown): string {
  if (error instanceof Error) {
    const code = (error as Error & { code?: unknown }).code;
    return typeof code === 'string' ? code : `${error.name}: ${error.message.slice(0, 200)}`;
  }
  return String(error);
}

async function handle(command: Command): Promise<boolean> {
  switch (command.type) {
    case 'join':
      send(await join(command));
      return true;
    case 'rate':
      send({ type: 'rate', result: await rate(command) });
      return true;
    case 'fleet-start':
      if (fleet !== undefined) throw new BenchError('fleet-start twice: send fleet-stop first');
      fleet = new FleetRun(satellites, command, send);
      await fleet.start();
      send({ type: 'fleet-started', polling: satellites.length });
      return true;
    case 'expect':
      if (fleet === undefined) throw new BenchError('expect without fleet-start');
      fleet.expect(command.digest);
      return true;
    case 'fleet-stop': {
      if (fleet === undefined) throw new BenchError('fleet-stop without fleet-start');
      const run = fleet;
      fleet = undefined;
      send(await run.stop());
      return true;
    }
    case 'exit':
      return false;
  }
}

async function main(): Promise<void> {
  const lines = createInterface({ input: process.stdin });
  for await (const line of lines) {
    if (line.trim() === '') continue;
    try {
      const command = commandSchema.parse(JSON.parse(line));
      if (!(await handle(command))) break;
    } catch (error) {
      send({ type: 'failed', message: error instanceof Error ? error.message : String(error) });
    }
  }
  lines.close();
  await fleet?.stop();
}

main().catch((error: unknown) => {
  process.stderr.write(
    `fleet load generator failed: ${error instanceof Error ? error.message : String(error)}\n`,
  );
  process.exitCode = 1;
});
