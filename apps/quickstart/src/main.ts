#!/usr/bin/env node
import { parseArguments, USAGE, type QuickstartOptions } from './args.js';
import { QuickstartError } from './errors.js';
import { runQuickstart } from './quickstart.js';
import { RunningServices } from './running-services.js';

/** Exit codes: 1 for a failed run or a sync timeout, 2 for invalid arguments. */
const EXIT_FAILED = 1;
const EXIT_USAGE = 2;

function progress(line: string): void {
  process.stdout.write(`${line}\n`);
}

function describeError(error: unknown): string {
  if (error instanceof QuickstartError)
    return `quickstart failed (${error.code}): ${error.message}`;
  return `quickstart failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`;
}

async function main(argv: readonly string[]): Promise<number> {
  let options: QuickstartOptions;
  try {
    options = parseArguments(argv);
  } catch (error) {
    process.stderr.write(`${describeError(error)}\n`);
    return EXIT_USAGE;
  }
  if (options.help) {
    progress(USAGE);
    return 0;
  }

  const services = new RunningServices();
  const stopRequested = new AbortController();
  let resolveStop: () => void = () => undefined;
  const stopped = new Promise<void>((resolve) => {
    resolveStop = resolve;
  });
  const onSignal = (signal: NodeJS.Signals): void => {
    if (stopRequested.signal.aborted) {
      progress(`${signal} received again; still stopping the services`);
      return;
    }
    progress(`${signal} received; stopping the satellite, Ground Control and the registry`);
    stopRequested.abort();
    resolveStop();
  };
  // SIGHUP too: a closed terminal would otherwise end the quickstart without stopping the
  // services, which run in process groups of their own.
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, onSignal);

  let exitCode = 0;
  const run = runQuickstart(options, services, progress, stopRequested.signal);
  try {
    await Promise.race([run, stopped]);
    if (!stopRequested.signal.aborted) {
      if (options.exitWhenSynced) {
        progress('the fleet is in sync; stopping (--exit-when-synced)');
      } else {
        progress('the fleet is in sync; press Ctrl-C to stop every service');
        await stopped;
      }
    }
  } catch (error) {
    process.stderr.write(`${describeError(error)}\n`);
    exitCode = EXIT_FAILED;
  }
  await services.stopAll(progress);
  if (stopRequested.signal.aborted) {
    // After a stop during start-up, the run ends at its next check of the aborted signal or when
    // a service it waits for exits. A service that it started in the meantime is stopped here.
    await run.catch(() => undefined);
    await services.stopAll(progress);
  }
  return exitCode;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`${describeError(error)}\n`);
    process.exit(EXIT_FAILED);
  },
);
