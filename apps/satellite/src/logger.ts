import { pino } from 'pino';
import type { Logger } from 'pino';

/** Fields never written to logs, wherever they appear in a logged object. */
const REDACTED_PATHS = [
  'token',
  'password',
  'authorization',
  '*.token',
  '*.password',
  '*.authorization',
  'credential',
  '*.credential',
  'headers.authorization',
];

/** Creates the JSON logger (pino) on stdout; `satellite` names the service in every line. */
export function createLogger(level: string): Logger {
  return pino({
    name: 'satellite',
    level,
    redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
    timestamp: pino.stdTimeFunctions.isoTime,
  });
}
