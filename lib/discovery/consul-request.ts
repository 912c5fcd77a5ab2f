/**
 * How a Consul request goes out: its query string and `http.request` options (pure; the
 * token travels in a header, never in the URL), and the keep-alive connection pool a
 * discovery loop reuses between requests.
 *
 * @example
 * ```ts
 * const { protocol, options } = consulRequestOptions(config, '/v1/health/service/pglab', { passing: true });
 * ```
 * @module
 */
import http from 'node:http';
import https from 'node:https';
import type { Socket } from 'node:net';
import { DiscoveryError } from '../errors.js';
import type { ConsulConfig } from './consul-config.js';

/**
 * Query parameters of a Consul request: a string is sent as `key=value`, `true` as a bare
 * flag (`?passing`), `undefined` is left out.
 */
export type ConsulQuery = Readonly<Record<string, string | true | undefined>>;

/** `http.request` options plus which module to call, as built by {@link consulRequestOptions}. */
export interface ConsulRequestPlan {
  /** `http:` or `https:`. */
  readonly protocol: 'http:' | 'https:';
  /** Options for `http.request` / `https.request` (TLS options only for https). */
  readonly options: https.RequestOptions;
}

/**
 * The query string for a request: the connection-wide parameters from `config` (`dc`,
 * `stale` / `consistent`, `ns`, `partition`) followed by `query` (which may override them).
 * The token is never put in the URL.
 *
 * @param config the Consul connection
 * @param query the request's own parameters
 * @returns `''` or `?a=b&flag…`, every part URL-encoded
 *
 * @example
 * ```ts
 * consulQueryString({ ...config, datacenter: 'dc1', consistency: 'stale' }, { passing: true, index: '42' });
 * // '?dc=dc1&stale&passing&index=42'
 * ```
 */
export function consulQueryString(config: ConsulConfig, query: ConsulQuery): string {
  const params = new Map<string, string | true>();
  if (config.datacenter) params.set('dc', config.datacenter);
  if (config.consistency === 'stale') params.set('stale', true);
  if (config.consistency === 'consistent') params.set('consistent', true);
  if (config.namespace) params.set('ns', config.namespace);
  if (config.partition) params.set('partition', config.partition);
  for (const [key, value] of Object.entries(query)) {
    if (value !== undefined) params.set(key, value);
  }
  const parts: string[] = [];
  for (const [key, value] of params) {
    parts.push(value === true ? encodeURIComponent(key) : `${encodeURIComponent(key)}=${encodeURIComponent(value)}`);
  }
  return parts.length === 0 ? '' : `?${parts.join('&')}`;
}

/**
 * Maps a {@link ConsulConfig} and a request to `http.request` options (pure): host/port or
 * unix `socketPath`, token in `X-Consul-Token`, basic auth in `Authorization`, TLS material
 * (`ca`, `cert`, `key`, `servername`, `rejectUnauthorized`) for https.
 *
 * @param config the Consul connection
 * @param path absolute request path, already URL-encoded (e.g. `/v1/health/service/pglab`)
 * @param query query parameters, see {@link ConsulQuery}
 * @param agent connection pool; `false` (default) = one connection per request
 * @returns the protocol and request options; contains secrets, never log it
 * @throws DiscoveryError when `path` is not an absolute path without `?`/`#`
 *
 * @example
 * ```ts
 * const { protocol, options } = consulRequestOptions(config, '/v1/status/leader', {});
 * ```
 */
export function consulRequestOptions(
  config: ConsulConfig,
  path: string,
  query: ConsulQuery,
  agent: http.Agent | false = false,
): ConsulRequestPlan {
  if (!path.startsWith('/') || /[?#\s]/.test(path)) {
    throw new DiscoveryError('invalid Consul request path');
  }
  const headers: Record<string, string> = { accept: 'application/json', 'user-agent': 'pg-consul' };
  if (config.token) headers['x-consul-token'] = config.token;
  if (config.basicAuth) {
    const { username, password } = config.basicAuth;
    headers['authorization'] = `Basic ${Buffer.from(`${username}:${password}`, 'utf8').toString('base64')}`;
  }
  const options: https.RequestOptions = { method: 'GET', path: `${path}${consulQueryString(config, query)}`, headers, agent };
  if (config.socketPath) {
    options.socketPath = config.socketPath;
  } else {
    options.hostname = config.host;
    options.port = config.port;
  }
  if (config.scheme === 'https') {
    const { ca, cert, key, servername, rejectUnauthorized } = config.tls;
    if (ca !== undefined) options.ca = ca;
    if (cert !== undefined) options.cert = cert;
    if (key !== undefined) options.key = key;
    if (servername !== undefined) options.servername = servername;
    options.rejectUnauthorized = rejectUnauthorized;
  }
  return { protocol: config.scheme === 'https' ? 'https:' : 'http:', options };
}

/**
 * A keep-alive connection pool for one Consul connection (http or https per `config.scheme`).
 * Idle sockets are `unref()`ed by Node's agent; {@link consulGet} also unrefs sockets while a
 * request is in flight. The owner calls `destroy()` when done.
 *
 * @param config the Consul connection
 * @returns a new agent
 *
 * @example
 * ```ts
 * const agent = createConsulAgent(config);
 * try { await consulGet(config, '/v1/status/leader', {}, { signal, timeoutMillis: 5_000, agent }); }
 * finally { agent.destroy(); }
 * ```
 */
export function createConsulAgent(config: ConsulConfig): http.Agent {
  const options = { keepAlive: true, maxSockets: 2, maxFreeSockets: 1, scheduling: 'lifo' as const };
  return config.scheme === 'https' ? new https.Agent(options) : new http.Agent(options);
}

/**
 * Destroys an agent from {@link createConsulAgent} and resolves once each of its sockets
 * (in use or kept alive) is closed — at most `boundMillis` later — so whoever awaits it
 * leaves no socket behind.
 *
 * @param agent the agent
 * @param boundMillis longest wait for the sockets' `close` (default 1000)
 * @returns resolves when every socket closed, or after the bound
 *
 * @example
 * ```ts
 * await destroyConsulAgent(agent);
 * ```
 */
export async function destroyConsulAgent(agent: http.Agent, boundMillis = 1_000): Promise<void> {
  const sockets = [...Object.values(agent.sockets), ...Object.values(agent.freeSockets)].flat().filter((s): s is Socket => s !== undefined && !s.closed);
  agent.destroy();
  if (sockets.length === 0) return;
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    Promise.all(sockets.map((s) => new Promise<void>((resolve) => (s.closed ? resolve() : s.once('close', () => resolve()))))),
    new Promise<void>((resolve) => {
      timer = setTimeout(resolve, boundMillis);
      timer.unref();
    }),
  ]);
  clearTimeout(timer);
}
