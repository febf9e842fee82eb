import { isAbsolute, resolve } from 'node:path';
import { z } from 'zod';
import { LOG_LEVELS } from '@edge/contract';

/** Default data folder for PGlite, the generated encryption key and the admin password file. */
export const DEFAULT_DATA_DIR = './data/ground-control';

const booleanString = z
  .enum(['true', 'false', '1', '0'])
  .transform((value) => value === 'true' || value === '1');

function integer(min: number, max: number) {
  return z
    .string()
    .regex(/^\d+$/, 'must be a whole number')
    .transform(Number)
    .pipe(z.int().min(min).max(max));
}

const envSchema = z.object({
  GC_HOST: z.string().min(1).default('0.0.0.0'),
  GC_PORT: integer(0, 65_535).default(8080),
  DATABASE_URL: z
    .string()
    .regex(/^postgres(?:ql)?:\/\//, 'must be a postgres:// or postgresql:// URL')
    .optional(),
  GC_DATABASE_POOL_SIZE: integer(1, 200).default(10),
  GC_DATA_DIR: z.string().min(1).default(DEFAULT_DATA_DIR),
  GC_ENCRYPTION_KEY: z.string().optional(),
  GC_ENCRYPTION_KEYS_OLD: z.string().optional(),
  GC_ADMIN_PASSWORD: z.string().min(12, 'must be at least 12 characters').optional(),
  GC_LOG_LEVEL: z.enum(LOG_LEVELS).default('info'),
  GC_BODY_LIMIT_BYTES: integer(1_024, 64 * 1024 * 1024).default(1024 * 1024),
  GC_TRUST_PROXY: booleanString.default(false),
  GC_SESSION_TTL_SECONDS: integer(60, 30 * 86_400).default(12 * 3_600),
  GC_LOGIN_RATE_LIMIT_PER_MINUTE: integer(1, 10_000).default(20),
  GC_LOGIN_LOCKOUT_THRESHOLD: integer(1, 1_000).default(5),
  GC_LOGIN_LOCKOUT_SECONDS: integer(1, 86_400).default(900),
  GC_RESOLVE_INTERVAL_SECONDS: integer(0, 86_400).default(300),
  GC_ROBOT_DURATION_DAYS: integer(1, 3_650).default(30),
  GC_ROBOT_REFRESH_BEFORE_SECONDS: integer(60, 365 * 86_400).default(7 * 86_400),
  GC_CREDENTIAL_INTERVAL_SECONDS: integer(0, 86_400).default(300),
  GC_EVENT_HISTORY_PER_SATELLITE: integer(1, 100_000).default(200),
  GC_AUDIT_RETENTION_DAYS: integer(1, 36_500).default(365),
});

export interface Config {
  readonly host: string;
  readonly port: number;
  readonly databaseUrl: string | undefined;
  readonly databasePoolSize: number;
  /** Absolute path of the data folder. */
  readonly dataDir: string;
  /** Base64 text of the current key; undefined lets the embedded default generate one. */
  readonly encryptionKey: string | undefined;
  readonly encryptionKeysOld: readonly string[];
  readonly adminPassword: string | undefined;
  readonly logLevel: (typeof LOG_LEVELS)[number];
  readonly bodyLimitBytes: number;
  readonly trustProxy: boolean;
  readonly sessionTtlSeconds: number;
  readonly loginRateLimitPerMinute: number;
  readonly loginLockoutThreshold: number;
  readonly loginLockoutSeconds: number;
  /** Pause between scheduled tag re-resolutions; 0 turns the schedule off. */
  readonly resolveIntervalSeconds: number;
  /** Lifetime of a new or refreshed Harbor robot account, in days. */
  readonly robotDurationDays: number;
  /** A robot whose expiry is closer than this gets a new secret and a longer life. */
  readonly robotRefreshBeforeSeconds: number;
  /** Pause between credential runs (robot sync and rotation); 0 turns them off. */
  readonly credentialIntervalSeconds: number;
  readonly eventHistoryPerSatellite: number;
  readonly auditRetentionDays: number;
}

/** Thrown when the environment is invalid; the message names variables, never their values. */
export class ConfigError extends Error {
  readonly code = 'CONFIG_INVALID';
  constructor(readonly problems: readonly string[]) {
    super(`invalid Ground Control environment: ${problems.join('; ')}`);
    this.name = 'ConfigError';
  }
}

/** Parses and freezes the Ground Control settings from environment variables. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): Config {
  const parsed = envSchema.safeParse(env);
  if (!parsed.success) {
    // Zod's issue messages describe the rule, never the input value, so they are safe to print.
    const problems = parsed.error.issues.map(
      (issue) => `${issue.path.join('.') || '(environment)'} ${issue.message}`,
    );
    throw new ConfigError(problems);
  }
  const values = parsed.data;
  if (values.DATABASE_URL !== undefined && values.GC_ENCRYPTION_KEY === undefined) {
    throw new ConfigError([
      'GC_ENCRYPTION_KEY is required with DATABASE_URL: set it to 32 random bytes in base64 ' +
        '(for example the output of `openssl rand -base64 32`)',
    ]);
  }
  const dataDir = isAbsolute(values.GC_DATA_DIR)
    ? values.GC_DATA_DIR
    : resolve(cwd, values.GC_DATA_DIR);
  const config: Config = {
    host: values.GC_HOST,
    port: values.GC_PORT,
    databaseUrl: values.DATABASE_URL,
    databasePoolSize: values.GC_DATABASE_POOL_SIZE,
    dataDir,
    encryptionKey: values.GC_ENCRYPTION_KEY,
    encryptionKeysOld: Object.freeze(
      (values.GC_ENCRYPTION_KEYS_OLD ?? '')
        .split(',')
        .map((key) => key.trim())
        .filter((key) => key !== ''),
    ),
    adminPassword: values.GC_ADMIN_PASSWORD,
    logLevel: values.GC_LOG_LEVEL,
    bodyLimitBytes: values.GC_BODY_LIMIT_BYTES,
    trustProxy: values.GC_TRUST_PROXY,
    sessionTtlSeconds: values.GC_SESSION_TTL_SECONDS,
    loginRateLimitPerMinute: values.GC_LOGIN_RATE_LIMIT_PER_MINUTE,
    loginLockoutThreshold: values.GC_LOGIN_LOCKOUT_THRESHOLD,
    loginLockoutSeconds: values.GC_LOGIN_LOCKOUT_SECONDS,
    resolveIntervalSeconds: values.GC_RESOLVE_INTERVAL_SECONDS,
    robotDurationDays: values.GC_ROBOT_DURATION_DAYS,
    robotRefreshBeforeSeconds: values.GC_ROBOT_REFRESH_BEFORE_SECONDS,
    credentialIntervalSeconds: values.GC_CREDENTIAL_INTERVAL_SECONDS,
    eventHistoryPerSatellite: values.GC_EVENT_HISTORY_PER_SATELLITE,
    auditRetentionDays: values.GC_AUDIT_RETENTION_DAYS,
  };
  return Object.freeze(config);
}
