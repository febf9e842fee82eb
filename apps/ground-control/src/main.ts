#!/usr/bin/env node
import { parseArgs } from 'node:util';
import { buildApp, createLogger } from './app.js';
import { ConfigError, loadConfig, type Config } from './config.js';
import { openDatabase } from './db/database.js';
import { resetPassword } from './domain/bootstrap.js';

/** Time allowed for open requests (long polls end at once) before the process exits, in ms. */
const SHUTDOWN_TIMEOUT_MS = 10_000;

const USAGE = `usage:
  ground-control                              start the service (settings from environment)
  ground-control reset-password --user NAME   set a new generated password and clear a lockout`;

async function serve(config: Config): Promise<void> {
  const logger = createLogger(config);
  const { app } = await buildApp(config, { logger });
  let stopping = false;
  const stop = (signal: NodeJS.Signals): void => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down: closing the listener, long polls and the database');
    const timer = setTimeout(() => {
      logger.error({ timeoutMs: SHUTDOWN_TIMEOUT_MS }, 'shutdown timed out; exiting');
      process.exit(1);
    }, SHUTDOWN_TIMEOUT_MS);
    timer.unref();
    app
      .close()
      .then(() => {
        logger.info('stopped');
        process.exit(0);
      })
      .catch((error: unknown) => {
        logger.error({ err: error }, 'shutdown failed');
        process.exit(1);
      });
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  const address = await app.listen({ host: config.host, port: config.port });
  logger.info(
    { address, database: config.databaseUrl === undefined ? 'pglite' : 'postgres' },
    'Ground Control listening',
  );
}

async function resetPasswordCommand(config: Config, args: string[]): Promise<void> {
  const { values } = parseArgs({ args, options: { user: { type: 'string' } } });
  if (values.user === undefined) {
    process.stderr.write(`missing --user NAME\n${USAGE}\n`);
    process.exitCode = 2;
    return;
  }
  const logger = createLogger({ ...config, logLevel: 'warn' });
  const database = await openDatabase({
    url: config.databaseUrl,
    dataDir: config.databaseUrl === undefined ? `${config.dataDir}/pglite` : undefined,
    logger,
  });
  try {
    await database.migrate();
    const password = await resetPassword(database.db, values.user);
    if (password === null) {
      process.stderr.write(
        `user "${values.user}" not found; check the name with GET /api/v1/users\n`,
      );
      process.exitCode = 1;
      return;
    }
    process.stdout.write(`new password for ${values.user}: ${password}\n`);
  } finally {
    await database.close();
  }
}

async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  let config: Config;
  try {
    config = loadConfig();
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`${error.message}\n`);
      process.exitCode = 2;
      return;
    }
    throw error;
  }
  if (command === undefined || command === 'serve') return serve(config);
  if (command === 'reset-password') return resetPasswordCommand(config, rest);
  process.stderr.write(`unknown command "${command}"\n${USAGE}\n`);
  process.exitCode = 2;
}

main(process.argv.slice(2)).catch((error: unknown) => {
  process.stderr.write(
    `ground-control failed: ${error instanceof Error ? error.stack : String(error)}\n`,
  );
  process.exit(1);
});
