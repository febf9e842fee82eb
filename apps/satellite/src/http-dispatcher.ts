import { Agent, EnvHttpProxyAgent } from 'undici';
import type { Dispatcher } from 'undici';

export interface TlsOptions {
  /** PEM bundle of extra trusted certificate authorities. */
  ca?: string;
  /** Skip certificate verification (test setups with self-signed certificates only). */
  insecure?: boolean;
}

/** Connect timeout for Ground Control and registries: 15 s covers slow satellite links. */
export const CONNECT_TIMEOUT_MS = 15_000;

/** Environment variables that route outbound HTTP through a proxy, in both spellings curl reads. */
const PROXY_VARIABLES = ['HTTPS_PROXY', 'https_proxy', 'HTTP_PROXY', 'http_proxy'] as const;

/**
 * Creates the undici dispatcher for outbound requests. With `HTTPS_PROXY` or `HTTP_PROXY` set it
 * is an `EnvHttpProxyAgent`, which also honours `NO_PROXY`; otherwise a plain `Agent`.
 */
export function createDispatcher(
  tls: TlsOptions = {},
  env: NodeJS.ProcessEnv = process.env,
): Dispatcher {
  const tlsOptions = {
    ...(tls.ca ? { ca: tls.ca } : {}),
    ...(tls.insecure ? { rejectUnauthorized: false } : {}),
  };
  const connect = { timeout: CONNECT_TIMEOUT_MS, ...tlsOptions };
  const usesProxy = PROXY_VARIABLES.some((name) => Boolean(env[name]));
  if (!usesProxy) return new Agent({ connect });
  return new EnvHttpProxyAgent({
    httpProxy: env.HTTP_PROXY ?? env.http_proxy,
    httpsProxy: env.HTTPS_PROXY ?? env.https_proxy ?? env.HTTP_PROXY ?? env.http_proxy,
    noProxy: env.NO_PROXY ?? env.no_proxy,
    connect,
    // TLS toward the target through the proxy's CONNECT tunnel.
    requestTls: tlsOptions,
  });
}

/** Caches one dispatcher per TLS setting, so each upstream reuses its connections. */
export class DispatcherCache {
  readonly #dispatchers = new Map<string, Dispatcher>();

  constructor(private readonly env: NodeJS.ProcessEnv = process.env) {}

  get(tls: TlsOptions = {}): Dispatcher {
    const key = `${tls.insecure ? 1 : 0}:${tls.ca ?? ''}`;
    let dispatcher = this.#dispatchers.get(key);
    if (!dispatcher) {
      dispatcher = createDispatcher(tls, this.env);
      this.#dispatchers.set(key, dispatcher);
    }
    return dispatcher;
  }

  async close(): Promise<void> {
    const all = [...this.#dispatchers.values()];
    this.#dispatchers.clear();
    await Promise.all(all.map((dispatcher) => dispatcher.close()));
  }
}
