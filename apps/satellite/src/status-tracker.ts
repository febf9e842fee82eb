import { EventEmitter } from 'node:events';
import {
  PROTOCOL_VERSION,
  STATUS_MAX_ARTIFACTS,
  STATUS_MAX_ERRORS,
  STATUS_MESSAGE_MAX_LENGTH,
} from '@edge/contract';
import type { ArtifactState, SatellitePhase, StatusError, StatusReport } from '@edge/contract';
import { writeJsonAtomic } from './atomic-file.js';
import { SATELLITE_VERSION } from './version.js';

export interface ArtifactProgress {
  localRepository: string;
  tag: string | null;
  digest: string;
  state: ArtifactState;
  reason?: string;
  bytesDone: number;
  bytesTotal: number;
  /** True while the artifact waits for a sync window. */
  waitingForWindow?: boolean;
}

/** Local status that `satellite status` prints, written to the data folder's status.json. */
export interface LocalStatus {
  updatedAt: string;
  pid: number;
  version: string;
  phase: SatellitePhase;
  appliedRevision: number;
  desiredRevision: number | null;
  revoked: boolean;
  groundControl: {
    reachable: boolean | null;
    lastContactAt: string | null;
    lastError: string | null;
  };
  registry: { kind: string; url: string | null };
  storage: { usedBytes: number; freeBytes: number };
  artifacts: ArtifactProgress[];
  errors: StatusError[];
}

/** Minimum pause between two writes of status.json, in ms, so progress updates stay cheap. */
const STATUS_FILE_WRITE_INTERVAL_MS = 500;

export function artifactKey(localRepository: string, tag: string | null, digest: string): string {
  return `${localRepository}:${tag ?? ''}@${digest}`;
}

/**
 * Current state of every desired artifact plus the satellite-wide facts. Emits `change` when
 * something a status report carries changes (not on byte progress alone), and writes
 * status.json at most every half second.
 */
export class StatusTracker extends EventEmitter<{ change: [] }> {
  readonly #artifacts = new Map<string, ArtifactProgress>();
  #errors = new Map<string, StatusError>();
  #appliedRevision = 0;
  #desiredRevision: number | null = null;
  #revoked = false;
  #groundControl: LocalStatus['groundControl'] = {
    reachable: null,
    lastContactAt: null,
    lastError: null,
  };
  #storage = { usedBytes: 0, freeBytes: 0 };
  #writeTimer: NodeJS.Timeout | undefined;
  #lastWrite: Promise<void> = Promise.resolve();

  constructor(
    private readonly statusFile: string,
    private registry: LocalStatus['registry'],
  ) {
    super();
  }

  setRegistryUrl(url: string): void {
    this.registry = { ...this.registry, url };
    this.#changed(false);
  }

  /** Replaces the set of desired artifacts, keeping the progress of those that stay. */
  setDesired(revision: number, entries: Omit<ArtifactProgress, 'state' | 'bytesDone'>[]): void {
    this.#desiredRevision = revision;
    const next = new Map<string, ArtifactProgress>();
    for (const entry of entries) {
      const key = artifactKey(entry.localRepository, entry.tag, entry.digest);
      next.set(key, this.#artifacts.get(key) ?? { ...entry, state: 'pending', bytesDone: 0 });
    }
    this.#artifacts.clear();
    for (const [key, value] of next) this.#artifacts.set(key, value);
    this.#changed(true);
  }

  update(key: string, patch: Partial<ArtifactProgress>): void {
    const current = this.#artifacts.get(key);
    if (!current) return;
    const significant =
      (patch.state !== undefined && patch.state !== current.state) ||
      (patch.reason !== undefined && patch.reason !== current.reason) ||
      (patch.waitingForWindow !== undefined && patch.waitingForWindow !== current.waitingForWindow);
    const next: ArtifactProgress = { ...current, ...patch };
    if (patch.state === 'present' && patch.reason === undefined) delete next.reason;
    this.#artifacts.set(key, next);
    this.#changed(significant);
  }

  get(key: string): ArtifactProgress | undefined {
    return this.#artifacts.get(key);
  }

  artifacts(): ArtifactProgress[] {
    return [...this.#artifacts.values()];
  }

  setAppliedRevision(revision: number): void {
    if (revision === this.#appliedRevision) return;
    this.#appliedRevision = revision;
    this.#changed(true);
  }

  get appliedRevision(): number {
    return this.#appliedRevision;
  }

  setRevoked(revoked: boolean): void {
    if (revoked === this.#revoked) return;
    this.#revoked = revoked;
    this.#changed(true);
  }

  get revoked(): boolean {
    return this.#revoked;
  }

  setGroundControl(reachable: boolean, error?: string): void {
    const previous = this.#groundControl.reachable;
    this.#groundControl = {
      reachable,
      lastContactAt: reachable ? new Date().toISOString() : this.#groundControl.lastContactAt,
      lastError: reachable ? null : (error ?? null),
    };
    this.#changed(previous !== reachable);
  }

  /** Sets or clears (message undefined) a satellite-wide error. */
  setError(code: string, message: string | undefined): void {
    const had = this.#errors.get(code)?.message;
    if (message === undefined) this.#errors.delete(code);
    else this.#errors.set(code, { code, message: message.slice(0, STATUS_MESSAGE_MAX_LENGTH) });
    this.#changed(had !== message);
  }

  setStorage(storage: { usedBytes: number; freeBytes: number }): void {
    this.#storage = storage;
    this.#changed(false);
  }

  phase(): SatellitePhase {
    if (this.#revoked) return 'revoked';
    const all = this.artifacts();
    if (all.some((artifact) => artifact.state === 'failed')) return 'failed';
    if (all.some((artifact) => artifact.waitingForWindow)) return 'waiting-for-window';
    if (all.some((artifact) => artifact.state === 'pending')) return 'syncing';
    return 'in-sync';
  }

  snapshot(): LocalStatus {
    return {
      updatedAt: new Date().toISOString(),
      pid: process.pid,
      version: SATELLITE_VERSION,
      phase: this.phase(),
      appliedRevision: this.#appliedRevision,
      desiredRevision: this.#desiredRevision,
      revoked: this.#revoked,
      groundControl: this.#groundControl,
      registry: this.registry,
      storage: this.#storage,
      artifacts: this.artifacts(),
      errors: [...this.#errors.values()],
    };
  }

  /** Builds the status report for Ground Control, within the contract's size limits. */
  report(): StatusReport {
    return {
      protocolVersion: PROTOCOL_VERSION,
      appliedRevision: this.#appliedRevision,
      phase: this.phase(),
      artifacts: this.artifacts()
        .slice(0, STATUS_MAX_ARTIFACTS)
        .map((artifact) => ({
          localRepository: artifact.localRepository,
          tag: artifact.tag,
          digest: artifact.digest,
          state: artifact.state,
          ...(artifact.reason
            ? { reason: artifact.reason.slice(0, STATUS_MESSAGE_MAX_LENGTH) }
            : {}),
          bytesDone: Math.min(
            artifact.bytesDone,
            Math.max(artifact.bytesTotal, artifact.bytesDone),
          ),
          bytesTotal: artifact.bytesTotal,
        })),
      storage: this.#storage,
      version: SATELLITE_VERSION,
      errors: [...this.#errors.values()].slice(0, STATUS_MAX_ERRORS),
    };
  }

  /** Writes status.json now and waits for it. */
  async flush(): Promise<void> {
    if (this.#writeTimer) clearTimeout(this.#writeTimer);
    this.#writeTimer = undefined;
    const write = this.#lastWrite.then(() => writeJsonAtomic(this.statusFile, this.snapshot()));
    this.#lastWrite = write.catch(() => undefined);
    await write;
  }

  #changed(significant: boolean): void {
    if (significant) this.emit('change');
    if (this.#writeTimer) return;
    this.#writeTimer = setTimeout(() => {
      this.#writeTimer = undefined;
      this.flush().catch(() => undefined);
    }, STATUS_FILE_WRITE_INTERVAL_MS);
    this.#writeTimer.unref();
  }
}
