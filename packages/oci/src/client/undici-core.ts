import { createRequire } from 'node:module';
import type { Agent as UndiciAgent, Dispatcher } from 'undici';

// undici's main entry also loads fetch, WebSocket, EventSource, the cache stores and the mock
// agents, which this client never uses. Loading only the connection pool and the request API
// keeps about 9 MB off the RSS of every process that imports this package. GNU time on Node
// 20.20 measured 61 MB for `import('undici')`, 52 MB for these two files and 42 MB for an
// empty script. The paths are internal to undici, so the package.json pins undici exactly.
// NOTE: check that both paths still exist, with the same exports, when undici is upgraded.
const require = createRequire(import.meta.url);

/** undici's `Agent` class, loaded without the rest of undici. */
export const Agent = require('undici/lib/dispatcher/agent.js') as typeof UndiciAgent;

const dispatcherRequest = require('undici/lib/api/api-request.js') as (
  this: Dispatcher,
  options: Dispatcher.RequestOptions,
) => Promise<Dispatcher.ResponseData>;

/** Request options as undici's top-level `request(url, options)` takes them. */
export type RequestOptions = Omit<Dispatcher.RequestOptions, 'origin' | 'path' | 'method'> & {
  dispatcher: Dispatcher;
  method: Dispatcher.HttpMethod;
};

/** Sends one request through `options.dispatcher`, like undici's top-level `request`. */
export function request(url: URL, options: RequestOptions): Promise<Dispatcher.ResponseData> {
  const { dispatcher, ...rest } = options;
  return dispatcherRequest.call(dispatcher, {
    ...rest,
    origin: url.origin,
    path: `${url.pathname}${url.search}`,
  });
}
