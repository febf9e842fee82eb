import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { z } from 'zod';
import { SatelliteError } from './errors.js';

/**
 * Every start-up setting with its flag, environment variable and config-file key. Precedence is
 * flag over environment over file over default. The README's settings table lists the same rows.
 */
export const SETTING_SOURCES = {
  groundControlUrl: { flag: 'ground-control-url', env: 'SATELLITE_GROUND_CONTROL_URL' },
  token: { flag: 'token', env: 'SATELLITE_TOKEN' },
  dataDir: { flag: 'data-dir', env: 'SATELLITE_DATA_DIR' },
  registry: { flag: 'registry', env: 'SATELLITE_REGISTRY' },
  registryListen: { flag: 'registry-listen', env: 'SATELLITE_REGISTRY_LISTEN' },
  registryUrl: { flag: 'registry-url', env: 'SATELLITE_REGISTRY_URL' },
  registryUsername: { flag: 'registry-username', env: 'SATELLITE_REGISTRY_USERNAME' },
  registryPassword: { flag: 'registry-password', env: 'SATELLITE_REGISTRY_PASSWORD' },
  caFile: { flag: 'ca-file', env: 'SATELLITE_CA_FILE' },
  insecure: { flag: 'insecure', env: 'SATELLITE_INSECURE' },
  logLevel: { flag: 'log-level', env: 'SATELLITE_LOG_LEVEL' },
  metricsListen: { flag: 'metrics-listen', env: 'SATELLITE_METRICS_LISTEN' },
  shutdownTimeoutSeconds: {
    flag: 'shutdown-timeout-seconds',
    env: 'SATELLITE_SHUTDOWN_TIMEOUT_SECONDS',
  },
  minFreeBytes: { flag: 'min-free-bytes', env: 'SATELLITE_MIN_FREE_BYTES' },
} as const;

export type SettingName = keyof typeof SETTING_SOURCES;

/** Settings that hold secrets: never echoed, not even in validation errors. */
const SECRET_SETTINGS: ReadonlySet<SettingName> = new Set(['token', 'registryPassword']);

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

const listenAddress = z
  .string()
  .regex(/^[^\s:]+:\d{1,5}$|^\[[0-9a-fA-F:]+\]:\d{1,5}$/, 'must be HOST:PORT')
  .refine((value) => Number(value.slice(value.lastIndexOf(':') + 1)) <= 65535, 'port above 65535');

const httpUrl = z
  .url({ protocol: /^https?$/, error: 'must be an http:// or https:// URL' })
  .transform((value) => value.replace(/\/+$/, ''));

const booleanText = z
  .union([z.boolean(), z.enum(['true', 'false', '1', '0', 'yes', 'no'])])
  .transform((value) => value === true || value === 'true' || value === '1' || value === 'yes');

const integerText = (min: number) =>
  z
    .union([z.number(), z.string().regex(/^\d+$/, 'must be a whole number')])
    .transform(Number)
    .pipe(z.number().int().min(min));

/** Default free space kept on the data folder's file system: 512 MiB, room for logs and the OS. */
export const DEFAULT_MIN_FREE_BYTES = 512 * 1024 * 1024;

/** Default time for SIGTERM handling: checkpoint, last status, exit. Kubernetes allows 30 s. */
export const DEFAULT_SHUTDOWN_TIMEOUT_SECONDS = 25;

const settingsSchema = z
  .object({
    groundControlUrl: httpUrl.optional(),
    token: z.string().min(1, 'must not be empty').optional(),
    dataDir: z.string().min(1).default('./data/satellite'),
    registry: z.enum(['embedded', 'external']).default('embedded'),
    registryListen: listenAddress.default('0.0.0.0:5050'),
    registryUrl: httpUrl.optional(),
    registryUsername: z.string().min(1).optional(),
    registryPassword: z.string().min(1).optional(),
    caFile: z.string().min(1).optional(),
    insecure: booleanText.default(false),
    logLevel: z.enum(LOG_LEVELS).optional(),
    metricsListen: listenAddress.default('127.0.0.1:9105'),
    shutdownTimeoutSeconds: integerText(1).default(DEFAULT_SHUTDOWN_TIMEOUT_SECONDS),
    minFreeBytes: integerText(0).default(DEFAULT_MIN_FREE_BYTES),
  })
  .superRefine((value, context) => {
    if (value.registry === 'external' && !value.registryUrl) {
      context.addIssue({
        code: 'custom',
        path: ['registryUrl'],
        message: 'is required when the registry is external',
      });
    }
    if ((value.registryUsername === undefined) !== (value.registryPassword === undefined)) {
      context.addIssue({
        code: 'custom',
        path: ['registryPassword'],
        message: 'registry username and password must be given together',
      });
    }
  });

export type Settings = Readonly<
  Omit<z.output<typeof settingsSchema>, 'dataDir'> & { dataDir: string }
>;

/** Setting values as given, before validation. */
type RawSettings = Partial<Record<SettingName, unknown>>;

const configFileSchema = z.strictObject(
  Object.fromEntries(
    Object.keys(SETTING_SOURCES).map((name) => [name, z.unknown().optional()]),
  ) as Record<SettingName, z.ZodOptional<z.ZodUnknown>>,
);

/**
 * Merges flags, environment and the optional config file (JSON, camelCase keys as in
 * `SETTING_SOURCES`), validates the result and freezes it. Errors name the setting and its flag
 * and variable, never the value.
 */
export async function loadSettings(input: {
  flags: RawSettings;
  env: NodeJS.ProcessEnv;
  configFile?: string;
}): Promise<Settings> {
  const fromFile = input.configFile ? await readConfigFile(input.configFile) : {};
  const merged: RawSettings = {};
  for (const name of Object.keys(SETTING_SOURCES) as SettingName[]) {
    const envValue = input.env[SETTING_SOURCES[name].env];
    const value = input.flags[name] ?? (envValue === '' ? undefined : envValue) ?? fromFile[name];
    if (value !== undefined) merged[name] = value;
  }
  const parsed = settingsSchema.safeParse(merged);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => {
      const name = String(issue.path[0] ?? 'settings') as SettingName;
      return `${describeSetting(name)}: ${issue.message}`;
    });
    throw new SatelliteError(
      'SETTINGS_INVALID',
      `Invalid settings: ${problems.join('; ')}. Fix the flag, environment variable or config file key and start again.`,
    );
  }
  return Object.freeze({ ...parsed.data, dataDir: resolve(parsed.data.dataDir) });
}

export function describeSetting(name: string): string {
  const source = SETTING_SOURCES[name as SettingName];
  if (!source) return name;
  return `${name} (--${source.flag} / ${source.env})`;
}

export function isSecretSetting(name: SettingName): boolean {
  return SECRET_SETTINGS.has(name);
}

async function readConfigFile(path: string): Promise<RawSettings> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw new SatelliteError(
      'CONFIG_FILE_INVALID',
      `Cannot read the config file ${path} given by --config: ${(error as Error).message}. Check the path and its permissions.`,
      { cause: error },
    );
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new SatelliteError(
      'CONFIG_FILE_INVALID',
      `The config file ${path} is not valid JSON. Write one JSON object with camelCase setting names.`,
    );
  }
  const parsed = configFileSchema.safeParse(json);
  if (!parsed.success) {
    const keys = parsed.error.issues.map((issue) =>
      issue.code === 'unrecognized_keys' ? issue.keys.join(', ') : issue.path.join('.') || 'root',
    );
    throw new SatelliteError(
      'CONFIG_FILE_INVALID',
      `The config file ${path} has invalid or unknown keys: ${keys.join('; ')}. Allowed keys: ${Object.keys(SETTING_SOURCES).join(', ')}.`,
    );
  }
  return parsed.data;
}

/** Splits `HOST:PORT` (or `[v6]:PORT`) into its parts. */
export function parseListenAddress(value: string): { host: string; port: number } {
  const index = value.lastIndexOf(':');
  const host = value.slice(0, index).replace(/^\[|\]$/g, '');
  return { host, port: Number(value.slice(index + 1)) };
}
