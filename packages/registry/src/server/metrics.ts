import { Counter, Histogram, Registry } from 'prom-client';

export interface RegistryMetrics {
  registry: Registry;
  requests: Counter<'method' | 'operation' | 'status'>;
  servedBytes: Counter<'kind'>;
  duration: Histogram<'operation'>;
}

/** Metrics of one server, in a prom-client registry of its own so an embedding process can merge it. */
export function createRegistryMetrics(registry: Registry = new Registry()): RegistryMetrics {
  return {
    registry,
    requests: new Counter({
      name: 'edge_registry_http_requests_total',
      help: 'HTTP requests handled, by method, API operation and status code',
      labelNames: ['method', 'operation', 'status'],
      registers: [registry],
    }),
    servedBytes: new Counter({
      name: 'edge_registry_served_bytes_total',
      help: 'Bytes of blobs and manifests read from the store for responses',
      labelNames: ['kind'],
      registers: [registry],
    }),
    duration: new Histogram({
      name: 'edge_registry_http_request_duration_seconds',
      help: 'Time from request to the end of the response, in seconds',
      labelNames: ['operation'],
      buckets: [0.001, 0.005, 0.02, 0.1, 0.5, 2, 10, 60],
      registers: [registry],
    }),
  };
}
