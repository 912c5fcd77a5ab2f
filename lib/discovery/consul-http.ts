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
import type { Socket } from 'node:net';
import { DiscoveryError } from '../errors.js';
import { DEFAULT_MAX_BODY_BYTES, MAX_ERROR_BODY_BYTES, bodyExcerpt, flattenHeaders, statusError } from './consul-answer.js';
import type { ConsulResponse } from './consul-answer.js';
import { describeConsulConfig } from './consul-config.js';
import type { ConsulConfig } from './consul-config.js';
import { consulRequestOptions } from './consul-request.js';
import type { ConsulQuery, ConsulRequestPlan } from './consul-request.js';

export { ConsulThrottleError, DEFAULT_MAX_BODY_BYTES, MAX_ERROR_BODY_BYTES, MAX_ERROR_BODY_CHARS, bodyExcerpt } from './consul-answer.js';
export type { ConsulResponse } from './consul-answer.js';
export { consulQueryString, consulRequestOptions, createConsulAgent, destroyConsulAgent } from './consul-request.js';
export type { ConsulQuery, ConsulRequestPlan } from './consul-request.js';

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

function errorCode(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === 'string') return code;
  return err instanceof Error ? err.message : String(err);
}

/** One answer being received. */
interface Answer {
  readonly res: http.IncomingMessage;
  readonly status: number;
  /** A 2xx status. */
  readonly ok: boolean;
  /** A 404 the caller accepts (`acceptNotFound`): its body is not kept. */
  readonly notFound: boolean;
  readonly chunks: Buffer[];
  size: number;
}

/**
 * One GET exchange with Consul: the request, its deadlines (overall, connect, the bound on
 * the socket's close after giving up), the answer's size caps, and settling the promise once.
 */
class ConsulExchange {
  readonly #config: ConsulConfig;
  readonly #opts: ConsulGetOptions;
  readonly #label: string;
  readonly #where: string;
  readonly #maxBodyBytes: number;
  readonly #resolve: (value: ConsulResponse) => void;
  readonly #reject: (error: unknown) => void;
  #req: http.ClientRequest | undefined;
  #settled = false;
  /** Why the exchange gave up (timeout, abort, oversized answer); it settles once the socket closed. */
  #giveUp: DiscoveryError | undefined;
  #timer: NodeJS.Timeout | undefined;
  #giveUpTimer: NodeJS.Timeout | undefined;
  #connectTimer: NodeJS.Timeout | undefined;

  constructor(
    config: ConsulConfig,
    label: string,
    where: string,
    opts: ConsulGetOptions,
    resolve: (value: ConsulResponse) => void,
    reject: (error: unknown) => void,
  ) {
    this.#config = config;
    this.#label = label;
    this.#where = where;
    this.#opts = opts;
    this.#maxBodyBytes = opts.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
    this.#resolve = resolve;
    this.#reject = reject;
  }

  /** Sends the request and arms the overall deadline and the abort signal. */
  start(plan: ConsulRequestPlan): void {
    const req = (plan.protocol === 'https:' ? https : http).request(plan.options);
    this.#req = req;
    req.on('socket', (socket: Socket) => this.#onSocket(socket, plan.protocol));
    req.on('error', (err) => {
      if (this.#giveUp === undefined) this.#fail(this.#asDiscoveryError(err));
    });
    this.#opts.signal.addEventListener('abort', this.#onAbort, { once: true });
    this.#timer = setTimeout(() => {
      this.#abortWith(new DiscoveryError(`${this.#prefix()} timed out after ${this.#opts.timeoutMillis} ms`));
    }, this.#opts.timeoutMillis);
    this.#timer.unref();
    req.on('response', (res) => this.#onResponse(res));
    req.end();
  }

  /** `GET /path to Consul at host:port`, the start of most messages. */
  #prefix(): string {
    return `${this.#label} to Consul at ${this.#where}`;
  }

  readonly #onAbort = (): void => {
    this.#abortWith(new DiscoveryError(`${this.#prefix()} aborted`, { cause: this.#opts.signal.reason }));
  };

  #asDiscoveryError(err: unknown): DiscoveryError {
    return err instanceof DiscoveryError ? err : new DiscoveryError(`${this.#prefix()} failed: ${errorCode(err)}`, { cause: err });
  }

  /** Stops every timer and listener; false when the exchange had settled already. */
  #finish(): boolean {
    if (this.#settled) return false;
    this.#settled = true;
    clearTimeout(this.#timer);
    clearTimeout(this.#giveUpTimer);
    this.#clearConnectTimer();
    this.#opts.signal.removeEventListener('abort', this.#onAbort);
    return true;
  }

  #fail(error: DiscoveryError): void {
    if (this.#finish()) this.#reject(error);
  }

  #succeed(value: ConsulResponse): void {
    if (this.#finish()) this.#resolve(value);
  }

  #clearConnectTimer(): void {
    if (this.#connectTimer !== undefined) clearTimeout(this.#connectTimer);
    this.#connectTimer = undefined;
  }

  #onSocket(socket: Socket, protocol: ConsulRequestPlan['protocol']): void {
    // A reused keep-alive socket was ref()ed by the agent just before this event.
    if (this.#opts.unref !== false) socket.unref();
    const connectMillis = this.#opts.connectTimeoutMillis ?? 0;
    if (connectMillis > 0 && socket.connecting) {
      this.#connectTimer = setTimeout(() => {
        this.#abortWith(new DiscoveryError(`${this.#prefix()}: no connection within ${connectMillis} ms`));
      }, connectMillis);
      this.#connectTimer.unref();
      const clear = (): void => this.#clearConnectTimer();
      socket.once(protocol === 'https:' ? 'secureConnect' : 'connect', clear);
      socket.once('close', clear);
    }
  }

  /**
   * Gives up (timeout, abort, oversized answer): destroys the request and settles once its
   * socket is really closed, so a caller that awaits us (stop(), end()) leaves no socket behind.
   */
  #abortWith(error: DiscoveryError): void {
    if (this.#settled || this.#giveUp !== undefined) return;
    this.#giveUp = error;
    clearTimeout(this.#timer);
    this.#clearConnectTimer();
    const req = this.#req!;
    req.once('close', () => this.#fail(error));
    // 'close' follows destroy() within a tick or two; never wait on it unbounded.
    this.#giveUpTimer = setTimeout(() => this.#fail(error), 1_000);
    this.#giveUpTimer.unref();
    req.destroy(error);
  }

  #onResponse(res: http.IncomingMessage): void {
    const status = res.statusCode ?? 0;
    res.on('error', (err) => {
      if (this.#giveUp === undefined) this.#fail(this.#asDiscoveryError(err));
    });
    const declared = Number(res.headers['content-length']);
    if (Number.isFinite(declared) && declared > this.#maxBodyBytes) {
      this.#abortWith(new DiscoveryError(`${this.#prefix()}: answer of ${declared} bytes is larger than ${this.#maxBodyBytes} bytes`, { status }));
      return;
    }
    const answer: Answer = { res, status, ok: status >= 200 && status <= 299, notFound: status === 404 && this.#opts.acceptNotFound === true, chunks: [], size: 0 };
    res.on('data', (chunk: Buffer) => this.#onData(answer, chunk));
    res.on('close', () => {
      if (!res.complete && this.#giveUp === undefined) this.#fail(new DiscoveryError(`${this.#prefix()}: connection closed before the answer was complete`, { status }));
    });
    res.on('end', () => this.#onEnd(answer));
  }

  #statusError(a: Answer, text: string): DiscoveryError {
    return statusError(a.status, a.res.headers['retry-after'], text, this.#config, this.#label, this.#where);
  }

  #onData(a: Answer, chunk: Buffer): void {
    if (this.#settled || this.#giveUp !== undefined) return;
    a.size += chunk.length;
    if (!a.ok && !a.notFound) {
      // An error answer is only quoted: keep its start, and do not wait for the rest.
      a.chunks.push(chunk);
      if (a.size > MAX_ERROR_BODY_BYTES) this.#abortWith(this.#statusError(a, Buffer.concat(a.chunks, a.size).toString('utf8')));
      return;
    }
    if (a.size > this.#maxBodyBytes) {
      this.#abortWith(new DiscoveryError(`${this.#prefix()}: answer larger than ${this.#maxBodyBytes} bytes`, { status: a.status }));
      return;
    }
    if (!a.notFound) a.chunks.push(chunk);
  }

  #onEnd(a: Answer): void {
    if (a.notFound) {
      this.#succeed({ status: a.status, headers: flattenHeaders(a.res.headers), body: null });
      return;
    }
    const text = Buffer.concat(a.chunks, a.size).toString('utf8');
    if (!a.ok) {
      this.#fail(this.#statusError(a, text));
      return;
    }
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      // No `cause`: SyntaxError messages quote the raw body, which was not redacted.
      const excerpt = bodyExcerpt(text, this.#config);
      this.#fail(new DiscoveryError(`Consul at ${this.#where} answered ${this.#label} with a body that is not JSON${excerpt ? `: ${excerpt}` : ' (empty)'}`, { status: a.status }));
      return;
    }
    this.#succeed({ status: a.status, headers: flattenHeaders(a.res.headers), body });
  }
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
    new ConsulExchange(config, label, where, opts, resolve, reject).start(plan);
  });
}
