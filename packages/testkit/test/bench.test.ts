import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  isSmokeMode,
  measureCommand,
  measureFunction,
  printTable,
  runAlternating,
  summarize,
  TestkitError,
  writeBenchResults,
} from '../src/index.js';

const ALLOCATED_BYTES = 64 * 1024 * 1024;

let resultsDir: string;
beforeAll(async () => {
  resultsDir = await mkdtemp(join(tmpdir(), 'testkit-bench-'));
});
afterAll(async () => {
  await rm(resultsDir, { recursive: true, force: true });
});

describe('measureCommand', () => {
  it('reports the peak RSS of the child', async () => {
    const m = await measureCommand(process.execPath, [
      '-e',
      `Buffer.alloc(${ALLOCATED_BYTES}, 1); setTimeout(() => {}, 50)`,
    ]);
    expect(m.peakRssBytes).toBeGreaterThan(ALLOCATED_BYTES);
    expect(m.wallMs).toBeGreaterThanOrEqual(50);
    expect(m.cpuMs).toBeGreaterThanOrEqual(0);
  });

  it('fails with BENCH_FAILED on a non-zero exit', async () => {
    const error = await measureCommand('/bin/sh', ['-c', 'echo broken >&2; exit 4']).catch(
      (err: unknown) => err,
    );
    expect(error).toBeInstanceOf(TestkitError);
    expect((error as TestkitError).code).toBe('BENCH_FAILED');
    expect((error as TestkitError).message).toContain('broken');
  });
});

describe('measureFunction', () => {
  it('counts CPU time and sampled RSS', async () => {
    const rssBefore = process.memoryUsage.rss();
    let held: Buffer | undefined;
    const m = await measureFunction(async () => {
      const started = Date.now();
      let x = 0;
      while (Date.now() - started < 60) x += Math.sqrt(x + 1);
      held = Buffer.alloc(ALLOCATED_BYTES, 1);
      // The sampler runs while this sleeps, with the buffer resident.
      await new Promise((resolve) => setTimeout(resolve, 30));
    });
    expect(held?.length).toBe(ALLOCATED_BYTES);
    expect(m.wallMs).toBeGreaterThanOrEqual(90);
    expect(m.cpuMs).toBeGreaterThan(0);
    expect(m.peakRssBytes - rssBefore).toBeGreaterThan(0.8 * ALLOCATED_BYTES);
  });
});

describe('summarize', () => {
  it('computes min, median and max', () => {
    expect(summarize([3, 1, 2])).toEqual({ min: 1, median: 2, max: 3 });
    expect(summarize([4, 1, 2, 3])).toEqual({ min: 1, median: 2.5, max: 4 });
    expect(() => summarize([])).toThrow(TestkitError);
  });
});

describe('runAlternating', () => {
  it('alternates A and B after the warm-up', async () => {
    const order: string[] = [];
    const side = (label: string, wallMs: number) => ({
      label,
      before: () => {
        order.push(`${label}:before`);
        return Promise.resolve();
      },
      run: () => {
        order.push(label);
        return Promise.resolve({
          wallMs,
          cpuMs: wallMs / 2,
          peakRssBytes: 1000,
          extra: { bytes: 10 },
        });
      },
    });
    const result = await runAlternating({
      name: 'order',
      pairs: 2,
      warmup: 1,
      a: side('a', 20),
      b: side('b', 10),
    });
    expect(order.filter((o) => !o.endsWith(':before'))).toEqual(['a', 'b', 'a', 'b', 'a', 'b']);
    expect(order.filter((o) => o.endsWith(':before'))).toHaveLength(6);
    expect(result.a.measurements).toHaveLength(2);
    expect(result.ratios.wallMs).toEqual({ min: 2, median: 2, max: 2 });
    expect(result.ratios.bytes).toEqual({ min: 1, median: 1, max: 1 });
    const ratio = result.figures.find((f) => f.name === 'a/b wallMs');
    expect(ratio).toMatchObject({ unit: 'ratio', value: 2, min: 2, median: 2, max: 2 });
    const wall = result.figures.find((f) => f.name === 'a wallMs');
    expect(wall).toMatchObject({ unit: 'ms', value: 20, peer: 10, ratio: 2, min: 20, max: 20 });
  });

  it('runs one pair in smoke mode', async () => {
    vi.stubEnv('BENCH_SMOKE', '1');
    try {
      expect(isSmokeMode()).toBe(true);
      let runs = 0;
      const side = {
        label: 'x',
        run: () => {
          runs++;
          return Promise.resolve({ wallMs: 1, cpuMs: 1, peakRssBytes: 1 });
        },
      };
      const result = await runAlternating({ name: 'smoke', pairs: 5, warmup: 3, a: side, b: side });
      expect(result.pairs).toBe(1);
      expect(runs).toBe(2);
    } finally {
      vi.unstubAllEnvs();
    }
    expect(isSmokeMode()).toBe(false);
  });

  it('writes a results file from a smoke comparison', async () => {
    const result = await runAlternating({
      name: 'testkit-smoke',
      pairs: 1,
      warmup: 0,
      a: {
        label: 'sh',
        run: () => measureCommand('/bin/sh', ['-c', 'head -c 1000000 /dev/zero >/dev/null']),
      },
      b: { label: 'node', run: () => measureFunction(() => Promise.resolve()) },
    });
    const path = await writeBenchResults(
      'testkit-smoke',
      result.figures,
      { pairs: 1 },
      { dir: resultsDir },
    );
    expect(path).toBe(join(resultsDir, 'testkit-smoke.json'));
    const written = JSON.parse(await readFile(path, 'utf8')) as {
      name: string;
      machine: { cpus: number; memoryBytes: number; node: string };
      meta: { pairs: number };
      figures: Record<string, unknown>[];
    };
    expect(written.name).toBe('testkit-smoke');
    expect(written.machine.cpus).toBeGreaterThan(0);
    expect(written.machine.memoryBytes).toBeGreaterThan(0);
    expect(written.machine.node).toBe(process.version);
    expect(written.meta.pairs).toBe(1);
    expect(written.figures.map((f) => f.name)).toContain('sh wallMs');
    for (const figure of written.figures) {
      expect(Object.keys(figure).sort()).toEqual([
        'max',
        'median',
        'min',
        'name',
        'peer',
        'ratio',
        'unit',
        'value',
      ]);
    }
  });

  it('rejects an invalid results name', async () => {
    const error = await writeBenchResults('../escape', [], {}, { dir: resultsDir }).catch(
      (err: unknown) => err,
    );
    expect((error as TestkitError).code).toBe('INVALID_OPTIONS');
  });
});

describe('printTable', () => {
  it('prints one line per figure', () => {
    const log = vi.spyOn(console, 'log').mockImplementation(() => undefined);
    try {
      printTable([
        { name: 'copy wall', unit: 'ms', value: 12.345, peer: 10, ratio: 1.2345 },
        { name: 'rss', unit: 'bytes', value: 1000 },
      ]);
      expect(log).toHaveBeenCalledTimes(3);
      expect(String(log.mock.calls[1]?.[0])).toMatch(/^copy wall\s+ms\s+12\.3\s+10\s+1\.23/);
    } finally {
      log.mockRestore();
    }
  });
});
