export { buildApp, createLogger, GROUND_CONTROL_VERSION, REDACTED_LOG_PATHS } from './app.js';
export type { BuildOptions } from './app.js';
export { loadConfig, ConfigError, type Config } from './config.js';
export {
  openDatabase,
  openPglite,
  migratePostgres,
  MIGRATIONS_FOLDER,
  type Database,
} from './db/database.js';
export type { AppContext } from './context.js';
