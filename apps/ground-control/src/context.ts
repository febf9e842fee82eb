import type { Logger } from 'pino';
import type { Config } from './config.js';
import type { SecretBox } from './crypto/secrets.js';
import type { Database, Db } from './db/database.js';
import type { LastSeenRecorder } from './domain/last-seen.js';
import type { ReportTimes } from './domain/report-times.js';
import type { StateService } from './domain/state-service.js';
import type { StateWaiters } from './domain/state-waiters.js';
import type { SatelliteAuthenticator } from './auth/satellite.js';
import type { UpstreamClient } from './upstream/client.js';
import type { HarborCredentials } from './domain/harbor-credentials.js';
import type { Metrics } from './metrics.js';

/** Services shared by the routes and jobs of one Ground Control process. */
export interface AppContext {
  readonly config: Config;
  readonly database: Database;
  readonly db: Db;
  readonly secrets: SecretBox;
  readonly logger: Logger;
  readonly waiters: StateWaiters;
  readonly states: StateService;
  readonly lastSeen: LastSeenRecorder;
  /** Digests of stored reports and pending receipt times of unchanged ones. */
  readonly reportTimes: ReportTimes;
  readonly satelliteAuth: SatelliteAuthenticator;
  readonly upstream: UpstreamClient;
  readonly harbor: HarborCredentials;
  readonly metrics: Metrics;
  /** Milliseconds since the epoch; replaceable so tests can move the clock. */
  now(): number;
}
