#!/usr/bin/env node
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { z } from 'zod';
import type { Credential } from './server/auth.js';
import { startRegistryServer } from './server/app.js';
import { OciStore } from './store/store.js';

const USAGE = `usage: edge-registry serve --root DIR --listen HOST:PORT [options]

  --root DIR                 store folder (an OCI image layout; created when missing)
  --listen HOST:PORT         address to listen on, e.g. 127.0.0.1:5000 (port 0 picks a free port)
  --push                     accept uploads, manifest PUTs and deletes (default: pull only)
  --pull-user NAME           require Basic credentials for pull (with --pull-password-file)
  --pull-password-file FILE  file whose first line is the pull password
  --push-user NAME           require Basic credentials for push (with --push-password-file)
  --push-password-file FILE  file whose first line is the push password
  --tls-cert FILE            PEM certificate; serve HTTPS (with --tls-key)
  --tls-key FILE             PEM private key
  --gc-grace-seconds N       age below which unreferenced content is kept (default 86400)
  --log-level LEVEL          pino level: fatal, error, warn, info, debug, trace (default info)
  --help                     print this text`;

/** Time in milliseconds that open requests get on SIGTERM or SIGINT before the process exits. */
const SHUTDOWN_TIMEOUT_MS = 10_000;

const listenSchema = z
  .string()
  .regex(/^(\[[0-9a-fA-F:]+\]|[^:\s]+):(\d{1,5})$/, 'expected HOST:PORT, e.g. 127.0.0.1:5000')
  .transform((value) => {
    const colon = value.lastIndexOf(':');
    return {
      host: value.slice(0, colon).replace(/^\[|\]$/g, ''),
      port: Number(value.slice(colon + 1)),
    };
  })
  .refine((value) => value.port <= 65535, 'port must be at most 65535');

const optionsSchema = z
  .object({
    root: z.string().min(1, '--root is required'),
    listen: listenSchema,
    push: z.boolean().default(false),
    'pull-user': z.string().min(1).optional(),
    'pull-password-file': z.string().min(1).optional(),
    'push-user': z.string().min(1).optional(),
    'push-password-file': z.string().min(1).optional(),
    'tls-cert': z.string().min(1).optional(),
    'tls-key': z.string().min(1).optional(),
    'gc-grace-seconds': z
      .string()
      .regex(/^\d+$/, 'must be a whole number of seconds')
      .transform(Number)
      .optional(),
    'log-level': z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace']).default('info'),
  })
  .refine((o) => (o['pull-user'] === undefined) === (o['pull-password-file'] === undefined), {
    message: '--pull-user and --pull-password-file go together',
  })
  .refine((o) => (o['push-user'] === undefined) === (o['push-password-file'] === undefined), {
    message: '--push-user and --push-password-file go together',
  })
  .refine((o) => (o['tls-cert'] === undefined) === (o['tls-key'] === undefined), {
    message: '--tls-cert and --tls-key go together',
  });

async function credentialFrom(
  user: string | undefined,
  file: string | undefined,
): Promise<Credential[]> {
  if (user === undefined || file === undefined) return [];
  const password = (await readFile(file, 'utf8')).split(/\r?\n/)[0] ?? '';
  if (password === '')
    throw new Error(`password file ${file} is empty: write the password on its first line`);
  return [{ username: user, password }];
}

const SERVE_OPTIONS = {
  help: { type: 'boolean' },
  root: { type: 'string' },
  listen: { type: 'string' },
  push: { type: 'boolean' },
  'pull-user': { type: 'string' },
  'pull-password-file': { type: 'string' },
  'push-user': { type: 'string' },
  'push-password-file': { type: 'string' },
  'tls-cert': { type: 'string' },
  'tls-key': { type: 'string' },
  'gc-grace-seconds': { type: 'string' },
  'log-level': { type: 'string' },
} as const;

type ServeOptions = z.infer<typeof optionsSchema>;

/** Parses the serve options; prints usage and sets the exit code on a bad or help request. */
function parseServeOptions(argv: string[]): ServeOptions | undefined {
  let values;
  try {
    values = parseArgs({ args: argv, options: SERVE_OPTIONS }).values;
  } catch (error) {
    process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n\n${USAGE}\n`);
    process.exitCode = 2;
    return undefined;
  }
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return undefined;
  }

  const { help: _help, ...rest } = values;
  const parsed = optionsSchema.safeParse({ root: '', listen: '', ...rest });
  if (!parsed.success) {
    // Lists the option and the rule it broke, never the value (a mistyped path may be private).
    const problems = parsed.error.issues.map(
      (issue) => `  ${issue.path.join('.') || 'options'}: ${issue.message}`,
    );
    process.stderr.write(`invalid options:\n${problems.join('\n')}\n\n${USAGE}\n`);
    process.exitCode = 2;
    return undefined;
  }
  return parsed.data;
}

async function serve(argv: string[]): Promise<void> {
  const options = parseServeOptions(argv);
  if (!options) return;

  const logger = pino({ level: options['log-level'] });
  const store = await OciStore.open(options.root, {
    ...(options['gc-grace-seconds'] === undefined
      ? {}
      : { gcGracePeriodMs: options['gc-grace-seconds'] * 1000 }),
  });
  const tls =
    options['tls-cert'] !== undefined && options['tls-key'] !== undefined
      ? { cert: await readFile(options['tls-cert']), key: await readFile(options['tls-key']) }
      : undefined;

  const server = await startRegistryServer({
    store,
    push: options.push,
    auth: {
      pull: await credentialFrom(options['pull-user'], options['pull-password-file']),
      push: await credentialFrom(options['push-user'], options['push-password-file']),
    },
    ...(tls ? { tls } : {}),
    logger,
    listen: options.listen,
  });
  logger.info({ url: server.url, root: options.root, push: options.push }, 'registry listening');

  const stop = (signal: string): void => {
    logger.info({ signal }, 'registry stopping');
    const timer = setTimeout(() => {
      logger.error({ timeoutMs: SHUTDOWN_TIMEOUT_MS }, 'registry stop timed out; exiting');
      process.exit(1);
    }, SHUTDOWN_TIMEOUT_MS);
    timer.unref();
    server
      .close()
      .then(() => store.close())
      .then(
        () => logger.info('registry stopped'),
        (error: unknown) => {
          logger.error({ err: error }, 'registry stop failed');
          process.exitCode = 1;
        },
      );
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

async function main(): Promise<void> {
  const [command, ...rest] = process.argv.slice(2);
  if (command === 'serve') return serve(rest);
  process.stderr.write(
    `${command === undefined ? 'missing command' : `unknown command ${command}`}\n\n${USAGE}\n`,
  );
  process.exitCode = 2;
}

main().catch((error: unknown) => {
  process.stderr.write(
    `edge-registry failed: ${error instanceof Error ? error.message : String(error)}\n`,
  );
  process.exitCode = 1;
});
