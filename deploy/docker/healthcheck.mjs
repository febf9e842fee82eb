#!/usr/bin/env node
// Container health check for the slim Node images, which have no curl or wget.
//   node healthcheck.mjs ground-control   GET /readyz on GC_PORT (default 8080)
//   node healthcheck.mjs satellite        GET /readyz on SATELLITE_METRICS_LISTEN (default 127.0.0.1:9105)
// Exits 0 on a 2xx response and 1 otherwise, with one line on stderr saying why.

/**
 * Request limit in ms: shorter than the HEALTHCHECK --timeout (5 s), so that the script prints
 * the reason before Docker kills it.
 */
const REQUEST_TIMEOUT_MS = 4_000;

const DEFAULT_GC_PORT = '8080';
const DEFAULT_SATELLITE_METRICS_LISTEN = '127.0.0.1:9105';

/** Returns the readiness URL for one service, built from the variables that service reads. */
function readinessUrl(service, env) {
  if (service === 'ground-control') {
    return `http://127.0.0.1:${env.GC_PORT ?? DEFAULT_GC_PORT}/readyz`;
  }
  if (service === 'satellite') {
    const listen = env.SATELLITE_METRICS_LISTEN ?? DEFAULT_SATELLITE_METRICS_LISTEN;
    const separator = listen.lastIndexOf(':');
    if (separator < 0) throw new Error(`SATELLITE_METRICS_LISTEN must be HOST:PORT, not ${listen}`);
    const host = listen.slice(0, separator);
    const port = listen.slice(separator + 1);
    // A wildcard listen address is reachable on loopback from inside the container.
    const target = host === '0.0.0.0' || host === '[::]' || host === '' ? '127.0.0.1' : host;
    return `http://${target}:${port}/readyz`;
  }
  throw new Error(`unknown service "${service}": use ground-control or satellite`);
}

async function main() {
  const url = readinessUrl(process.argv[2], process.env);
  let response;
  try {
    response = await fetch(url, { signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
  } catch (error) {
    throw new Error(`GET ${url} failed: ${error instanceof Error ? error.message : error}`, {
      cause: error,
    });
  }
  await response.body?.cancel();
  if (!response.ok) {
    process.stderr.write(`health check failed: GET ${url} returned ${response.status}\n`);
    process.exit(1);
  }
}

main().catch((error) => {
  process.stderr.write(`health check failed: ${error instanceof Error ? error.message : error}\n`);
  process.exit(1);
});
