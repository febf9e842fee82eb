import { spawn, type ChildProcess } from 'node:child_process';
import { open } from 'node:fs/promises';
import { request } from 'undici';
import { QuickstartError } from './errors.js';

/** Pause between readiness probes, in ms. */
const READY_POLL_MS = 200;
/** Time for one readiness probe, in ms; a live local service responds in a few ms. */
const READY_PROBE_TIMEOUT_MS = 2_000;

/** A spawned service whose stdout and stderr go to a log file. */
export interface ChildService {
  readonly name: string;
  readonly logFile: string;
  readonly pid: number | undefined;
  /** Resolves with the exit code (or signal) when the process ends. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** True until the process ended. */
  running(): boolean;
  /** Sends SIGTERM, then SIGKILL when it is still running after `timeoutMs`; true when it stopped in time. */
  stop(timeoutMs: number): Promise<boolean>;
}

// Services still running when the quickstart exits (after an uncaught error, say) get SIGKILL
// by PID, because their own process groups do not receive the terminal's signals.
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
        // It exited in the meantime.
      }
    }
  });
}

/**
 * Spawns `node script args` with `env`, appending its output to `logFile`, and passes the new
 * service to `register` before it returns.
 */
export async function startService(
  name: string,
  script: string,
  args: readonly string[],
  env: NodeJS.ProcessEnv,
  logFile: string,
  register: (service: ChildService) => void,
): Promise<ChildService> {
  const log = await open(logFile, 'a', 0o600);
  let child: ChildProcess;
  try {
    await log.write(`--- ${new Date().toISOString()} starting ${name}\n`);
    child = spawn(process.execPath, [script, ...args], {
      env,
      stdio: ['ignore', log.fd, log.fd],
      // A process group of its own, so that Ctrl-C in the terminal reaches only the quickstart,
      // which then stops the services one by one in its own order.
      detached: true,
    });
  } finally {
    // The child keeps its own copy of the descriptor.
    await log.close();
  }
  let alive = true;
  const pid = child.pid;
  if (pid !== undefined) {
    liveChildren.add(pid);
    installExitHook();
  }
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => {
      alive = false;
      if (pid !== undefined) liveChildren.delete(pid);
      resolve({ code, signal });
    });
    child.once('error', () => {
      alive = false;
      resolve({ code: null, signal: null });
    });
  });
  const service: ChildService = {
    name,
    logFile,
    pid,
    exited,
    running: () => alive,
    async stop(timeoutMs) {
      if (!alive) return true;
      child.kill('SIGTERM');
      let timer: NodeJS.Timeout | undefined;
      const stoppedInTime = await Promise.race([
        exited.then(() => true),
        new Promise<boolean>((resolve) => {
          timer = setTimeout(() => resolve(false), timeoutMs);
        }),
      ]);
      clearTimeout(timer);
      if (!stoppedInTime) {
        child.kill('SIGKILL');
        await exited;
      }
      return stoppedInTime;
    },
  };
  register(service);
  return service;
}

/** Describes how a service ended, for error messages. */
export function describeExit(exit: { code: number | null; signal: NodeJS.Signals | null }): string {
  if (exit.signal !== null) return `was stopped by ${exit.signal}`;
  return `exited with code ${String(exit.code)}`;
}

/**
 * Polls `url` until it returns 200. Fails with SERVICE_FAILED when the service exits first and
 * with SERVICE_TIMEOUT after `timeoutMs`; both messages point at the service's log file.
 */
export async function waitUntilReady(
  service: ChildService,
  url: string,
  timeoutMs: number,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  void service.exited.then((value) => {
    exit = value;
  });
  while (Date.now() < deadline) {
    if (exit !== undefined) {
      throw new QuickstartError(
        'SERVICE_FAILED',
        `${service.name} ${describeExit(exit)} before it was ready; read ${service.logFile} for the cause`,
      );
    }
    try {
      const response = await request(url, {
        headersTimeout: READY_PROBE_TIMEOUT_MS,
        bodyTimeout: READY_PROBE_TIMEOUT_MS,
      });
      await response.body.dump();
      if (response.statusCode === 200) return;
    } catch {
      // Not listening yet: retry until the deadline.
    }
    await new Promise((done) => setTimeout(done, READY_POLL_MS));
  }
  throw new QuickstartError(
    'SERVICE_TIMEOUT',
    `${service.name} was not ready at ${url} after ${Math.round(timeoutMs / 1000)} s; read ` +
      `${service.logFile} for the cause`,
  );
}
