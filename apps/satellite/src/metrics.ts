import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { StatusTracker } from './status-tracker.js';

/** Prometheus metrics of the satellite, in a registry of its own that /metrics serves. */
export class SatelliteMetrics {
  readonly registry = new Registry();
  readonly bytesDownloaded: Counter;
  readonly reconcileDuration: Histogram;
  readonly groundControlReachable: Gauge;

  constructor(status: StatusTracker) {
    this.bytesDownloaded = new Counter({
      name: 'satellite_downloaded_bytes_total',
      help: 'Blob bytes downloaded from upstream registries.',
      registers: [this.registry],
    });
    this.reconcileDuration = new Histogram({
      name: 'satellite_reconcile_duration_seconds',
      help: 'Duration of one reconcile of the desired state.',
      buckets: [0.05, 0.25, 1, 5, 15, 60, 300, 1800],
      registers: [this.registry],
    });
    this.groundControlReachable = new Gauge({
      name: 'satellite_ground_control_reachable',
      help: '1 when the last request to Ground Control got an answer, 0 when it failed.',
      registers: [this.registry],
    });
    new Gauge({
      name: 'satellite_artifacts',
      help: 'Desired artifacts by state (present, pending, failed).',
      labelNames: ['state'],
      registers: [this.registry],
      collect() {
        const counts = { present: 0, pending: 0, failed: 0 };
        for (const artifact of status.artifacts()) counts[artifact.state] += 1;
        for (const [state, count] of Object.entries(counts)) this.set({ state }, count);
      },
    });
    new Gauge({
      name: 'satellite_revoked',
      help: '1 when Ground Control revoked this satellite.',
      registers: [this.registry],
      collect() {
        this.set(status.revoked ? 1 : 0);
      },
    });
  }
}
