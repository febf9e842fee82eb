import { spawn } from 'node:child_process';
import { setTimeout as delay } from 'node:timers/promises';
import { request } from 'undici';
import { TestkitError } from './errors.js';

/** How much of a child's stdout+stderr is kept for error messages, in bytes. */
const OUTPUT_TAIL_BYTES = 64 * 1024;
/** Time a child gets between the first signal and SIGKILL, in milliseconds. */
const DEFAULT_STOP_TIMEOUT_MS = 5_000;
/** Default time waitForHttp keeps polling, in milliseconds. */
const DEFAULT_READY_TIMEOUT_MS = 15_000;
/** Pause between readiness polls, in milliseconds. */
const READY_POLL_INTERVAL_MS = 25;
/** Limit of one readiness request, in milliseconds, so a hung listener does not stall the poll. */
const READY_REQUEST_TIMEOUT_MS = 2_000;

export interface ProcessExit {
  code: number | null;
  signal: string | null;
}

/** A child process the test kit started, with its exit promise and a bounded output tail. */
export interface ManagedProcess {
  pid: number;
  /** Sends `signal` (default SIGTERM), then SIGKILL after `timeoutMs`; resolves once it exited. */
  stop(signal?: NodeJS.Signals, timeoutMs?: number): Promise<void>;
  /** Sends SIGKILL at once, as a crash would. */
  kill9(): void;
  exited: Promise<ProcessExit>;
  /** The last bytes of stdout and stderr, interleaved as they arrived. */
  output(): string;
}

export interface SpawnOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Name used in error messages; defaults to the command. */
  name?: string;
}

// Children still running when the test process exits (a failed test that skipped its cleanup)
// get SIGKILL by PID, so no registry outlives the vitest worker.
const liveChildren = new Set<number>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const pid of liveChildren) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // Already gone.
      }
    }
  });
}

/** A byte buffer that keeps only the newest `limit` bytes. */
class OutputTail {
  private chunks: Buffer[] = [];
  private size = 0;

  constructor(private readonly limit: number) {}

  push(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.size += chunk.length;
    while (this.size > this.limit && this.chunks.length > 1) {
      const first = this.chunks.shift();
      this.size -= first?.length ?? 0;
    }
  }

  toString(): string {
    const all = Buffer.concat(this.chunks);
    return all.subarray(Math.max(0, all.length - this.limit)).toString('utf8');
  }
}

/**
 * Spawns `cmd` directly (no shell, so the PID is the real process), captures a tail of its
 * output and kills it with SIGKILL if the test process exits first.
 */
export function spawnProcess(cmd: string, args: string[], opts: SpawnOptions = {}): ManagedProcess {
  const name = opts.name ?? cmd;
  const child = spawn(cmd, args, {
    cwd: opts.cwd,
    env: opts.env ?? process.env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const tail = new OutputTail(OUTPUT_TAIL_BYTES);
  child.stdout.on('data', (chunk: Buffer) => tail.push(chunk));
  child.stderr.on('data', (chunk: Buffer) => tail.push(chunk));

  let spawnError: Error | undefined;
  const exited = new Promise<ProcessExit>((resolve) => {
    child.once('error', (err) => {
      spawnError = err;
      resolve({ code: null, signal: null });
    });
    child.once('exit', (code, signal) => resolve({ code, signal }));
  });
  const pid = child.pid;
  if (pid === undefined) {
    // spawn reports ENOENT and similar asynchronously; the PID is missing in exactly those cases.
    throw new TestkitError(
      'PROCESS_START_FAILED',
      `could not start ${name} (${cmd}): no PID; check that the program is installed and on PATH`,
    );
  }
  installExitHook();
  liveChildren.add(pid);
  void exited.then(() => liveChildren.delete(pid));

  let finished = false;
  void exited.then(() => {
    finished = true;
  });

  return {
    pid,
    exited,
    output: () => (spawnError ? `${spawnError.message}\n` : '') + tail.toString(),
    kill9: () => {
      if (!finished) process.kill(pid, 'SIGKILL');
    },
    stop: async (signal: NodeJS.Signals = 'SIGTERM', timeoutMs = DEFAULT_STOP_TIMEOUT_MS) => {
      if (finished) return;
      try {
        process.kill(pid, signal);
      } catch {
        // It exited between the check and the signal.
      }
      const timer = delay(timeoutMs, 'timeout' as const);
      const result = await Promise.race([exited.then(() => 'exited' as const), timer]);
      if (result === 'timeout' && !finished) {
        process.kill(pid, 'SIGKILL');
        await exited;
      }
    },
  };
}

export interface WaitForHttpOptions {
  /** Total time to keep polling, in milliseconds (default 15 000). */
  timeoutMs?: number;
  /** Statuses that count as ready (default [200]). */
  expectStatus?: number[];
  /** Stop early with the process output when this process exits before it is ready. */
  process?: ManagedProcess;
}

/** Polls `url` with GET until it returns one of `expectStatus`, or throws HTTP_NOT_READY. */
export async function waitForHttp(url: string, opts: WaitForHttpOptions = {}): Promise<void> {
  const timeoutMs = opts.timeoutMs ?? DEFAULT_READY_TIMEOUT_MS;
  const expected = opts.expectStatus ?? [200];
  const deadline = Date.now() + timeoutMs;
  let exitedEarly = false;
  void opts.process?.exited.then(() => {
    exitedEarly = true;
  });
  let last: string;
  for (;;) {
    if (exitedEarly && opts.process) {
      const exit = await opts.process.exited;
      throw new TestkitError(
        'HTTP_NOT_READY',
        `process ${opts.process.pid} exited (code ${exit.code}, signal ${exit.signal}) before ` +
          `${url} was ready; its output:\n${opts.process.output()}`,
      );
    }
    try {
      const res = await request(url, {
        method: 'GET',
        headersTimeout: READY_REQUEST_TIMEOUT_MS,
        bodyTimeout: READY_REQUEST_TIMEOUT_MS,
      });
      await res.body.dump();
      if (expected.includes(res.statusCode)) return;
      last = `status ${res.statusCode}`;
    } catch (err) {
      last = err instanceof Error ? err.message : String(err);
    }
    if (Date.now() >= deadline) {
      throw new TestkitError(
        'HTTP_NOT_READY',
        `${url} did not return ${expected.join(' or ')} within ${timeoutMs} ms (last: ${last}); ` +
          'check that the server started and listens on that address',
      );
    }
    await delay(READY_POLL_INTERVAL_MS);
  }
}

export interface CommandResult {
  stdout: Buffer;
  stderr: string;
}

/**
 * Runs a command to completion and returns its output, or throws COMMAND_FAILED with the exit
 * status and the stderr tail. For short tools (umoci, skopeo, htpasswd, openssl).
 */
export async function runCommand(
  cmd: string,
  args: string[],
  opts: SpawnOptions & {
    input?: Buffer | string;
    /** Strings (passwords, credentials) replaced by *** in the error message. */
    secrets?: string[];
  } = {},
): Promise<CommandResult> {
  const child = spawn(cmd, args, {
    cwd: opts.cwd,
    env: opts.env ?? process.env,
    stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
  });
  const stdout: Buffer[] = [];
  const stderr = new OutputTail(OUTPUT_TAIL_BYTES);
  child.stdout?.on('data', (chunk: Buffer) => stdout.push(chunk));
  child.stderr?.on('data', (chunk: Buffer) => stderr.push(chunk));
  if (opts.input !== undefined) child.stdin?.end(opts.input);
  const exit = await new Promise<ProcessExit & { error?: Error }>((resolve) => {
    child.once('error', (error) => resolve({ code: null, signal: null, error }));
    child.once('close', (code, signal) => resolve({ code, signal }));
  });
  const name = opts.name ?? cmd;
  if (exit.error || exit.code !== 0) {
    const reason = exit.error
      ? exit.error.message
      : `exit code ${exit.code}, signal ${exit.signal}`;
    const message = `${name} failed (${reason}): ${cmd} ${args.join(' ')}\n${stderr.toString()}`;
    throw new TestkitError('COMMAND_FAILED', redact(message, opts.secrets ?? []));
  }
  return { stdout: Buffer.concat(stdout), stderr: stderr.toString() };
}

/** Replaces every non-empty secret in `text` with ***. */
export function redact(text: string, secrets: string[]): string {
  let result = text;
  for (const secret of secrets) {
    if (secret.length > 0) result = result.split(secret).join('***');
  }
  return result;
}
