import { parseArgs } from 'node:util';
import { z } from 'zod';
import { QuickstartError } from './errors.js';

/** Default ports: Ground Control's own default, Distribution's usual port and the satellite's. */
export const DEFAULT_GC_PORT = 8080;
export const DEFAULT_UPSTREAM_PORT = 5000;
export const DEFAULT_SITE_PORT = 5050;
export const DEFAULT_DATA_DIR = './data/quickstart';
/** Time allowed for the fleet to reach in-sync with --exit-when-synced, in seconds. */
export const DEFAULT_TIMEOUT_SECONDS = 120;

export const USAGE = `usage: pnpm quickstart [options]

Starts Ground Control (PGlite), a central registry with demo images, and one satellite with its
embedded registry, all on 127.0.0.1, then waits until the fleet is in sync.

  --data-dir DIR            data folder for every service and the logs (default ${DEFAULT_DATA_DIR})
  --reset                   delete the data folder's previous contents first (default: reuse them)
  --gc-port PORT            Ground Control port (default ${DEFAULT_GC_PORT}; 0 picks a free port)
  --upstream-port PORT      central registry port (default ${DEFAULT_UPSTREAM_PORT}; 0 picks a free port)
  --site-port PORT          site registry port (default ${DEFAULT_SITE_PORT}; 0 picks a free port)
  --upstream URL            replicate from this existing registry instead; nothing is pushed to it
  --upstream-username NAME  user for --upstream (or QUICKSTART_UPSTREAM_USERNAME)
  --upstream-password-file FILE
                            file whose first line is the password for --upstream
                            (or QUICKSTART_UPSTREAM_PASSWORD)
  --image REPOSITORY:TAG    artifact to replicate from --upstream; repeat for several
  --exit-when-synced        exit 0 once the fleet is in sync, 1 with the reason on timeout
  --timeout SECONDS         time allowed for --exit-when-synced (default ${DEFAULT_TIMEOUT_SECONDS})
  --help                    print this text`;

const portSchema = z
  .string()
  .regex(/^\d+$/, 'must be a port number from 0 to 65535')
  .transform(Number)
  .pipe(z.int().min(0, 'must be at least 0').max(65_535, 'must be at most 65535'));

/** `repository:tag` in the distribution grammar (lower-case path components, tag up to 128). */
const imageSchema = z
  .string()
  .regex(
    /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*:[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/,
    'must be REPOSITORY:TAG without the registry host, such as team/app:1.0',
  )
  .transform((value) => {
    const colon = value.lastIndexOf(':');
    return { repository: value.slice(0, colon), tag: value.slice(colon + 1) };
  });

const upstreamUrlSchema = z
  .url({ protocol: /^https?$/, error: 'must be an http:// or https:// URL' })
  .transform((value) => value.replace(/\/+$/, ''));

const optionsSchema = z.object({
  'data-dir': z.string().min(1, 'must not be empty').default(DEFAULT_DATA_DIR),
  reset: z.boolean().default(false),
  'gc-port': portSchema.default(DEFAULT_GC_PORT),
  'upstream-port': portSchema.default(DEFAULT_UPSTREAM_PORT),
  'site-port': portSchema.default(DEFAULT_SITE_PORT),
  upstream: upstreamUrlSchema.optional(),
  'upstream-username': z.string().min(1, 'must not be empty').optional(),
  'upstream-password-file': z.string().min(1, 'must not be empty').optional(),
  image: z.array(imageSchema).default([]),
  'exit-when-synced': z.boolean().default(false),
  timeout: z
    .string()
    .regex(/^\d+$/, 'must be a whole number of seconds')
    .transform(Number)
    .pipe(z.int().min(1, 'must be at least 1').max(86_400, 'must be at most 86400'))
    .default(DEFAULT_TIMEOUT_SECONDS),
  help: z.boolean().default(false),
});

export interface ImageSelection {
  repository: string;
  tag: string;
}

/** An existing registry named with --upstream. */
export interface ExternalUpstream {
  url: string;
  username: string | undefined;
  /** Path of the password file; the password is read at start, never kept in the options. */
  passwordFile: string | undefined;
  images: ImageSelection[];
}

export interface QuickstartOptions {
  dataDir: string;
  reset: boolean;
  gcPort: number;
  upstreamPort: number;
  sitePort: number;
  /** Undefined when the quickstart runs its own registry with the demo images. */
  upstream: ExternalUpstream | undefined;
  exitWhenSynced: boolean;
  timeoutSeconds: number;
  help: boolean;
}

/** Parses the command line; throws ARGUMENTS_INVALID naming the flag and the rule it breaks. */
export function parseArguments(argv: readonly string[]): QuickstartOptions {
  let values: Record<string, unknown>;
  try {
    ({ values } = parseArgs({
      args: [...argv],
      strict: true,
      allowPositionals: false,
      options: {
        'data-dir': { type: 'string' },
        reset: { type: 'boolean' },
        'gc-port': { type: 'string' },
        'upstream-port': { type: 'string' },
        'site-port': { type: 'string' },
        upstream: { type: 'string' },
        'upstream-username': { type: 'string' },
        'upstream-password-file': { type: 'string' },
        image: { type: 'string', multiple: true },
        'exit-when-synced': { type: 'boolean' },
        timeout: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (error) {
    throw new QuickstartError(
      'ARGUMENTS_INVALID',
      `${error instanceof Error ? error.message : String(error)}; run with --help for the options`,
    );
  }
  const parsed = optionsSchema.safeParse(values);
  if (!parsed.success) {
    const problems = parsed.error.issues.map(
      (issue) => `--${issue.path[0] as string} ${issue.message}`,
    );
    throw new QuickstartError('ARGUMENTS_INVALID', `invalid arguments: ${problems.join('; ')}`);
  }
  const options = parsed.data;
  const external = options.upstream !== undefined;
  if (!external && options.image.length > 0) {
    throw new QuickstartError(
      'ARGUMENTS_INVALID',
      '--image needs --upstream: without it the quickstart replicates its own demo images',
    );
  }
  if (
    !external &&
    (options['upstream-username'] ?? options['upstream-password-file']) !== undefined
  ) {
    throw new QuickstartError(
      'ARGUMENTS_INVALID',
      '--upstream-username and --upstream-password-file need --upstream URL',
    );
  }
  if (external && options.image.length === 0 && !options.help) {
    throw new QuickstartError(
      'ARGUMENTS_INVALID',
      '--upstream needs at least one --image REPOSITORY:TAG to replicate',
    );
  }
  return {
    dataDir: options['data-dir'],
    reset: options.reset,
    gcPort: options['gc-port'],
    upstreamPort: options['upstream-port'],
    sitePort: options['site-port'],
    upstream:
      options.upstream === undefined
        ? undefined
        : {
            url: options.upstream,
            username: options['upstream-username'],
            passwordFile: options['upstream-password-file'],
            images: options.image,
          },
    exitWhenSynced: options['exit-when-synced'],
    timeoutSeconds: options.timeout,
    help: options.help,
  };
}
