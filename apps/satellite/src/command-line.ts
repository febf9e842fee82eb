import { parseArgs } from 'node:util';
import { SatelliteError } from './errors.js';
import { SETTING_SOURCES } from './settings.js';
import type { SettingName } from './settings.js';

export type CommandName = 'run' | 'status' | 'sync' | 'version' | 'help';

export interface CommandLine {
  command: CommandName;
  flags: Partial<Record<SettingName, string | boolean>>;
  configFile?: string;
  once: boolean;
  json: boolean;
}

const COMMANDS: readonly CommandName[] = ['run', 'status', 'sync', 'version', 'help'];

export const USAGE = `Usage: satellite <command> [flags]

Commands:
  run             Join Ground Control (first start), then keep the desired state in place.
  status          Print what is present, pending and failed, read from the data folder.
  sync --once     Run one reconcile, then exit (status 0 when everything is present).
  version         Print the version.

Flags (each also has an environment variable; see the README's settings table):
  --config FILE                 JSON file with settings (camelCase keys)
  --ground-control-url URL      Ground Control base URL
  --token TOKEN                 join token, used on the first start only
  --data-dir DIR                data folder (default ./data/satellite)
  --registry KIND               embedded | external (default embedded)
  --registry-listen HOST:PORT   embedded registry address (default 0.0.0.0:5050)
  --registry-url URL            external registry URL
  --registry-username NAME      external registry user
  --registry-password PASSWORD  external registry password
  --ca-file FILE                extra CA bundle (PEM) for Ground Control and registries
  --insecure                    skip TLS certificate verification
  --log-level LEVEL             fatal | error | warn | info | debug | trace | silent
  --metrics-listen HOST:PORT    /healthz, /readyz and /metrics (default 127.0.0.1:9105)
  --shutdown-timeout-seconds N  time allowed for SIGTERM handling (default 25)
  --min-free-bytes N            free disk space to keep on the data folder (default 536870912)
  --json                        status: print JSON
`;

/** Parses `argv` (without node and script) into a command, its setting flags and options. */
export function parseCommandLine(argv: readonly string[]): CommandLine {
  const options: Record<string, { type: 'string' | 'boolean' }> = {
    config: { type: 'string' },
    once: { type: 'boolean' },
    json: { type: 'boolean' },
    help: { type: 'boolean' },
  };
  for (const source of Object.values(SETTING_SOURCES)) {
    options[source.flag] = { type: source.flag === 'insecure' ? 'boolean' : 'string' };
  }
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({ args: [...argv], options, allowPositionals: true, strict: true });
  } catch (error) {
    throw new SatelliteError(
      'SETTINGS_INVALID',
      `Invalid command line: ${(error as Error).message}. Run "satellite help" for the flags.`,
    );
  }
  const [first, ...rest] = parsed.positionals;
  const command = (parsed.values.help ? 'help' : (first ?? 'help')) as CommandName;
  if (!COMMANDS.includes(command)) {
    throw new SatelliteError(
      'SETTINGS_INVALID',
      `Unknown command "${first}". Use one of: ${COMMANDS.join(', ')}.`,
    );
  }
  if (rest.length > 0) {
    throw new SatelliteError(
      'SETTINGS_INVALID',
      `Unexpected argument "${rest[0]}" after the command. Flags start with --.`,
    );
  }
  const once = parsed.values.once === true;
  if (command === 'sync' && !once) {
    throw new SatelliteError(
      'SETTINGS_INVALID',
      'The sync command needs --once (a continuous sync is "satellite run").',
    );
  }
  const flags: CommandLine['flags'] = {};
  for (const [name, source] of Object.entries(SETTING_SOURCES) as [
    SettingName,
    (typeof SETTING_SOURCES)[SettingName],
  ][]) {
    const value = parsed.values[source.flag];
    if (typeof value === 'string' || typeof value === 'boolean') flags[name] = value;
  }
  const configFile = parsed.values.config;
  return {
    command,
    flags,
    ...(typeof configFile === 'string' ? { configFile } : {}),
    once,
    json: parsed.values.json === true,
  };
}
