import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, open, readFile, rename, rm } from 'node:fs/promises';
import { cpus, release, tmpdir, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { TestkitError } from './errors.js';
import { spawnProcess } from './process.js';

/** GNU time 1.9 (Debian package `time`): the shell builtin cannot report peak RSS. */
const GNU_TIME = '/usr/bin/time';
/** How often measureFunction samples the resident set size, in milliseconds. */
const RSS_SAMPLE_INTERVAL_MS = 5;
/** Default warm-up rounds of each side before the measured pairs. */
const DEFAULT_WARMUP = 1;

/** One run of one side. */
export interface Measurement {
  wallMs: number;
  /** User plus system CPU time, in milliseconds. */
  cpuMs: number;
  peakRssBytes: number;
  /** Further figures of the run, e.g. bytes transferred; compared like the others. */
  extra?: Record<string, number>;
}

export interface BenchSide {
  label: string;
  run: () => Promise<Measurement>;
  /** Runs before every measured and warm-up run of this side, outside the measurement. */
  before?: () => Promise<void>;
}

export interface Stats {
  min: number;
  median: number;
  max: number;
}

export interface SideResult {
  label: string;
  measurements: Measurement[];
  /** Per metric (wallMs, cpuMs, peakRssBytes and every `extra` key). */
  stats: Record<string, Stats>;
}

export interface BenchComparison {
  name: string;
  pairs: number;
  a: SideResult;
  b: SideResult;
  /** Per metric, the statistics of the pairwise ratio A/B; missing where B was 0. */
  ratios: Record<string, Stats>;
  /** The comparison as figures for writeBenchResults. */
  figures: Figure[];
}

/** One reported number with its peer value and ratio. */
export interface Figure {
  name: string;
  unit: string;
  value: number;
  peer?: number | null;
  ratio?: number | null;
  min?: number;
  median?: number;
  max?: number;
}

export interface MeasureCommandOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

/** Returns true with `--smoke` on the command line or BENCH_SMOKE=1: tiny sizes, one pair. */
export function isSmokeMode(): boolean {
  return process.argv.includes('--smoke') || process.env.BENCH_SMOKE === '1';
}

/** Computes min, median (mean of the middle two for an even count) and max. */
export function summarize(values: number[]): Stats {
  if (values.length === 0) {
    throw new TestkitError('BENCH_FAILED', 'summarize: no values; run at least one pair');
  }
  const sorted = [...values].sort((x, y) => x - y);
  const middle = Math.floor(sorted.length / 2);
  const median =
    sorted.length % 2 === 1
      ? (sorted[middle] ?? 0)
      : ((sorted[middle - 1] ?? 0) + (sorted[middle] ?? 0)) / 2;
  return { min: sorted[0] ?? 0, median, max: sorted.at(-1) ?? 0 };
}

/**
 * Runs a command under GNU time and returns wall time (measured here), user+system CPU time
 * and peak RSS of the child (GNU time's %U, %S, %M). Throws BENCH_FAILED on a non-zero exit.
 */
export async function measureCommand(
  cmd: string,
  args: string[],
  opts: MeasureCommandOptions = {},
): Promise<Measurement> {
  const dir = await mkdtemp(join(tmpdir(), 'edge-testkit-time-'));
  const timeFile = join(dir, 'time.txt');
  try {
    const started = performance.now();
    const child = spawnProcess(GNU_TIME, ['-f', '%U %S %M', '-o', timeFile, cmd, ...args], {
      env: opts.env,
      cwd: opts.cwd,
      name: cmd,
    });
    const exit = await child.exited;
    const wallMs = performance.now() - started;
    if (exit.code !== 0) {
      throw new TestkitError(
        'BENCH_FAILED',
        `${cmd} ${args.join(' ')} exited with code ${exit.code}, signal ${exit.signal}; ` +
          `its output:\n${child.output()}`,
      );
    }
    const fields = (await readFile(timeFile, 'utf8')).trim().split('\n').at(-1)?.split(' ') ?? [];
    const [user, system, maxRssKib] = fields.map(Number);
    if (
      user === undefined ||
      system === undefined ||
      maxRssKib === undefined ||
      fields.length !== 3
    ) {
      throw new TestkitError(
        'BENCH_FAILED',
        `unexpected ${GNU_TIME} output "${fields.join(' ')}"; install the Debian package time`,
      );
    }
    return { wallMs, cpuMs: (user + system) * 1000, peakRssBytes: maxRssKib * 1024 };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * Runs `fn` in this process and returns its wall time, the process's CPU time during the run
 * and the highest RSS sampled every 5 ms. RSS covers the whole process, and the sampling can
 * miss a peak shorter than the interval.
 */
export async function measureFunction(fn: () => Promise<void>): Promise<Measurement> {
  let peak = process.memoryUsage.rss();
  const timer = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage.rss());
  }, RSS_SAMPLE_INTERVAL_MS);
  const usageBefore = process.resourceUsage();
  const started = performance.now();
  try {
    await fn();
  } finally {
    clearInterval(timer);
  }
  const wallMs = performance.now() - started;
  const usageAfter = process.resourceUsage();
  peak = Math.max(peak, process.memoryUsage.rss());
  const cpuMicros =
    usageAfter.userCPUTime -
    usageBefore.userCPUTime +
    (usageAfter.systemCPUTime - usageBefore.systemCPUTime);
  return { wallMs, cpuMs: cpuMicros / 1000, peakRssBytes: peak };
}

const METRIC_UNITS: Record<string, string> = { wallMs: 'ms', cpuMs: 'ms', peakRssBytes: 'bytes' };

function metricValues(measurement: Measurement): Record<string, number> {
  return {
    wallMs: measurement.wallMs,
    cpuMs: measurement.cpuMs,
    peakRssBytes: measurement.peakRssBytes,
    ...measurement.extra,
  };
}

function sideResult(label: string, measurements: Measurement[]): SideResult {
  const stats: Record<string, Stats> = {};
  const keys = new Set(measurements.flatMap((m) => Object.keys(metricValues(m))));
  for (const key of keys) {
    const values = measurements
      .map((m) => metricValues(m)[key])
      .filter((v): v is number => v !== undefined);
    stats[key] = summarize(values);
  }
  return { label, measurements, stats };
}

async function runSide(side: BenchSide): Promise<Measurement> {
  await side.before?.();
  return side.run();
}

/**
 * Runs A and B alternately (A B A B ...) after `warmup` discarded rounds of each, and compares
 * them metric by metric and pair by pair. In smoke mode it runs one pair and no warm-up.
 */
export async function runAlternating(opts: {
  name: string;
  pairs: number;
  warmup?: number;
  a: BenchSide;
  b: BenchSide;
}): Promise<BenchComparison> {
  const smoke = isSmokeMode();
  const pairs = smoke ? 1 : opts.pairs;
  const warmup = smoke ? 0 : (opts.warmup ?? DEFAULT_WARMUP);
  if (!Number.isInteger(pairs) || pairs < 1 || !Number.isInteger(warmup) || warmup < 0) {
    throw new TestkitError(
      'INVALID_OPTIONS',
      `runAlternating ${opts.name}: pairs ${pairs} and warmup ${warmup} must be whole numbers, ` +
        'pairs at least 1',
    );
  }
  for (let i = 0; i < warmup; i++) {
    await runSide(opts.a);
    await runSide(opts.b);
  }
  const aRuns: Measurement[] = [];
  const bRuns: Measurement[] = [];
  for (let i = 0; i < pairs; i++) {
    aRuns.push(await runSide(opts.a));
    bRuns.push(await runSide(opts.b));
  }
  const a = sideResult(opts.a.label, aRuns);
  const b = sideResult(opts.b.label, bRuns);
  const ratios: Record<string, Stats> = {};
  for (const key of Object.keys(a.stats)) {
    const values: number[] = [];
    aRuns.forEach((aRun, i) => {
      const bRun = bRuns[i];
      const aValue = metricValues(aRun)[key];
      const bValue = bRun && metricValues(bRun)[key];
      if (aValue !== undefined && bValue !== undefined && bValue !== 0)
        values.push(aValue / bValue);
    });
    if (values.length > 0) ratios[key] = summarize(values);
  }
  return { name: opts.name, pairs, a, b, ratios, figures: comparisonFigures(a, b, ratios) };
}

/**
 * Turns a comparison into figures. Per metric: one for A (peer = B's median, ratio = the median
 * of the pairwise ratios A/B), one for B, and one for the pairwise ratio with its spread.
 */
function comparisonFigures(a: SideResult, b: SideResult, ratios: Record<string, Stats>): Figure[] {
  const figures: Figure[] = [];
  for (const [key, aStats] of Object.entries(a.stats)) {
    const bStats = b.stats[key];
    const unit = METRIC_UNITS[key] ?? 'count';
    figures.push({
      name: `${a.label} ${key}`,
      unit,
      value: aStats.median,
      peer: bStats?.median ?? null,
      ratio: ratios[key]?.median ?? null,
      ...aStats,
    });
    if (bStats) {
      figures.push({
        name: `${b.label} ${key}`,
        unit,
        value: bStats.median,
        peer: aStats.median,
        ratio: ratios[key] ? 1 / ratios[key].median : null,
        ...bStats,
      });
    }
    const ratio = ratios[key];
    if (ratio) {
      figures.push({
        name: `${a.label}/${b.label} ${key}`,
        unit: 'ratio',
        value: ratio.median,
        peer: null,
        ratio: ratio.median,
        ...ratio,
      });
    }
  }
  return figures;
}

/** Finds the repository root: the nearest folder above this file with pnpm-workspace.yaml. */
function repositoryRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'pnpm-workspace.yaml'))) return dir;
    const parent = dirname(dir);
    if (parent === dir) {
      throw new TestkitError(
        'BENCH_FAILED',
        `no pnpm-workspace.yaml above ${fileURLToPath(import.meta.url)}; set BENCH_RESULTS_DIR`,
      );
    }
    dir = parent;
  }
}

/** Writes `path` atomically: a temp file in the same folder, fsync, rename. */
async function writeFileAtomic(path: string, text: string): Promise<void> {
  const temp = `${path}.${randomBytes(6).toString('hex')}.tmp`;
  const handle = await open(temp, 'w');
  try {
    await handle.writeFile(text);
    await handle.sync();
  } finally {
    await handle.close();
  }
  await rename(temp, path);
}

/**
 * Writes `<results dir>/<name>.json` with the figures, `meta` and machine facts (CPUs, memory,
 * Node version, date). The folder is `opts.dir`, else BENCH_RESULTS_DIR, else `bench/results`
 * at the repository root. Returns the path.
 */
export async function writeBenchResults(
  name: string,
  figures: Figure[],
  meta: Record<string, unknown> = {},
  opts: { dir?: string } = {},
): Promise<string> {
  if (!/^[a-z0-9][a-z0-9._-]*$/.test(name)) {
    throw new TestkitError(
      'INVALID_OPTIONS',
      `writeBenchResults: name "${name}" is invalid; use lower-case letters, digits, '.', '_', '-'`,
    );
  }
  const dir =
    opts.dir ?? process.env.BENCH_RESULTS_DIR ?? join(repositoryRoot(), 'bench', 'results');
  await mkdir(dir, { recursive: true });
  const cpuList = cpus();
  const document = {
    name,
    date: new Date().toISOString(),
    smoke: isSmokeMode(),
    machine: {
      cpus: cpuList.length,
      cpuModel: cpuList[0]?.model ?? 'unknown',
      memoryBytes: totalmem(),
      node: process.version,
      platform: process.platform,
      arch: process.arch,
      kernel: release(),
    },
    meta,
    figures: figures.map((f) => ({
      name: f.name,
      unit: f.unit,
      value: f.value,
      peer: f.peer ?? null,
      ratio: f.ratio ?? null,
      min: f.min ?? f.value,
      median: f.median ?? f.value,
      max: f.max ?? f.value,
    })),
  };
  const path = join(dir, `${name}.json`);
  await writeFileAtomic(path, `${JSON.stringify(document, null, 2)}\n`);
  return path;
}

function formatNumber(value: number | null | undefined): string {
  if (value === null || value === undefined) return '-';
  if (Number.isInteger(value)) return String(value);
  return Math.abs(value) >= 100 ? value.toFixed(0) : value.toPrecision(3);
}

/** Prints the figures as an aligned text table on stdout. */
export function printTable(figures: Figure[]): void {
  const header = ['figure', 'unit', 'value', 'peer', 'ratio', 'min', 'median', 'max'];
  const rows = figures.map((f) => [
    f.name,
    f.unit,
    formatNumber(f.value),
    formatNumber(f.peer),
    formatNumber(f.ratio),
    formatNumber(f.min),
    formatNumber(f.median),
    formatNumber(f.max),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells.map((c, i) => (i < 2 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join('  ');
  console.log(line(header));
  for (const row of rows) console.log(line(row));
}
