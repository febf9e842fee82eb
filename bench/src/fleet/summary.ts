// The headline figures of the fleet bench, each with its goal, and one summary line per figure.
import { summarize, type Figure } from '@edge/testkit';
import type { FleetResult, HeartbeatResult, SweepStep } from './phases.js';

export interface Goals {
  statePerSecond: number;
  heartbeatPerSecond: number;
  propagationMs: number;
  rssBytes: number;
  latencyMs: number;
  /** Fleet size for which the propagation and RSS goals are stated. */
  satellites: number;
}

interface Goal {
  /** `min`: the value must be at least `target`; `max`: it must stay below `target`. */
  kind: 'min' | 'max';
  target: number;
  /** Set when the run's fleet size differs from the one the goal is stated for. */
  note?: string;
}

export type HeadlineFigure = Figure & { goal?: Goal };

/** Picks the step with the most 304s per second within the latency goal, else the fastest p99. */
function bestStep(steps: SweepStep[], latencyMs: number): SweepStep | undefined {
  const within = steps.filter((step) => step.p99Ms < latencyMs);
  if (within.length > 0) return within.reduce((x, y) => (y.perSecond > x.perSecond ? y : x));
  return steps.reduce<SweepStep | undefined>(
    (x, y) => (x === undefined || y.p99Ms < x.p99Ms ? y : x),
    undefined,
  );
}

/** Builds the figures that have goals, from the sweep, heartbeat and fleet phases. */
export function headlineFigures(
  steps: SweepStep[],
  heartbeats: HeartbeatResult,
  fleet: FleetResult | undefined,
  satellites: number,
  goals: Goals,
): HeadlineFigure[] {
  const best = bestStep(steps, goals.latencyMs);
  const largest = steps
    .filter((step) => step.p99Ms < goals.latencyMs)
    .reduce((max, step) => Math.max(max, step.concurrency), 0);
  const note =
    satellites === goals.satellites ? undefined : `goal stated for ${goals.satellites} satellites`;
  const figures: HeadlineFigure[] = [];
  if (best !== undefined) {
    figures.push(
      {
        name: `state 304 requests/s at ${best.concurrency} in flight`,
        unit: 'requests/s',
        value: best.perSecond,
        peer: best.ceilingPerSecond,
        ratio: best.ratio,
        goal: { kind: 'min', target: goals.statePerSecond },
      },
      {
        name: `state 304 p99 at ${best.concurrency} in flight`,
        unit: 'ms',
        value: best.p99Ms,
        peer: best.ceilingP99Ms,
        ratio: best.ceilingP99Ms > 0 ? best.p99Ms / best.ceilingP99Ms : null,
        goal: { kind: 'max', target: goals.latencyMs },
      },
      {
        name: 'ground-control/bare-fastify state 304 requests/s',
        unit: 'ratio',
        value: best.ratio,
        ratio: best.ratio,
      },
    );
  }
  figures.push(
    {
      name: `largest satellites in flight with state p99 < ${goals.latencyMs} ms`,
      unit: 'satellites',
      value: largest,
    },
    {
      name: `heartbeats/s`,
      unit: 'requests/s',
      value: heartbeats.perSecond,
      goal: { kind: 'min', target: goals.heartbeatPerSecond },
    },
    {
      name: `heartbeat p99`,
      unit: 'ms',
      value: heartbeats.p99Ms,
      goal: { kind: 'max', target: goals.latencyMs },
    },
  );
  if (fleet === undefined) return figures;
  const propagation = summarize(fleet.propagationMs);
  figures.push(
    {
      name: `change reaching ${satellites} long-polling satellites`,
      unit: 'ms',
      value: propagation.median,
      ...propagation,
      goal: { kind: 'max', target: goals.propagationMs, ...(note ? { note } : {}) },
    },
    {
      name: `long polls held by Ground Control of ${satellites}`,
      unit: 'count',
      value: fleet.longPollsHeld,
    },
    {
      name: `Ground Control RSS with ${fleet.longPollsHeld} long polls`,
      unit: 'bytes',
      value: fleet.rssBytes,
      goal: { kind: 'max', target: goals.rssBytes, ...(note ? { note } : {}) },
    },
  );
  return figures;
}

function format(value: number, unit: string): string {
  if (unit === 'bytes') return `${(value / (1024 * 1024)).toFixed(0)} MiB`;
  if (unit === 'ratio') return value.toFixed(3);
  return `${value >= 100 ? value.toFixed(0) : value.toPrecision(3)} ${unit}`;
}

function verdict(figure: HeadlineFigure): string {
  const goal = figure.goal;
  if (goal === undefined) return '';
  const met = goal.kind === 'min' ? figure.value >= goal.target : figure.value < goal.target;
  const bound = `${goal.kind === 'min' ? '>=' : '<'} ${format(goal.target, figure.unit)}`;
  const by =
    goal.kind === 'min'
      ? `${(((goal.target - figure.value) / goal.target) * 100).toFixed(0)}% short`
      : `${(figure.value / goal.target).toFixed(2)} times the limit`;
  const note = goal.note === undefined ? '' : `, ${goal.note}`;
  return met ? `; goal ${bound}: met${note}` : `; goal ${bound}: MISSED, ${by}${note}`;
}

/** Prints one line per headline figure: value, peer and ratio, and whether it met its goal. */
export function printSummaryLines(figures: HeadlineFigure[]): void {
  for (const figure of figures) {
    const peer =
      figure.peer === undefined || figure.peer === null
        ? ''
        : `, bare Fastify ${format(figure.peer, figure.unit)}`;
    const ratio =
      figure.unit === 'ratio' || figure.ratio === undefined || figure.ratio === null
        ? ''
        : `, ratio ${figure.ratio.toFixed(3)}`;
    process.stdout.write(
      `${figure.name}: ${format(figure.value, figure.unit)}${peer}${ratio}${verdict(figure)}\n`,
    );
  }
}
