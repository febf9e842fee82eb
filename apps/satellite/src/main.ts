#!/usr/bin/env node
import { USAGE, parseCommandLine } from './command-line.js';
import { dataDirLayout } from './data-dir.js';
import { errorCode, errorMessage } from './errors.js';
import { createLogger } from './logger.js';
import { Satellite } from './satellite.js';
import { loadSettings } from './settings.js';
import { formatBytes, renderStatus } from './status-command.js';
import { SATELLITE_VERSION } from './version.js';

/** Interval of the progress line that `sync --once` draws on a terminal, in ms. */
const PROGRESS_INTERVAL_MS = 250;

async function main(argv: readonly string[]): Promise<number> {
  const line = parseCommandLine(argv);
  if (line.command === 'help') {
    process.stdout.write(USAGE);
    return 0;
  }
  if (line.command === 'version') {
    process.stdout.write(`${SATELLITE_VERSION}\n`);
    return 0;
  }
  const settings = await loadSettings({
    flags: line.flags,
    env: process.env,
    ...(line.configFile ? { configFile: line.configFile } : {}),
  });
  if (line.command === 'status') {
    const rendered = await renderStatus(dataDirLayout(settings.dataDir), line.json);
    process.stdout.write(rendered.text);
    return rendered.found ? 0 : 1;
  }

  const logger = createLogger(settings.logLevel ?? 'info');
  const satellite = new Satellite({ settings, logger });
  if (line.command === 'sync') {
    const progress = process.stderr.isTTY ? startProgress(satellite) : undefined;
    try {
      const result = await satellite.syncOnce();
      progress?.stop();
      const total = result.present + result.pending + result.failed + result.waitingForWindow;
      process.stderr.write(
        `sync finished: ${result.present}/${total} artifacts present, ${result.pending} pending, ${result.waitingForWindow} waiting for window, ${result.failed} failed\n`,
      );
      return result.present === total ? 0 : 1;
    } finally {
      progress?.stop();
      await satellite.close();
    }
  }

  // run: the daemon stays up until SIGTERM or SIGINT.
  let stopping = false;
  const stop = (signal: NodeJS.Signals): void => {
    if (stopping) return;
    stopping = true;
    const timeoutMs = settings.shutdownTimeoutSeconds * 1000;
    logger.info({ signal }, 'signal received; shutting down');
    // Exit even when a phase hangs: the timeout is the promise made to the service manager.
    setTimeout(() => {
      logger.error({ timeoutMs }, 'shutdown timed out; exiting');
      process.exit(1);
    }, timeoutMs).unref();
    satellite.shutdown(timeoutMs).then(
      () => process.exit(0),
      (error: unknown) => {
        logger.error({ err: error }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  try {
    await satellite.run();
  } catch (error) {
    logger.fatal(
      { err: error, code: errorCode(error) },
      `satellite stopped: ${errorMessage(error)}`,
    );
    await satellite.shutdown(5_000).catch(() => undefined);
    return 1;
  }
  return new Promise<number>(() => undefined);
}

function startProgress(satellite: Satellite): { stop(): void } {
  const timer = setInterval(() => {
    const artifacts = satellite.status.artifacts();
    const present = artifacts.filter((artifact) => artifact.state === 'present').length;
    const done = artifacts.reduce((sum, artifact) => sum + artifact.bytesDone, 0);
    const total = artifacts.reduce((sum, artifact) => sum + artifact.bytesTotal, 0);
    process.stderr.write(
      `\r\x1b[Kartifacts ${present}/${artifacts.length} present, ${formatBytes(done)} of ${formatBytes(total)}`,
    );
  }, PROGRESS_INTERVAL_MS);
  return {
    stop() {
      clearInterval(timer);
      process.stderr.write('\r\x1b[K');
    },
  };
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(`satellite: ${errorMessage(error)}\n`);
    process.exitCode = 2;
  },
);
