// Summary of a V8 CPU profile (`node --cpu-prof`): self time per function and per package, so a
// missed goal can be traced to the code that spends the time.
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { BenchError } from './satellite.js';

const cpuProfileSchema = z.looseObject({
  nodes: z.array(
    z.looseObject({
      id: z.int(),
      callFrame: z.looseObject({
        functionName: z.string(),
        url: z.string(),
        lineNumber: z.int(),
      }),
    }),
  ),
  samples: z.array(z.int()),
  timeDeltas: z.array(z.number()),
});

export interface ProfileEntry {
  name: string;
  selfMs: number;
  share: number;
}

export interface ProfileSummary {
  totalMs: number;
  functions: ProfileEntry[];
  packages: ProfileEntry[];
}

/** Names the package or area a script URL belongs to: a node_modules package, node, or the app. */
function areaOf(url: string): string {
  if (url === '') return '(native or idle)';
  if (url.startsWith('node:')) return 'node core';
  const modules = url.lastIndexOf('/node_modules/');
  if (modules >= 0) {
    const rest = url.slice(modules + '/node_modules/'.length).split('/');
    return rest[0]?.startsWith('@') ? `${rest[0]}/${rest[1] ?? ''}` : (rest[0] ?? url);
  }
  const app = /\/(apps|packages)\/([^/]+)\//.exec(url);
  return app ? `${app[1]}/${app[2]}` : url;
}

function top(map: Map<string, number>, totalMs: number, count: number): ProfileEntry[] {
  return [...map.entries()]
    .sort((x, y) => y[1] - x[1])
    .slice(0, count)
    .map(([name, selfMs]) => ({ name, selfMs, share: totalMs > 0 ? selfMs / totalMs : 0 }));
}

/** Reads the one `.cpuprofile` in `dir` and sums sample time per function and per package. */
export async function summarizeProfile(dir: string, count = 15): Promise<ProfileSummary> {
  const file = (await readdir(dir)).find((name) => name.endsWith('.cpuprofile'));
  if (file === undefined) {
    throw new BenchError(`no .cpuprofile in ${dir}; did the profiled process exit cleanly?`);
  }
  const profile = cpuProfileSchema.parse(JSON.parse(await readFile(join(dir, file), 'utf8')));
  const nodes = new Map(profile.nodes.map((node) => [node.id, node]));
  const byFunction = new Map<string, number>();
  const byArea = new Map<string, number>();
  let totalMs = 0;
  profile.samples.forEach((id, i) => {
    // timeDeltas[i] is the time since the previous sample in microseconds.
    const ms = (profile.timeDeltas[i] ?? 0) / 1_000;
    const frame = nodes.get(id)?.callFrame;
    if (frame === undefined) return;
    totalMs += ms;
    const location =
      frame.url === '' ? '' : ` ${frame.url.replace(/^.*\//, '')}:${frame.lineNumber + 1}`;
    const name = `${frame.functionName || '(anonymous)'}${location}`;
    byFunction.set(name, (byFunction.get(name) ?? 0) + ms);
    const area = areaOf(frame.url);
    byArea.set(area, (byArea.get(area) ?? 0) + ms);
  });
  return {
    totalMs,
    functions: top(byFunction, totalMs, count),
    packages: top(byArea, totalMs, count),
  };
}

/** Formats a summary as text lines for the terminal and the benchmark page. */
export function formatProfile(title: string, summary: ProfileSummary): string {
  const lines = [`${title}: ${(summary.totalMs / 1_000).toFixed(1)} s sampled`];
  const row = (entry: ProfileEntry): string =>
    `  ${(entry.share * 100).toFixed(1).padStart(5)}%  ${entry.selfMs.toFixed(0).padStart(7)} ms  ${entry.name}`;
  lines.push(' by package (self time):', ...summary.packages.map(row));
  lines.push(' by function (self time):', ...summary.functions.map(row));
  return lines.join('\n');
}
