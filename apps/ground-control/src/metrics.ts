import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** Prometheus metrics of one Ground Control process, on a registry of its own. */
export class Metrics {
  readonly registry = new Registry();
  readonly httpRequests = new Counter({
    name: 'gc_http_requests_total',
    help: 'HTTP responses sent, by method, route and status code',
    labelNames: ['method', 'route', 'status'] as const,
    registers: [this.registry],
  });
  readonly httpDuration = new Histogram({
    name: 'gc_http_request_duration_seconds',
    help: 'HTTP request duration in seconds, by route',
    labelNames: ['route'] as const,
    buckets: [0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30, 60],
    registers: [this.registry],
  });
  readonly longPolls = new Gauge({
    name: 'gc_state_long_polls',
    help: 'State requests currently waiting for a revision change',
    registers: [this.registry],
  });
  readonly joins = new Counter({
    name: 'gc_satellite_joins_total',
    help: 'Satellite join attempts, by result code',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });
  readonly statusReports = new Counter({
    name: 'gc_status_reports_total',
    help: 'Status reports received from satellites',
    registers: [this.registry],
  });
  readonly resolutions = new Counter({
    name: 'gc_resolutions_total',
    help: 'Selection resolutions, by result (ok or error)',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'gc_' });
  }
}
