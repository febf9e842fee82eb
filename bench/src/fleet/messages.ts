// Messages between the bench (fleet.ts) and the load generator (fleet-load.ts): one JSON object
// per line, commands on the generator's stdin and replies on its stdout.
import { z } from 'zod';

export const joinCommandSchema = z.strictObject({
  type: z.literal('join'),
  url: z.url(),
  /** JSON file with `[{name, token}]`; join tokens stay off the command line. */
  tokensFile: z.string().min(1),
  concurrency: z.int().min(1),
});

export const rateCommandSchema = z.strictObject({
  type: z.literal('rate'),
  url: z.url(),
  /** `state`: conditional GET without `wait`; `heartbeat`: POST of a status report. */
  kind: z.enum(['state', 'heartbeat']),
  concurrency: z.int().min(1),
  warmupMs: z.int().min(0),
  durationMs: z.int().min(1),
});

export const fleetStartCommandSchema = z.strictObject({
  type: z.literal('fleet-start'),
  url: z.url(),
  waitSeconds: z.int().min(1),
  heartbeatIntervalSeconds: z.int().min(1),
  heartbeatConnections: z.int().min(1),
});

export const expectCommandSchema = z.strictObject({
  type: z.literal('expect'),
  digest: z.string().min(1),
});

export const commandSchema = z.discriminatedUnion('type', [
  joinCommandSchema,
  rateCommandSchema,
  fleetStartCommandSchema,
  expectCommandSchema,
  z.strictObject({ type: z.literal('fleet-stop') }),
  z.strictObject({ type: z.literal('exit') }),
]);
export type Command = z.infer<typeof commandSchema>;
export type JoinCommand = z.infer<typeof joinCommandSchema>;
export type RateCommand = z.infer<typeof rateCommandSchema>;
export type FleetStartCommand = z.infer<typeof fleetStartCommandSchema>;

export const rateResultSchema = z.strictObject({
  requests: z.int(),
  /** Requests that got the expected status (304 for state, 200 for heartbeats). */
  expected: z.int(),
  /** Count per HTTP status, plus `error` for requests that failed without a status. */
  statuses: z.record(z.string(), z.int()),
  durationMs: z.number(),
  perSecond: z.number(),
  p50Ms: z.number(),
  p99Ms: z.number(),
  maxMs: z.number(),
  /** Connections the client pool lost during the run; keep-alive makes this near 0. */
  disconnects: z.int(),
});
export type RateResult = z.infer<typeof rateResultSchema>;

export const replySchema = z.discriminatedUnion('type', [
  z.strictObject({
    type: z.literal('joined'),
    satellites: z.int(),
    joinMs: z.number(),
    primeMs: z.number(),
  }),
  z.strictObject({ type: z.literal('rate'), result: rateResultSchema }),
  z.strictObject({ type: z.literal('fleet-started'), polling: z.int() }),
  z.strictObject({ type: z.literal('expecting'), digest: z.string() }),
  z.strictObject({
    type: z.literal('arrived'),
    digest: z.string(),
    /** Epoch milliseconds at which the first, the median and the last satellite got it. */
    firstAt: z.number(),
    medianAt: z.number(),
    lastAt: z.number(),
  }),
  z.strictObject({
    type: z.literal('fleet-stopped'),
    heartbeats: rateResultSchema,
    longPolls: z.strictObject({ changed: z.int(), unchanged: z.int(), failed: z.int() }),
  }),
  z.strictObject({ type: z.literal('failed'), message: z.string() }),
]);
export type Reply = z.infer<typeof replySchema>;
