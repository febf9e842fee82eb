import { createServer, request as httpRequest, Agent } from 'node:http';
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { setTimeout as delay } from 'node:timers/promises';
import { createGzip } from 'node:zlib';
import { TestkitError } from './errors.js';

/**
 * Pause between writing the last bytes before a cut and the TCP RST, in milliseconds. An RST
 * discards data still in the send queue, so the written bytes get a moment to reach the client.
 */
const CUT_FLUSH_DELAY_MS = 20;
/** Number of throttle slices per second; smaller slices give a smoother rate. */
const THROTTLE_SLICES_PER_SECOND = 20;

/** Faults applied to the requests that `match` selects (all requests without `match`). */
export interface FaultRules {
  /** Cut the response with a TCP RST after this many body bytes. */
  cutAfterBytes?: number;
  /** With cutAfterBytes: cut only the first matching response after setRules. */
  cutOnce?: boolean;
  /** Limit every response body to this many bytes per second. */
  throttleBytesPerSecond?: number;
  /** Pause the response this long: before the headers, or after stallAfterBytes body bytes. */
  stallSeconds?: number;
  stallAfterBytes?: number;
  /** Respond to the nth matching request (1-based, counted from setRules) without forwarding it. */
  statusForRequest?: {
    n: number;
    status: number;
    retryAfter?: string;
    body?: string;
    contentType?: string;
  }[];
  dropRequestHeaders?: string[];
  setRequestHeaders?: Record<string, string>;
  dropResponseHeaders?: string[];
  setResponseHeaders?: Record<string, string>;
  /** Forward a ranged GET with its start moved this many bytes earlier (clamped at 0). */
  shiftRangeStart?: number;
  /** Gzip the response body on the fly and add Content-Encoding: gzip. */
  gzipResponse?: boolean;
  match?: (req: { method: string; url: string; headers: IncomingHttpHeaders }) => boolean;
}

export interface FaultProxyCounters {
  /** Requests received, matching or not. */
  requests: number;
  /** Response body bytes written to clients. */
  responseBytes: number;
  /** Request body bytes forwarded to the target. */
  requestBytes: number;
  /** Responses cut with a TCP RST. */
  cuts: number;
  /** Requests per URL path (without the query string). */
  byPath: Map<string, number>;
}

export interface FaultProxy {
  /** 'http://127.0.0.1:PORT' */
  url: string;
  /** '127.0.0.1:PORT' */
  host: string;
  /** Replaces the rules and restarts the request count of statusForRequest and cutOnce. */
  setRules(rules: FaultRules): void;
  counters: FaultProxyCounters;
  resetCounters(): void;
  stop(): Promise<void>;
}

function validateRules(rules: FaultRules): void {
  const nonNegative = {
    cutAfterBytes: rules.cutAfterBytes,
    stallSeconds: rules.stallSeconds,
    stallAfterBytes: rules.stallAfterBytes,
    shiftRangeStart: rules.shiftRangeStart,
  };
  for (const [name, value] of Object.entries(nonNegative)) {
    if (value !== undefined && !(Number.isFinite(value) && value >= 0)) {
      throw new TestkitError(
        'INVALID_OPTIONS',
        `fault rule ${name} is ${value}; give a number >= 0`,
      );
    }
  }
  const rate = rules.throttleBytesPerSecond;
  if (rate !== undefined && !(Number.isFinite(rate) && rate > 0)) {
    throw new TestkitError(
      'INVALID_OPTIONS',
      `fault rule throttleBytesPerSecond is ${rate}; give a number > 0`,
    );
  }
  for (const entry of rules.statusForRequest ?? []) {
    if (!Number.isInteger(entry.n) || entry.n < 1 || entry.status < 100 || entry.status > 599) {
      throw new TestkitError(
        'INVALID_OPTIONS',
        `fault rule statusForRequest entry {n: ${entry.n}, status: ${entry.status}} is invalid; ` +
          'n counts from 1 and status is 100-599',
      );
    }
  }
}

/** Rewrites `Range: bytes=S-[E]` to start `shift` bytes earlier; other values stay as they are. */
function shiftRange(range: string, shift: number): string {
  const match = /^bytes=(\d+)-(\d*)$/.exec(range.trim());
  if (!match?.[1]) return range;
  const start = Math.max(0, Number(match[1]) - shift);
  return `bytes=${start}-${match[2] ?? ''}`;
}

function dropHeaders(headers: Record<string, unknown>, names: string[] | undefined): void {
  for (const name of names ?? []) delete headers[name.toLowerCase()];
}

function setHeaders(headers: Record<string, unknown>, values: Record<string, string> | undefined) {
  for (const [name, value] of Object.entries(values ?? {})) headers[name.toLowerCase()] = value;
}

/** State shared by all connections of one proxy. */
interface ProxyState {
  rules: FaultRules;
  matchedSinceRules: number;
  cutsSinceRules: number;
  counters: FaultProxyCounters;
  target: URL;
  proxyOrigin: string;
  agent: Agent;
}

/** Writes the body to the client, applying throttle, stall and cut rules, honouring backpressure. */
async function pumpBody(
  source: AsyncIterable<Buffer>,
  res: ServerResponse,
  socket: Socket,
  state: ProxyState,
  rules: FaultRules | undefined,
): Promise<'done' | 'cut'> {
  const cutAt =
    rules?.cutAfterBytes !== undefined && !(rules.cutOnce && state.cutsSinceRules > 0)
      ? rules.cutAfterBytes
      : undefined;
  const rate = rules?.throttleBytesPerSecond;
  const sliceBytes = rate ? Math.max(1, Math.floor(rate / THROTTLE_SLICES_PER_SECOND)) : Infinity;
  let stallPending = rules?.stallSeconds !== undefined && rules.stallAfterBytes !== undefined;
  const started = Date.now();
  let sent = 0;

  const write = async (chunk: Buffer) => {
    if (chunk.length === 0) return;
    sent += chunk.length;
    state.counters.responseBytes += chunk.length;
    if (!res.write(chunk)) {
      await new Promise<void>((resolve) => {
        const done = () => {
          res.off('drain', done);
          res.off('close', done);
          resolve();
        };
        res.on('drain', done);
        res.on('close', done);
      });
    }
  };

  for await (const whole of source) {
    let chunk = whole;
    while (chunk.length > 0) {
      if (res.destroyed) return 'done';
      let size = Math.min(chunk.length, sliceBytes);
      if (stallPending) size = Math.min(size, Math.max(0, (rules?.stallAfterBytes ?? 0) - sent));
      if (cutAt !== undefined) size = Math.min(size, cutAt - sent);
      if (size > 0) {
        await write(chunk.subarray(0, size));
        chunk = chunk.subarray(size);
      }
      if (cutAt !== undefined && sent >= cutAt) {
        state.cutsSinceRules++;
        state.counters.cuts++;
        await delay(CUT_FLUSH_DELAY_MS);
        socket.resetAndDestroy();
        return 'cut';
      }
      if (stallPending && sent >= (rules?.stallAfterBytes ?? 0)) {
        stallPending = false;
        await delay((rules?.stallSeconds ?? 0) * 1000);
      }
      if (rate) {
        // Wait until the bytes sent so far fit the rate since the body started.
        const due = started + (sent / rate) * 1000;
        const wait = due - Date.now();
        if (wait > 0) await delay(wait);
      }
    }
  }
  // A cut at exactly the body length still resets, so "cut after N bytes" holds for N = size.
  if (cutAt !== undefined && sent >= cutAt) {
    state.cutsSinceRules++;
    state.counters.cuts++;
    await delay(CUT_FLUSH_DELAY_MS);
    socket.resetAndDestroy();
    return 'cut';
  }
  res.end();
  return 'done';
}

function sendInjectedStatus(
  req: IncomingMessage,
  res: ServerResponse,
  injected: NonNullable<FaultRules['statusForRequest']>[number],
): void {
  req.resume();
  const headers: Record<string, string> = {
    'content-type': injected.contentType ?? 'text/plain; charset=utf-8',
  };
  if (injected.retryAfter !== undefined) headers['retry-after'] = injected.retryAfter;
  const body = injected.body ?? `injected status ${injected.status}\n`;
  headers['content-length'] = String(Buffer.byteLength(body));
  res.writeHead(injected.status, headers);
  res.end(body);
}

async function handle(state: ProxyState, req: IncomingMessage, res: ServerResponse) {
  const method = req.method ?? 'GET';
  const url = req.url ?? '/';
  state.counters.requests++;
  const path = url.split('?')[0] ?? url;
  state.counters.byPath.set(path, (state.counters.byPath.get(path) ?? 0) + 1);

  const current = state.rules;
  const matches = current.match ? current.match({ method, url, headers: req.headers }) : true;
  const rules = matches ? current : undefined;
  if (rules) {
    state.matchedSinceRules++;
    const injected = rules.statusForRequest?.find((s) => s.n === state.matchedSinceRules);
    if (injected) {
      sendInjectedStatus(req, res, injected);
      return;
    }
  }

  const headers: Record<string, string | string[] | undefined> = { ...req.headers };
  if (rules) {
    dropHeaders(headers, rules.dropRequestHeaders);
    setHeaders(headers, rules.setRequestHeaders);
    const range = headers.range;
    if (rules.shiftRangeStart !== undefined && typeof range === 'string') {
      headers.range = shiftRange(range, rules.shiftRangeStart);
    }
  }

  if (rules?.stallSeconds !== undefined && rules.stallAfterBytes === undefined) {
    await delay(rules.stallSeconds * 1000);
  }

  const upstream = httpRequest({
    host: state.target.hostname,
    port: state.target.port,
    method,
    path: url,
    headers,
    agent: state.agent,
  });
  req.on('data', (chunk: Buffer) => {
    state.counters.requestBytes += chunk.length;
  });
  req.pipe(upstream);
  res.on('close', () => {
    if (!res.writableFinished) upstream.destroy();
  });

  const upstreamRes = await new Promise<IncomingMessage>((resolve, reject) => {
    upstream.once('response', resolve);
    upstream.once('error', reject);
  });

  const responseHeaders: Record<string, string | string[] | undefined> = {
    ...upstreamRes.headers,
  };
  const location = responseHeaders.location;
  if (typeof location === 'string' && location.startsWith(state.target.origin)) {
    // Keep clients on the proxy for upload sessions and redirects to the target.
    responseHeaders.location = state.proxyOrigin + location.slice(state.target.origin.length);
  }
  const status = upstreamRes.statusCode ?? 502;
  const hasBody = method !== 'HEAD' && status !== 204 && status !== 304;
  const gzip = Boolean(rules?.gzipResponse) && hasBody;
  if (gzip) {
    delete responseHeaders['content-length'];
    responseHeaders['content-encoding'] = 'gzip';
  }
  if (rules) {
    dropHeaders(responseHeaders, rules.dropResponseHeaders);
    setHeaders(responseHeaders, rules.setResponseHeaders);
  }
  res.writeHead(status, responseHeaders);
  // Send the headers now, so a client sees the status even when the body is cut at byte 0.
  res.flushHeaders();
  if (!hasBody) {
    upstreamRes.resume();
    res.end();
    return;
  }
  const source = gzip ? upstreamRes.pipe(createGzip()) : upstreamRes;
  const outcome = await pumpBody(source, res, req.socket, state, rules);
  if (outcome === 'cut') upstream.destroy();
}

/**
 * Starts an HTTP proxy on 127.0.0.1 in front of `targetUrl` that injects the faults of
 * `rules`: cuts, stalls, throttling, injected statuses, header changes, shifted ranges and gzip.
 * Requests keep their Host header, so docker-registry builds upload URLs that point at the proxy.
 */
export async function startFaultProxy(
  targetUrl: string,
  rules: FaultRules = {},
): Promise<FaultProxy> {
  validateRules(rules);
  const target = new URL(targetUrl);
  const counters: FaultProxyCounters = {
    requests: 0,
    responseBytes: 0,
    requestBytes: 0,
    cuts: 0,
    byPath: new Map(),
  };
  const state: ProxyState = {
    rules,
    matchedSinceRules: 0,
    cutsSinceRules: 0,
    counters,
    target,
    proxyOrigin: '',
    agent: new Agent({ keepAlive: true }),
  };
  const server = createServer((req, res) => {
    handle(state, req, res).catch((err: unknown) => {
      // The target failed or closed: send 502 if nothing was sent yet, else drop the socket.
      if (!res.headersSent) {
        res.writeHead(502, { 'content-type': 'text/plain; charset=utf-8' });
        res.end(`fault proxy: request to ${target.origin} failed: ${String(err)}\n`);
      } else {
        res.destroy();
      }
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  state.proxyOrigin = `http://127.0.0.1:${port}`;

  return {
    url: state.proxyOrigin,
    host: `127.0.0.1:${port}`,
    counters,
    setRules(next: FaultRules) {
      validateRules(next);
      state.rules = next;
      state.matchedSinceRules = 0;
      state.cutsSinceRules = 0;
    },
    resetCounters() {
      counters.requests = 0;
      counters.responseBytes = 0;
      counters.requestBytes = 0;
      counters.cuts = 0;
      counters.byPath.clear();
    },
    stop: async () => {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      state.agent.destroy();
      await closed;
    },
  };
}
