/**
 * A minimal HTTP transport for Consul GET requests, on `node:http` / `node:https`.
 *
 * Why not the `consul` npm package (papi) here: its absolute request timeout is a plain
 * `setTimeout` that is never `unref()`ed (an idle pool would keep the process alive for the
 * whole blocking wait), cancellation needs an EventEmitter `ctx` bridged from the
 * `AbortSignal`, non-JSON bodies come back as strings or Buffers depending on the
 * Content-Type instead of failing, and a GET on an arbitrary path needs its private `_get`.
 * All of this is a few lines with `node:http`, and the socket handling (unref, destroy at once
 * on abort) stays in our hands.
 *
 * @module
 */
import http from 'node:http';
import https from 'node:https';
import type { IncomingHttpHeaders } from 'node:http';
import type { Socket } from 'node:net';
import { DiscoveryError } from '../errors.js';
import { describeConsulConfig } from './consul-config.js';
import type { ConsulConfig } from './consul-config.js';

/**
 * Query parameters of a Consul request: a string is sent as `key=value`, `true` as a bare
 * flag (`?passing`), `undefined` is left out.
 */
export type ConsulQuery = Readonly<Record<string, string | true | undefined>>;

/** Per-request options of {@link consulGet}. */
export interface ConsulGetOptions {
  /** Aborting it destroys the request (and its socket) at once; the promise rejects. */
  readonly signal: AbortSignal;
  /** Overall deadline for the whole exchange (connect, headers and body), in ms. */
  readonly timeoutMillis: number;
  /**
   * Deadline for establishing a new connection (TCP connect, plus the TLS handshake for
   * https), in ms; 0 or absent = none (only `timeoutMillis` applies). A reused keep-alive
   * connection is not timed by it.
   */
  readonly connectTimeoutMillis?: number | undefined;
  /**
   * Connection pool to use, e.g. from {@link createConsulAgent} (keep-alive). Without one,
   * every request opens and closes its own connection.
   */
  readonly agent?: http.Agent | undefined;
  /** Largest body accepted, in bytes (default {@link DEFAULT_MAX_BODY_BYTES}). */
  readonly maxBodyBytes?: number | undefined;
  /**
   * Whether the socket is `unref()`ed while the request is in flight (default true), so the
   * request alone does not keep the process alive. Pass false for a short request the
   * process should wait for.
   */
  readonly unref?: boolean | undefined;
  /**
   * Resolve a 404 answer instead of rejecting it, with `body: null` (whatever the body was)
   * and the headers (default false). For reads where "nothing there" is an answer: Consul
   * answers a KV read under an empty prefix with 404 and an `X-Consul-Index` to block on.
   */
  readonly acceptNotFound?: boolean | undefined;
}

/**
 * What {@link consulGet} resolves with: a 2xx answer whose body was valid JSON (or, with
 * `acceptNotFound`, a 404 with `body: null`).
 */
export interface ConsulResponse {
  /** HTTP status (2xx, or 404 with `acceptNotFound`). */
  readonly status: number;
  /** Response headers, lower-case names; repeated headers joined with `, `. */
  readonly headers: Readonly<Record<string, string | undefined>>;
  /** The parsed JSON body. */
  readonly body: unknown;
}

/**
 * Default cap on a Consul answer's size: 8 MiB (a health answer for a Patroni cluster is a
 * few KiB per node; a KV prefix a few KiB per member). A larger answer is refused — from its
 * `Content-Length` before reading, else as soon as the bytes received pass the cap — and
 * never buffered whole.
 */
export const DEFAULT_MAX_BODY_BYTES = 8 * 1024 * 1024;

/**
 * Consul asked the client to slow down: it answered 429 (or 503). `retryAfter` is its raw
 * `Retry-After` header, if any (seconds or an HTTP-date); the discovery loop honours it.
 */
export class ConsulThrottleError extends DiscoveryError {
  /** The raw `Retry-After` header, `undefined` when absent. */
  readonly retryAfter: string | undefined;
  /**
   * @param message description (secret-free)
   * @param status 429 or 503
   * @param retryAfter the raw `Retry-After` header
   */
  constructor(message: string, status: number, retryAfter: string | undefined) {
    super(message, { status });
    this.name = 'ConsulThrottleError';
    this.retryAfter = retryAfter;
  }
}

/** Most bytes of an error answer (non-2xx) read before it is refused: it is only quoted. */
export const MAX_ERROR_BODY_BYTES = 4096;

/** Longest excerpt of Consul's own body text quoted in an error message. */
export const MAX_ERROR_BODY_CHARS = 200;

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

/**
 * A printable, secret-free excerpt of a body Consul sent: control characters replaced,
 * whitespace collapsed, the token and basic-auth password redacted, truncated to `max`.
 *
 * @param text the body text
 * @param config whose secrets to redact
 * @param max longest excerpt (default {@link MAX_ERROR_BODY_CHARS})
 * @returns the excerpt (`…` appended when truncated)
 *
 * @example
 * ```ts
 * bodyExcerpt('ACL not found\n', config); // 'ACL not found'
 * ```
 */
export function bodyExcerpt(text: string, config: ConsulConfig, max = MAX_ERROR_BODY_CHARS): string {
  let out = text;
  for (const secret of [config.token, config.basicAuth?.password]) {
    if (secret) out = out.split(secret).join('[redacted]');
  }
  // eslint-disable-next-line no-control-regex
  out = out.replace(/[\u0000-\u001f\u007f]+/g, ' ').replace(/\s+/g, ' ').trim();
  return out.length > max ? `${out.slice(0, max)}…` : out;
}

function flattenHeaders(raw: IncomingHttpHeaders): Record<string, string | undefined> {
  const headers: Record<string, string | undefined> = {};
  for (const [name, value] of Object.entries(raw)) {
    headers[name.toLowerCase()] = Array.isArray(value) ? value.join(', ') : value;
  }
  return headers;
}

function errorCode(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === 'string') return code;
  return err instanceof Error ? err.message : String(err);
}

/**
 * One GET request to Consul. Resolves with a 2xx answer whose body parsed as JSON; rejects
 * with a {@link DiscoveryError} (secret-free message, `status` set when Consul answered) on:
 * a network error, a non-2xx answer (Consul's text quoted, ≤ 200 chars), a body that is not
 * JSON or exceeds `maxBodyBytes`, the overall `timeoutMillis`, or `signal` aborting (the
 * request and its socket are destroyed at once).
 *
 * The deadline timer is `unref()`ed, and so is the socket unless `opts.unref` is false, so a
 * parked blocking query never keeps the process alive by itself (like an idle `pg.Pool`).
 *
 * @param config the Consul connection (token → `X-Consul-Token`, never in the URL)
 * @param path absolute, URL-encoded path (e.g. `/v1/health/service/pglab`)
 * @param query query parameters; `dc`, `stale`/`consistent`, `ns`, `partition` come from `config`
 * @param opts `signal`, `timeoutMillis`, optional keep-alive `agent`, `maxBodyBytes`, `unref`,
 *   `acceptNotFound`
 * @returns status, headers (incl. `x-consul-index`) and parsed body
 *
 * @example
 * ```ts
 * const res = await consulGet(config, '/v1/health/service/pglab', { passing: true },
 *   { signal: AbortSignal.timeout(10_000), timeoutMillis: 5_000 });
 * res.headers['x-consul-index']; // '1234'
 * ```
 */
export function consulGet(
  config: ConsulConfig,
  path: string,
  query: ConsulQuery,
  opts: ConsulGetOptions,
): Promise<ConsulResponse> {
  const where = describeConsulConfig(config);
  const label = `GET ${path}`;
  const maxBodyBytes = opts.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  return new Promise<ConsulResponse>((resolve, reject) => {
    if (opts.signal.aborted) {
      reject(new DiscoveryError(`${label} to Consul at ${where} aborted`, { cause: opts.signal.reason }));
      return;
    }
    let plan: ConsulRequestPlan;
    try {
      plan = consulRequestOptions(config, path, query, opts.agent ?? false);
    } catch (err) {
      reject(err);
      return;
    }
    let settled = false;
    // Every caller of settle() runs asynchronously, after `timer` and `onAbort` exist.
    const settle = (outcome: () => void): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      clearTimeout(giveUpTimer);
      clearConnectTimer();
      opts.signal.removeEventListener('abort', onAbort);
      outcome();
    };
    const fail = (error: DiscoveryError): void => settle(() => reject(error));
    const succeed = (value: ConsulResponse): void => settle(() => resolve(value));
    const asDiscoveryError = (err: unknown): DiscoveryError =>
      err instanceof DiscoveryError
        ? err
        : new DiscoveryError(`${label} to Consul at ${where} failed: ${errorCode(err)}`, { cause: err });

    const req = (plan.protocol === 'https:' ? https : http).request(plan.options);
    let connectTimer: NodeJS.Timeout | undefined;
    const clearConnectTimer = (): void => {
      if (connectTimer !== undefined) clearTimeout(connectTimer);
      connectTimer = undefined;
    };
    req.on('socket', (socket: Socket) => {
      // A reused keep-alive socket was ref()ed by the agent just before this event.
      if (opts.unref !== false) socket.unref();
      const connectMillis = opts.connectTimeoutMillis ?? 0;
      if (connectMillis > 0 && socket.connecting) {
        connectTimer = setTimeout(() => {
          const error = new DiscoveryError(`${label} to Consul at ${where}: no connection within ${connectMillis} ms`);
          abortWith(error);
        }, connectMillis);
        connectTimer.unref();
        socket.once(plan.protocol === 'https:' ? 'secureConnect' : 'connect', clearConnectTimer);
        socket.once('close', clearConnectTimer);
      }
    });
    // Giving up (timeout, abort, oversized answer): destroy the request and settle once its
    // socket is really closed, so a caller that awaits us (stop(), end()) leaves no socket behind.
    let giveUp: DiscoveryError | undefined;
    let giveUpTimer: NodeJS.Timeout | undefined;
    const abortWith = (error: DiscoveryError): void => {
      if (settled || giveUp !== undefined) return;
      giveUp = error;
      clearTimeout(timer);
      clearConnectTimer();
      req.once('close', () => fail(error));
      // 'close' follows destroy() within a tick or two; never wait on it unbounded.
      giveUpTimer = setTimeout(() => fail(error), 1_000);
      giveUpTimer.unref();
      req.destroy(error);
    };
    req.on('error', (err) => {
      if (giveUp === undefined) fail(asDiscoveryError(err));
    });

    const onAbort = (): void => {
      const error = new DiscoveryError(`${label} to Consul at ${where} aborted`, { cause: opts.signal.reason });
      abortWith(error);
    };
    opts.signal.addEventListener('abort', onAbort, { once: true });
    const timer = setTimeout(() => {
      const error = new DiscoveryError(`${label} to Consul at ${where} timed out after ${opts.timeoutMillis} ms`);
      abortWith(error);
    }, opts.timeoutMillis);
    timer.unref();

    req.on('response', (res) => {
      const status = res.statusCode ?? 0;
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('error', (err) => {
        if (giveUp === undefined) fail(asDiscoveryError(err));
      });
      const declared = Number(res.headers['content-length']);
      if (Number.isFinite(declared) && declared > maxBodyBytes) {
        const error = new DiscoveryError(`${label} to Consul at ${where}: answer of ${declared} bytes is larger than ${maxBodyBytes} bytes`, { status });
        abortWith(error);
        return;
      }
      const statusError = (text: string): DiscoveryError => {
        const excerpt = bodyExcerpt(text, config);
        const message = `Consul at ${where} answered ${status} to ${label}${excerpt ? `: ${excerpt}` : ''}`;
        return status === 429 || status === 503 ? new ConsulThrottleError(message, status, res.headers['retry-after']) : new DiscoveryError(message, { status });
      };
      const ok = status >= 200 && status <= 299;
      const notFound = status === 404 && opts.acceptNotFound === true;
      res.on('data', (chunk: Buffer) => {
        if (settled || giveUp !== undefined) return;
        size += chunk.length;
        if (!ok && !notFound) {
          // An error answer is only quoted: keep its start, and do not wait for the rest.
          chunks.push(chunk);
          if (size > MAX_ERROR_BODY_BYTES) {
            const error = statusError(Buffer.concat(chunks, size).toString('utf8'));
            abortWith(error);
          }
          return;
        }
        if (size > maxBodyBytes) {
          const error = new DiscoveryError(`${label} to Consul at ${where}: answer larger than ${maxBodyBytes} bytes`, { status });
          abortWith(error);
          return;
        }
        if (!notFound) chunks.push(chunk);
      });
      res.on('close', () => {
        if (!res.complete && giveUp === undefined) fail(new DiscoveryError(`${label} to Consul at ${where}: connection closed before the answer was complete`, { status }));
      });
      res.on('end', () => {
        if (notFound) {
          succeed({ status, headers: flattenHeaders(res.headers), body: null });
          return;
        }
        const text = Buffer.concat(chunks, size).toString('utf8');
        if (!ok) {
          fail(statusError(text));
          return;
        }
        let body: unknown;
        try {
          body = JSON.parse(text);
        } catch {
          // No `cause`: SyntaxError messages quote the raw body, which was not redacted.
          const excerpt = bodyExcerpt(text, config);
          fail(new DiscoveryError(`Consul at ${where} answered ${label} with a body that is not JSON${excerpt ? `: ${excerpt}` : ' (empty)'}`, { status }));
          return;
        }
        succeed({ status, headers: flattenHeaders(res.headers), body });
      });
    });
    req.end();
  });
}
