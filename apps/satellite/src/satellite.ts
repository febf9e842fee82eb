import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { DEFAULT_SATELLITE_CONFIG } from '@edge/contract';
import type { DesiredState, SatelliteConfig } from '@edge/contract';
import type { Logger } from 'pino';
import { readJsonFile, writeJsonAtomic } from './atomic-file.js';
import { GROUND_CONTROL_BACKOFF, backoffDelayMs } from './backoff.js';
import { ClockOffset } from './clock.js';
import { dataDirLayout } from './data-dir.js';
import type { DataDirLayout } from './data-dir.js';
import { loadDesiredState, saveDesiredState } from './desired-state-file.js';
import { checkDiskSpace, freeBytes } from './disk-space.js';
import { SatelliteError, errorCode, errorMessage, isSatelliteError } from './errors.js';
import { GroundControlClient } from './ground-control-client.js';
import { startHealthServer } from './health-server.js';
import { DispatcherCache } from './http-dispatcher.js';
import type { TlsOptions } from './http-dispatcher.js';
import { ensureIdentity } from './join.js';
import { BandwidthLimiter, Semaphore } from './limits.js';
import { SatelliteMetrics } from './metrics.js';
import { PlacementStore } from './placements.js';
import { EmbeddedRegistry } from './reconcile/embedded-registry.js';
import { ExternalRegistry } from './reconcile/external-registry.js';
import type { LocalRegistry } from './reconcile/ports.js';
import { Reconciler } from './reconcile/reconciler.js';
import type { ReconcileResult } from './reconcile/reconciler.js';
import { removeUnassigned } from './reconcile/removal.js';
import { UpstreamPool } from './reconcile/upstream-pool.js';
import { parseListenAddress } from './settings.js';
import type { Settings } from './settings.js';
import { StatusTracker } from './status-tracker.js';
import { isInsideSyncWindows } from './sync-windows.js';
import { Wakeup, sleep } from './wakeup.js';

/** Pause between re-checks while waiting for a sync window, in ms. */
const WINDOW_RECHECK_MS = 30_000;
/** Interval of a full re-check of the local registry when nothing else happens, in ms. */
const VERIFY_INTERVAL_MS = 5 * 60_000;
/** Delay that gathers several status changes into one report, in ms. */
const STATUS_DEBOUNCE_MS = 1_000;
/** Time allowed for the last status report during shutdown, in ms. */
const FINAL_STATUS_TIMEOUT_MS = 5_000;

/** Config document fields this version applies; newer Ground Controls may send more. */
const KNOWN_CONFIG_FIELDS: ReadonlySet<string> = new Set([
  'pollIntervalSeconds',
  'heartbeatIntervalSeconds',
  'logLevel',
  'concurrency',
  'bandwidthBytesPerSecond',
  'syncWindows',
  'removalGracePeriodSeconds',
  'runtimeMirror',
]);

export interface SatelliteOptions {
  settings: Settings;
  logger: Logger;
  env?: NodeJS.ProcessEnv;
}

/**
 * The satellite daemon: joins Ground Control, long-polls the desired state, reconciles the
 * local registry, reports status, serves health and metrics, and shuts down in phases.
 */
export class Satellite {
  readonly layout: DataDirLayout;
  readonly status: StatusTracker;
  readonly #settings: Settings;
  readonly #logger: Logger;
  readonly #dispatchers: DispatcherCache;
  readonly #clock = new ClockOffset();
  readonly #stop = new AbortController();
  readonly #reconcileWakeup = new Wakeup();
  readonly #blobSemaphore = new Semaphore(DEFAULT_SATELLITE_CONFIG.concurrency);
  readonly #bandwidth = new BandwidthLimiter(null);
  #client!: GroundControlClient;
  #local!: LocalRegistry;
  #placements!: PlacementStore;
  #upstreams!: UpstreamPool;
  #reconciler!: Reconciler;
  #metrics!: SatelliteMetrics;
  #state: DesiredState | undefined;
  #etag: string | undefined;
  #config: SatelliteConfig = DEFAULT_SATELLITE_CONFIG;
  #reconcileAbort = new AbortController();
  #gcPending = false;
  #loops: Promise<void>[] = [];
  #closers: (() => Promise<void>)[] = [];
  #statusTimer: NodeJS.Timeout | undefined;
  #heartbeatTimer: NodeJS.Timeout | undefined;
  #windowsError: string | undefined;
  #groundControlUrl = '';
  #nextRemovalAt: number | null = null;

  constructor(options: SatelliteOptions) {
    this.#settings = options.settings;
    this.#logger = options.logger;
    this.layout = dataDirLayout(options.settings.dataDir);
    this.#dispatchers = new DispatcherCache(options.env ?? process.env);
    this.status = new StatusTracker(this.layout.statusFile, {
      kind: options.settings.registry,
      url: options.settings.registry === 'external' ? (options.settings.registryUrl ?? null) : null,
    });
  }

  get stopping(): boolean {
    return this.#stop.signal.aborted;
  }

  /** Opens the data folder, the local registry and the identity; shared by run and sync --once. */
  async open(mode: 'run' | 'once'): Promise<void> {
    await mkdir(this.layout.root, { recursive: true });
    await mkdir(this.layout.partialsDir, { recursive: true });
    await this.#acquireLock(mode);
    const settings = this.#settings;
    const tls: TlsOptions = {
      ...(settings.caFile ? { ca: await readFile(settings.caFile, 'utf8') } : {}),
      insecure: settings.insecure,
    };
    this.#placements = await PlacementStore.open(this.layout);
    this.#metrics = new SatelliteMetrics(this.status);
    this.#upstreams = new UpstreamPool({
      dispatchers: this.#dispatchers,
      bandwidth: this.#bandwidth,
      logger: this.#logger,
    });
    if (settings.registry === 'embedded') {
      const embedded = await EmbeddedRegistry.open(this.layout.storeDir);
      this.#local = embedded;
      if (mode === 'run') {
        const url = await embedded.listen(
          parseListenAddress(settings.registryListen),
          this.#logger,
          this.#metrics.registry,
        );
        this.status.setRegistryUrl(url);
        this.#logger.info({ url }, 'embedded registry listening');
      }
    } else {
      this.#local = new ExternalRegistry({
        url: settings.registryUrl ?? '',
        ...(settings.registryUsername && settings.registryPassword
          ? {
              credentials: {
                username: settings.registryUsername,
                password: settings.registryPassword,
              },
            }
          : {}),
        dispatcher: this.#dispatchers.get(tls),
      });
    }
    this.#closers.push(() => this.#local.close());
    this.#reconciler = new Reconciler({
      local: this.#local,
      upstream: (id) => this.#upstreams.get(id),
      partialDir: this.layout.partialsDir,
      blobSemaphore: this.#blobSemaphore,
      status: this.status,
      placements: this.#placements,
      logger: this.#logger,
      mayStartTransfer: () => this.#mayStartTransfer(),
      checkDiskSpace: (bytes) => checkDiskSpace(this.layout.root, bytes, settings.minFreeBytes),
      onBytesDownloaded: (bytes) => this.#metrics.bytesDownloaded.inc(bytes),
    });

    if (await this.#readRevokedMarker()) this.status.setRevoked(true);
    const stored = await loadDesiredState(this.layout);
    if (stored) {
      this.#etag = stored.etag;
      this.#applyState(stored.state, 'stored');
    }
    const identityUrl = (await readJsonFile(this.layout.identityFile).catch(() => undefined)) as
      { groundControlUrl?: string } | undefined;
    const groundControlUrl = settings.groundControlUrl ?? identityUrl?.groundControlUrl;
    if (!groundControlUrl) {
      throw new SatelliteError(
        'SETTINGS_INVALID',
        'Invalid settings: groundControlUrl (--ground-control-url / SATELLITE_GROUND_CONTROL_URL) is required before the first join.',
      );
    }
    this.#groundControlUrl = groundControlUrl;
    this.#client = new GroundControlClient({
      baseUrl: groundControlUrl,
      dispatcher: this.#dispatchers.get(tls),
      clock: this.#clock,
    });
  }

  /** Starts the daemon loops; resolves once everything listens. */
  async run(): Promise<void> {
    await this.open('run');
    const health = await startHealthServer({
      listen: parseListenAddress(this.#settings.metricsListen),
      metrics: [this.#metrics.registry],
      ready: () => this.#readiness(),
    });
    this.#closers.push(() => health.app.close());
    await writeJsonAtomic(this.layout.runtimeFile, {
      pid: process.pid,
      startedAt: new Date().toISOString(),
      registryUrl: this.#local.url,
      metricsUrl: health.url,
    });
    this.#logger.info(
      { registryUrl: this.#local.url, metricsUrl: health.url, dataDir: this.layout.root },
      'satellite started',
    );
    await this.#joinWithRetry();
    if (this.stopping) return;
    this.status.on('change', () => this.#scheduleStatus());
    this.#scheduleHeartbeat();
    this.#loops.push(this.#pollLoop(), this.#reconcileLoop());
  }

  /** Runs one reconcile with a fresh desired state (or the stored one while offline). */
  async syncOnce(): Promise<ReconcileResult> {
    await this.open('once');
    await this.#ensureIdentity();
    await this.#fetchStateOnce();
    if (!this.#state) {
      throw new SatelliteError(
        'GROUND_CONTROL_UNREACHABLE',
        'No desired state: Ground Control did not answer and none is stored in the data folder. Check the Ground Control URL and the network.',
      );
    }
    if (this.status.revoked) {
      await this.status.flush();
      throw new SatelliteError(
        'SATELLITE_REVOKED',
        'Ground Control revoked this satellite, so sync --once copies nothing. The local registry keeps what is present; create a new satellite to sync again.',
      );
    }
    const result = await this.#reconcileOnce(this.#state);
    await this.#refreshStorage();
    await this.#postStatus();
    return result;
  }

  /** Releases what `open` acquired; for `sync --once`, whose work has ended. */
  async close(): Promise<void> {
    for (const close of this.#closers.reverse()) await close().catch(() => undefined);
    this.#closers = [];
    await this.status.flush().catch(() => undefined);
    await this.#dispatchers.close().catch(() => undefined);
  }

  /**
   * Stops in phases: no new transfers (downloads abort and keep their partial files), wait for
   * the reconcile to settle, send a last status, close servers. Bounded by `timeoutMs`.
   */
  async shutdown(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    this.#logger.info({ timeoutMs }, 'shutdown: stopping transfers');
    this.#stop.abort();
    this.#reconcileAbort.abort();
    clearTimeout(this.#statusTimer);
    clearTimeout(this.#heartbeatTimer);
    await withTimeout(
      Promise.allSettled(this.#loops),
      Math.max(0, deadline - Date.now() - FINAL_STATUS_TIMEOUT_MS),
    );
    this.#logger.info('shutdown: sending the last status');
    if (this.#client) {
      await withTimeout(
        this.#refreshStorage().then(() => this.#postStatus()),
        Math.min(FINAL_STATUS_TIMEOUT_MS, Math.max(0, deadline - Date.now())),
      );
    }
    this.#logger.info('shutdown: closing servers');
    for (const close of this.#closers.reverse()) {
      await withTimeout(
        close().catch(() => undefined),
        Math.max(0, deadline - Date.now()),
      );
    }
    await this.status.flush().catch(() => undefined);
    await this.#upstreams?.close();
    await this.#dispatchers.close().catch(() => undefined);
    await rm(this.layout.runtimeFile, { force: true }).catch(() => undefined);
    this.#logger.info('shutdown complete');
  }

  // ---- Ground Control

  async #ensureIdentity(): Promise<void> {
    await ensureIdentity({
      layout: this.layout,
      client: this.#client,
      groundControlUrl: this.#groundControlUrl,
      token: this.#settings.token,
      logger: this.#logger,
    });
  }

  async #joinWithRetry(): Promise<void> {
    for (let attempt = 1; !this.stopping; attempt += 1) {
      try {
        await this.#ensureIdentity();
        return;
      } catch (error) {
        if (!isSatelliteError(error, 'GROUND_CONTROL_UNREACHABLE')) throw error;
        this.#markUnreachable(error);
        await sleep(backoffDelayMs(GROUND_CONTROL_BACKOFF, attempt), this.#stop.signal);
      }
    }
  }

  async #fetchStateOnce(): Promise<void> {
    try {
      const result = await this.#client.getState({ etag: undefined, waitSeconds: 0 });
      this.#markReachable();
      if (result.changed) await this.#receiveState(result.state, result.etag);
    } catch (error) {
      if (isSatelliteError(error, 'SATELLITE_REVOKED')) await this.#setRevoked(true);
      else this.#markUnreachable(error);
      if (
        !isSatelliteError(error, 'GROUND_CONTROL_UNREACHABLE') &&
        !isSatelliteError(error, 'SATELLITE_REVOKED')
      ) {
        throw error;
      }
    }
  }

  async #pollLoop(): Promise<void> {
    let failures = 0;
    while (!this.stopping) {
      try {
        const result = await this.#client.getState({
          etag: this.#etag,
          waitSeconds: this.#config.pollIntervalSeconds,
          signal: this.#stop.signal,
        });
        failures = 0;
        this.#markReachable();
        if (this.status.revoked) await this.#setRevoked(false);
        if (result.changed) await this.#receiveState(result.state, result.etag);
        else this.#etag = result.etag;
      } catch (error) {
        if (this.stopping) return;
        if (isSatelliteError(error, 'SATELLITE_REVOKED')) {
          this.#markReachable();
          await this.#setRevoked(true);
          await sleep(this.#config.pollIntervalSeconds * 1000, this.#stop.signal);
          continue;
        }
        failures += 1;
        this.#markUnreachable(error);
        await sleep(backoffDelayMs(GROUND_CONTROL_BACKOFF, failures), this.#stop.signal);
      }
    }
  }

  async #receiveState(state: DesiredState, etag: string | undefined): Promise<void> {
    await saveDesiredState(this.layout, state, etag);
    this.#etag = etag;
    this.#applyState(state, 'ground-control');
    this.#reconcileWakeup.notify();
  }

  #applyState(state: DesiredState, source: 'stored' | 'ground-control'): void {
    const previous = this.#state;
    this.#state = state;
    this.#upstreams.update(state.upstreams);
    this.#applyConfig(state.config, previous?.config);
    this.#logger.info(
      { revision: state.revision, artifacts: state.artifacts.length, source },
      'desired state applied',
    );
  }

  /** Applies the config document without restart; every field of it is live. */
  #applyConfig(config: SatelliteConfig, previous: SatelliteConfig | undefined): void {
    this.#config = config;
    if (!this.#settings.logLevel) this.#logger.level = config.logLevel;
    this.#blobSemaphore.setLimit(config.concurrency);
    this.#bandwidth.setRate(config.bandwidthBytesPerSecond);
    try {
      isInsideSyncWindows(config.syncWindows, new Date());
      this.#windowsError = undefined;
      this.status.setError('CONFIG_INVALID', undefined);
    } catch (error) {
      this.#windowsError = errorMessage(error);
      this.status.setError(
        'CONFIG_INVALID',
        `Sync windows are invalid (${this.#windowsError}); copying is paused until Ground Control sends valid windows.`,
      );
    }
    const unknown = Object.keys(config).filter((key) => !KNOWN_CONFIG_FIELDS.has(key));
    if (unknown.length > 0) {
      this.#logger.info(
        { fields: unknown },
        'config fields unknown to this satellite version are ignored; upgrade the satellite to use them',
      );
    }
    if (previous && JSON.stringify(previous) !== JSON.stringify(config)) {
      this.#logger.info({ config }, 'config changed; applied without restart');
    }
    if (config.runtimeMirror) {
      this.#logger.debug(
        'runtimeMirror is not applied by the daemon: runtime mirror files are written by the operator or the deployment',
      );
    }
  }

  #markReachable(): void {
    if (this.status.snapshot().groundControl.reachable !== true) {
      this.#logger.info('Ground Control reachable');
    }
    this.status.setGroundControl(true);
    this.#metrics.groundControlReachable.set(1);
  }

  /** Logs once per change to unreachable, not once per failed attempt. */
  #markUnreachable(error: unknown): void {
    if (this.status.snapshot().groundControl.reachable !== false) {
      const message = isSatelliteError(error, 'GROUND_CONTROL_UNREACHABLE')
        ? 'Ground Control unreachable; serving what is present and retrying with backoff'
        : 'Ground Control rejected the request; serving what is present and retrying with backoff';
      this.#logger.warn({ err: error, code: errorCode(error) }, message);
    }
    this.status.setGroundControl(false, errorMessage(error));
    this.#metrics?.groundControlReachable.set(0);
  }

  async #setRevoked(revoked: boolean): Promise<void> {
    if (this.status.revoked === revoked) return;
    this.status.setRevoked(revoked);
    if (revoked) {
      this.#reconcileAbort.abort();
      await writeFile(this.#revokedMarker(), new Date().toISOString());
      this.#logger.error(
        'satellite revoked by Ground Control: syncing stopped; the local registry keeps serving what is present',
      );
    } else {
      await rm(this.#revokedMarker(), { force: true });
      this.#logger.info('Ground Control accepts this satellite again; syncing resumes');
      this.#reconcileWakeup.notify();
    }
  }

  #revokedMarker(): string {
    return this.layout.revokedFile;
  }

  async #readRevokedMarker(): Promise<boolean> {
    return readFile(this.#revokedMarker(), 'utf8').then(
      () => true,
      () => false,
    );
  }

  // ---- reconcile

  #mayStartTransfer(): boolean {
    if (this.stopping || this.status.revoked || this.#reconcileAbort.signal.aborted) return false;
    if (this.#windowsError) return false;
    return isInsideSyncWindows(this.#config.syncWindows, new Date());
  }

  async #reconcileLoop(): Promise<void> {
    let waitMs = 0;
    while (!this.stopping) {
      await this.#reconcileWakeup.wait(waitMs, this.#stop.signal);
      if (this.stopping) return;
      const state = this.#state;
      if (!state || this.status.revoked) {
        waitMs = Infinity;
        continue;
      }
      try {
        const result = await this.#reconcileOnce(state);
        waitMs = VERIFY_INTERVAL_MS;
        if (result.waitingForWindow > 0) waitMs = Math.min(waitMs, WINDOW_RECHECK_MS);
        for (const next of [result.nextRetryAt, this.#nextRemovalAt]) {
          if (next !== null) waitMs = Math.min(waitMs, Math.max(1_000, next - Date.now()));
        }
      } catch (error) {
        this.#logger.error({ err: error, code: errorCode(error) }, 'reconcile failed');
        this.status.setError('RECONCILE_FAILED', errorMessage(error));
        waitMs = backoffDelayMs(GROUND_CONTROL_BACKOFF, 3);
      }
      await this.#refreshStorage().catch(() => undefined);
    }
  }

  async #reconcileOnce(state: DesiredState): Promise<ReconcileResult> {
    this.#reconcileAbort = new AbortController();
    const onStop = (): void => this.#reconcileAbort.abort();
    this.#stop.signal.addEventListener('abort', onStop, { once: true });
    const endTimer = this.#metrics.reconcileDuration.startTimer();
    try {
      const result = await this.#reconciler.reconcile(state, this.#reconcileAbort.signal);
      this.status.setError('RECONCILE_FAILED', undefined);
      const removal = await removeUnassigned({
        state,
        local: this.#local,
        placements: this.#placements,
        gracePeriodMs: state.config.removalGracePeriodSeconds * 1000,
        logger: this.#logger,
        // Garbage collection runs only when nothing is half-copied, because blobs adopted for an
        // unfinished artifact have no manifest yet and would be collected.
        collect: result.pending === 0 && result.failed === 0 && result.waitingForWindow === 0,
      });
      this.#nextRemovalAt = removal.nextRemovalAt;
      if (removal.removed > 0 && removal.collected === false) this.#gcPending = true;
      if (this.#gcPending && result.pending + result.failed + result.waitingForWindow === 0) {
        await this.#local.collectGarbage();
        this.#gcPending = false;
      }
      this.#logger.info(
        { revision: state.revision, ...result, removed: removal.removed },
        'reconcile finished',
      );
      await this.status.flush();
      return result;
    } finally {
      endTimer();
      this.#stop.signal.removeEventListener('abort', onStop);
    }
  }

  async #refreshStorage(): Promise<void> {
    const [usedBytes, free] = await Promise.all([
      this.#local.usedBytes(),
      freeBytes(this.layout.root),
    ]);
    this.status.setStorage({ usedBytes, freeBytes: free });
  }

  // ---- status reports

  #scheduleStatus(): void {
    if (this.#statusTimer || this.stopping) return;
    this.#statusTimer = setTimeout(() => {
      this.#statusTimer = undefined;
      void this.#refreshStorage()
        .catch(() => undefined)
        .then(() => this.#postStatus());
    }, STATUS_DEBOUNCE_MS);
  }

  #scheduleHeartbeat(): void {
    const beat = (): void => {
      this.#heartbeatTimer = setTimeout(() => {
        void this.#refreshStorage()
          .catch(() => undefined)
          .then(() => this.#postStatus())
          .finally(() => {
            if (!this.stopping) beat();
          });
      }, this.#config.heartbeatIntervalSeconds * 1000);
    };
    // The first report goes out right away, so Ground Control records the satellite's contact at once.
    this.#scheduleStatus();
    beat();
  }

  async #postStatus(): Promise<void> {
    try {
      await this.#client.postStatus(this.status.report());
      this.#markReachable();
    } catch (error) {
      if (isSatelliteError(error, 'SATELLITE_REVOKED')) {
        await this.#setRevoked(true);
        return;
      }
      if (isSatelliteError(error, 'GROUND_CONTROL_UNREACHABLE')) {
        this.#markUnreachable(error);
        return;
      }
      this.#logger.warn({ err: error, code: errorCode(error) }, 'status report rejected');
    }
  }

  #readiness(): { ready: boolean; reason?: string } {
    if (this.#settings.registry === 'embedded' && !this.#local.url) {
      return { ready: false, reason: 'embedded registry not listening' };
    }
    return { ready: true };
  }

  // ---- data folder lock

  async #acquireLock(mode: 'run' | 'once'): Promise<void> {
    const runtime = (await readJsonFile(this.layout.runtimeFile).catch(() => undefined)) as
      { pid?: number } | undefined;
    if (runtime?.pid && runtime.pid !== process.pid && isProcessAlive(runtime.pid)) {
      throw new SatelliteError(
        'DATA_DIR_LOCKED',
        `Another satellite (pid ${runtime.pid}) is running on ${this.layout.root}. Stop it first, or use another --data-dir.`,
      );
    }
    if (mode === 'once') {
      await writeJsonAtomic(this.layout.runtimeFile, {
        pid: process.pid,
        mode,
        startedAt: new Date().toISOString(),
      });
      this.#closers.push(() => rm(this.layout.runtimeFile, { force: true }));
    }
  }
}

function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
