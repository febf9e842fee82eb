// Parsers and process helpers for test/deploy.test.ts: documented settings from the services'
// READMEs, `.Values` paths from Helm templates, and loopback-only child processes.
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';

export const REPO_ROOT = join(import.meta.dirname, '..');

/** Returns the backticked names in the column headed `column` of every Markdown table. */
export function markdownTableColumn(markdown: string, column: string): Set<string> {
  const names = new Set<string>();
  let index = -1;
  for (const line of markdown.split('\n')) {
    if (!line.trimStart().startsWith('|')) {
      index = -1;
      continue;
    }
    const cells = line
      .trim()
      .replace(/^\||\|$/g, '')
      .split('|')
      .map((cell) => cell.trim());
    if (index < 0) {
      index = cells.indexOf(column);
      continue;
    }
    const cell = cells[index];
    if (cell === undefined || /^-+$/.test(cell)) continue;
    for (const match of cell.matchAll(/`([A-Z][A-Z0-9_]*)`/g)) {
      if (match[1] !== undefined) names.add(match[1]);
    }
  }
  return names;
}

/** Environment variables the satellite documents in the `variable` column of its README. */
export function satelliteVariables(): Set<string> {
  const readme = readFileSync(join(REPO_ROOT, 'apps/satellite/README.md'), 'utf8');
  return markdownTableColumn(readme, 'variable');
}

/** Environment variables Ground Control documents in the `variable` column of its README. */
export function groundControlVariables(): Set<string> {
  const readme = readFileSync(join(REPO_ROOT, 'apps/ground-control/README.md'), 'utf8');
  return markdownTableColumn(readme, 'variable');
}

/** Returns every `.Values.a.b` path (as `a.b`) used in the chart's template files. */
export function templateValuePaths(chartDir: string): Map<string, string> {
  const paths = new Map<string, string>();
  const templates = join(chartDir, 'templates');
  for (const file of readdirSync(templates)) {
    const text = readFileSync(join(templates, file), 'utf8');
    for (const match of text.matchAll(/\.Values((?:\.[A-Za-z_][A-Za-z0-9_]*)+)/g)) {
      const path = match[1]?.slice(1);
      if (path !== undefined && !paths.has(path)) paths.set(path, file);
    }
  }
  return paths;
}

/** True when `path` (dot separated) names a key in `values`, whatever its value. */
export function hasValuePath(values: unknown, path: string): boolean {
  let current: unknown = values;
  for (const key of path.split('.')) {
    if (current === null || typeof current !== 'object' || !Object.hasOwn(current, key)) {
      return false;
    }
    current = (current as Record<string, unknown>)[key];
  }
  return true;
}

/** Names set by `- name: X` entries in the chart's templates that look like variables. */
export function templateEnvNames(chartDir: string): Set<string> {
  const names = new Set<string>();
  const templates = join(chartDir, 'templates');
  for (const file of readdirSync(templates)) {
    const text = readFileSync(join(templates, file), 'utf8');
    for (const match of text.matchAll(/^\s*- name: ([A-Z][A-Z0-9_]*)\s*$/gm)) {
      if (match[1] !== undefined) names.add(match[1]);
    }
  }
  return names;
}

// Processes. TODO: use @edge/testkit's spawnProcess, waitForHttp and startRegistry once the
// root package.json lists @edge/testkit as a devDependency, so that root tests can import it.

/** A child process with a bounded tail of its output for failure messages. */
export interface Child {
  process: ChildProcess;
  output(): string;
  exited: Promise<number | null>;
  stop(): Promise<void>;
}

/** Output kept per child for failure messages, in characters. */
const OUTPUT_TAIL_CHARS = 8_000;
/** Time a child gets to exit after SIGTERM before SIGKILL, in ms. */
const STOP_TIMEOUT_MS = 10_000;

export function startChild(command: string, args: string[], env: NodeJS.ProcessEnv): Child {
  const child = spawn(command, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let tail = '';
  const append = (chunk: Buffer): void => {
    tail = (tail + chunk.toString('utf8')).slice(-OUTPUT_TAIL_CHARS);
  };
  child.stdout.on('data', append);
  child.stderr.on('data', append);
  const exited = new Promise<number | null>((resolve) => {
    child.on('exit', (code) => resolve(code));
    child.on('error', () => resolve(null));
  });
  let stopped = false;
  return {
    process: child,
    output: () => tail,
    exited,
    stop: async () => {
      if (stopped) return;
      stopped = true;
      if (child.exitCode !== null || child.pid === undefined) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** Runs a command to completion and returns its exit status and output. */
export async function runToEnd(
  command: string,
  args: string[],
  env: NodeJS.ProcessEnv = process.env,
): Promise<{ code: number | null; output: string }> {
  const child = startChild(command, args, env);
  const code = await child.exited;
  return { code, output: child.output() };
}

/** Returns a port that was free on 127.0.0.1 a moment ago. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => {
        if (address !== null && typeof address === 'object') resolve(address.port);
        else reject(new Error('the probe server on 127.0.0.1 reported no port'));
      });
    });
  });
}

/** Polls `url` until `accept` returns true for a response, or throws after `timeoutMs`. */
export async function waitFor(
  url: string,
  timeoutMs: number,
  child: Child,
  accept: (response: Response) => Promise<boolean> = (response) =>
    Promise.resolve(response.status === 200),
  init: RequestInit = {},
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = 'no response yet';
  while (Date.now() < deadline) {
    if (child.process.exitCode !== null) {
      throw new Error(
        `process exited with ${child.process.exitCode} before ${url} was ready:\n${child.output()}`,
      );
    }
    try {
      const response = await fetch(url, { ...init, signal: AbortSignal.timeout(5_000) });
      if (await accept(response)) return;
      last = `status ${response.status}`;
    } catch (error) {
      last = error instanceof Error ? error.message : String(error);
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  throw new Error(`${url} not ready after ${timeoutMs} ms (last: ${last}):\n${child.output()}`);
}
