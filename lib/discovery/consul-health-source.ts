/**
 * The Consul discovery source: one blocking-query loop on `/v1/health/service/<service>`.
 *
 * @module
 */
import type { Agent } from 'node:http';
import { DiscoveryError } from '../errors.js';
import { backoffDelay } from '../retry/backoff.js';
import type { DiscoveryListener, DiscoverySource } from './discovery-source.js';
import { nextIndex, parseConsulIndex, shouldWait } from './blocking-index.js';
import { describeConsulConfig } from './consul-config.js';
import type { ConsulConfig } from './consul-config.js';
import { parseHealthEntries } from './consul-entries.js';
import { consulGet, createConsulAgent } from './consul-http.js';
import type { ConsulResponse } from './consul-http.js';

/** The `source` label of every update this source emits. */
export const CONSUL_HEALTH_SOURCE = 'consul-health';

/** Longest blocking wait Consul accepts (10 minutes). */
export const MAX_WAIT_SECONDS = 600;

/** Log levels used by {@link DiscoveryLogger}. */
export type DiscoveryLogLevel = 'debug' | 'info' | 'warn' | 'error';

/** A logging callback. Messages and fields never contain the token or other secrets. */
export type DiscoveryLogger = (level: DiscoveryLogLevel, message: string, fields?: Record<string, unknown>) => void;

/** The transport {@link ConsulHealthSource} uses; {@link consulGet} unless a test injects a fake. */
export type ConsulTransport = typeof consulGet;

/** Options of {@link ConsulHealthSource}. */
export interface ConsulHealthSourceOptions {
  /** Where Consul is and how to talk to it. */
  readonly consul: ConsulConfig;
  /** Consul service name (the Patroni scope, normalised). */
  readonly service: string;
  /** Tags marking the primary (case-insensitive), e.g. `['master', 'primary']`. */
  readonly primaryTags: readonly string[];
  /** Tags marking replicas (case-insensitive), e.g. `['replica']`. */
  readonly replicaTags: readonly string[];
  /** Blocking wait sent as `?wait=<n>s`: a whole number in 1..600. */
  readonly waitSeconds: number;
  /**
   * Deadline of a non-blocking request, in ms. A blocking request gets
   * `wait + wait/16` (Consul's maximum jitter) on top of it.
   */
  readonly requestTimeoutMillis: number;
  /** No two requests start closer together than this, in ms (even when Consul answers at once). */
  readonly minIntervalMillis: number;
  /** Backoff window after failed rounds (full jitter, see `backoffDelay`). */
  readonly backoff: { readonly initialMillis: number; readonly maxMillis: number };
  /** Receives debug/info/warn/error messages. Defaults to none. */
  readonly logger?: DiscoveryLogger | undefined;
  /** Clock for the rate limit, in ms. Defaults to `Date.now`. */
  readonly now?: (() => number) | undefined;
  /** Randomness for the backoff jitter, `[0, 1)`. Defaults to `Math.random`. */
  readonly random?: (() => number) | undefined;
}

interface Flight {
  readonly controller: AbortController;
  readonly blocking: boolean;
  done: Promise<void>;
}

function assertRange(name: string, value: number, min: number, max = Number.MAX_SAFE_INTEGER): void {
  if (!Number.isFinite(value) || value < min || value > max) {
    throw new RangeError(`ConsulHealthSource: ${name} must be a number in ${min}..${max}, got ${value}`);
  }
}

/**
 * Follows a service's passing instances in Consul with one blocking query at a time:
 * `GET /v1/health/service/<service>?passing&index=<i>&wait=<w>s`.
 *
 * - The first request (and the first after an error, a refresh or an index reset) uses
 *   index 0 and does not block; later ones block on the last `X-Consul-Index`
 *   (see `nextIndex`: reset to 0 when it goes backwards).
 * - Every successful answer is reported through `listener.onUpdate` (changed or not; the
 *   consumer dedupes); skipped entries through `onSkippedEntry` and a debug log.
 * - A failed round (network error, timeout, non-2xx, non-JSON, body not an array) is reported
 *   through `listener.onError` with the attempt number and the delay before the next try,
 *   computed with `backoffDelay` (full jitter); the source never gives up until `stop()`.
 * - Two requests never start closer than `minIntervalMillis`, whatever Consul does.
 * - Listener and logger exceptions are caught and logged; nothing escapes as an unhandled
 *   rejection. Timers are `unref()`ed, and so is the socket of a parked blocking request: a
 *   started source keeps the process alive only during its short non-blocking requests
 *   (the first one, and those after an error, a reset or a refresh). Code that waits for a
 *   topology must hold its own ref'd timer (its deadline) if the process should wait too.
 *
 * p-retry was considered for the retry loop and not used: `onError` must be told the delay
 * before it starts, `refresh()` must be able to cut a backoff short, and the loop never
 * ends — p-retry computes its delays internally and only cancels by rejecting.
 *
 * @example
 * ```ts
 * const source = new ConsulHealthSource({
 *   consul, service: 'pglab', primaryTags: ['master', 'primary'], replicaTags: ['replica'],
 *   waitSeconds: 30, requestTimeoutMillis: 5_000, minIntervalMillis: 100,
 *   backoff: { initialMillis: 100, maxMillis: 5_000 },
 * });
 * source.start({
 *   onUpdate: (update) => topology.apply(update),
 *   onError: (err, { retryInMillis }) => emit('discoveryError', err, retryInMillis),
 * });
 * // …
 * await source.stop();
 * ```
 */
export class ConsulHealthSource implements DiscoverySource {
  readonly #options: ConsulHealthSourceOptions;
  readonly #transport: ConsulTransport;
  readonly #path: string;
  readonly #now: () => number;
  readonly #random: () => number;
  readonly #where: string;
  #state: 'new' | 'running' | 'stopped' = 'new';
  #listener: DiscoveryListener | undefined;
  #agent: Agent | undefined;
  #index = 0;
  #failures = 0;
  #requestCount = 0;
  #lastRequestAt: number | undefined;
  #timer: NodeJS.Timeout | undefined;
  #inFlight: Flight | undefined;
  #refreshRequested = false;
  #stopping: Promise<void> | undefined;

  /**
   * @param options see {@link ConsulHealthSourceOptions}; validated here
   * @param transport the HTTP transport (tests inject a fake); it must honour `signal`
   * @throws TypeError / RangeError on invalid options
   */
  constructor(options: ConsulHealthSourceOptions, transport: ConsulTransport = consulGet) {
    if (typeof options.service !== 'string' || options.service.length === 0) {
      throw new TypeError('ConsulHealthSource: service must be a non-empty string');
    }
    if (!Number.isInteger(options.waitSeconds)) {
      throw new RangeError(`ConsulHealthSource: waitSeconds must be a whole number, got ${options.waitSeconds}`);
    }
    assertRange('waitSeconds', options.waitSeconds, 1, MAX_WAIT_SECONDS);
    assertRange('requestTimeoutMillis', options.requestTimeoutMillis, 1);
    assertRange('minIntervalMillis', options.minIntervalMillis, 0);
    assertRange('backoff.initialMillis', options.backoff.initialMillis, 0);
    assertRange('backoff.maxMillis', options.backoff.maxMillis, options.backoff.initialMillis);
    this.#options = options;
    this.#transport = transport;
    this.#path = `/v1/health/service/${encodeURIComponent(options.service)}`;
    this.#now = options.now ?? Date.now;
    this.#random = options.random ?? Math.random;
    this.#where = describeConsulConfig(options.consul);
  }

  /** Number of requests started so far. */
  get requestCount(): number {
    return this.#requestCount;
  }

  /**
   * Starts the loop; the first request (index 0) is sent at once.
   *
   * @param listener receives every answer and every failed round
   * @throws Error when called twice or after {@link ConsulHealthSource.stop}
   */
  start(listener: DiscoveryListener): void {
    if (this.#state !== 'new') throw new Error('ConsulHealthSource: start() may be called only once');
    this.#state = 'running';
    this.#listener = listener;
    this.#agent = createConsulAgent(this.#options.consul);
    this.#log('debug', 'starting Consul health discovery');
    this.#fire();
  }

  /**
   * Asks for a fresh answer. When the loop is waiting (rate limit or backoff after an error),
   * the next request is sent as soon as `minIntervalMillis` allows, without `index` so Consul
   * answers at once. When a request is in flight, nothing happens: a blocking request returns
   * as soon as anything changes anyway.
   */
  refresh(): void {
    if (this.#state !== 'running' || this.#inFlight !== undefined || this.#timer === undefined) return;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#refreshRequested = true;
    this.#schedule(0);
  }

  /**
   * Stops the loop: aborts the request in flight at once, clears timers and closes the kept
   * alive connections. No listener callback is made after this is called. Idempotent.
   *
   * @returns resolves when nothing is left running
   */
  stop(): Promise<void> {
    if (this.#stopping !== undefined) return this.#stopping;
    this.#state = 'stopped';
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    const flight = this.#inFlight;
    flight?.controller.abort(new DiscoveryError('discovery source stopped'));
    this.#stopping = (async () => {
      if (flight !== undefined) await flight.done;
      this.#agent?.destroy();
      this.#agent = undefined;
      this.#log('debug', 'stopped Consul health discovery');
    })();
    return this.#stopping;
  }

  /** Delay before the next request: at least `minDelay`, and the rate limit. Arms the timer. */
  #schedule(minDelay: number): number {
    const min = this.#options.minIntervalMillis;
    let rateDelay = 0;
    if (this.#lastRequestAt !== undefined) {
      const since = this.#now() - this.#lastRequestAt;
      // A clock that went backwards cannot tell how long ago it was: wait the full interval.
      rateDelay = since < 0 ? min : Math.max(0, min - since);
    }
    const delay = Math.max(minDelay, rateDelay);
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#fire();
    }, delay);
    this.#timer.unref();
    return delay;
  }

  #fire(): void {
    if (this.#state !== 'running') return;
    const blocking = !this.#refreshRequested && shouldWait(this.#index);
    this.#refreshRequested = false;
    const { waitSeconds, requestTimeoutMillis, consul } = this.#options;
    const waitMillis = waitSeconds * 1000;
    const query = {
      passing: true as const,
      index: blocking ? String(this.#index) : undefined,
      wait: blocking ? `${waitSeconds}s` : undefined,
    };
    const timeoutMillis = blocking ? waitMillis + Math.ceil(waitMillis / 16) + requestTimeoutMillis : requestTimeoutMillis;
    const controller = new AbortController();
    this.#requestCount += 1;
    this.#lastRequestAt = this.#now();
    let pending: Promise<ConsulResponse>;
    try {
      // Only a parked watch is unref()ed: a short non-blocking request (bounded by
      // requestTimeoutMillis) keeps the process alive, so a script awaiting its first
      // topology does not exit under its own feet.
      pending = this.#transport(consul, this.#path, query, { signal: controller.signal, timeoutMillis, agent: this.#agent, unref: blocking });
    } catch (err) {
      pending = Promise.reject(err);
    }
    const flight: Flight = { controller, blocking, done: Promise.resolve() };
    this.#inFlight = flight;
    flight.done = pending.then(
      (res) => this.#onAnswer(flight, res),
      (err: unknown) => this.#onFailure(flight, err),
    );
  }

  /** Clears `flight` if it is current; false when the source stopped meanwhile. */
  #land(flight: Flight): boolean {
    if (this.#inFlight === flight) this.#inFlight = undefined;
    return this.#state === 'running';
  }

  #onAnswer(flight: Flight, res: ConsulResponse): void {
    if (!this.#land(flight)) return;
    let parsed: ReturnType<typeof parseHealthEntries>;
    try {
      parsed = parseHealthEntries(res.body, { primary: this.#options.primaryTags, replica: this.#options.replicaTags });
    } catch (err) {
      this.#failed(err);
      return;
    }
    const header = res.headers['x-consul-index'];
    const reported = parseConsulIndex(header);
    const previous = this.#index;
    this.#index = nextIndex(previous, header);
    if (reported === undefined) {
      this.#log('warn', 'Consul answer has no usable X-Consul-Index; polling without blocking', { index: previous });
    } else if (reported > 0 && reported < previous) {
      this.#log('debug', 'X-Consul-Index went backwards; resetting the blocking index', { previous, index: reported });
    }
    const failures = this.#failures;
    this.#failures = 0;
    this.#schedule(0);
    if (failures > 0) this.#log('info', 'Consul health discovery recovered', { failedAttempts: failures });
    this.#log('debug', 'Consul health answer', { index: reported ?? 0, nodes: parsed.nodes.length, skipped: parsed.skipped.length });
    for (const reason of parsed.skipped) {
      this.#log('debug', `skipped Consul health entry: ${reason}`);
      this.#call('onSkippedEntry', (l) => l.onSkippedEntry?.(reason));
    }
    const nodes = parsed.nodes;
    this.#call('onUpdate', (l) => l.onUpdate({ source: CONSUL_HEALTH_SOURCE, index: reported ?? 0, nodes }));
  }

  #onFailure(flight: Flight, err: unknown): void {
    if (!this.#land(flight)) return;
    this.#failed(err);
  }

  #failed(err: unknown): void {
    this.#failures += 1;
    this.#index = 0;
    const attempt = this.#failures;
    const retryInMillis = this.#schedule(backoffDelay(attempt, this.#options.backoff, this.#random));
    const error =
      err instanceof DiscoveryError
        ? err
        : new DiscoveryError(
            `Consul health query for "${this.#options.service}" at ${this.#where} failed: ${err instanceof Error ? err.message : String(err)}`,
            { cause: err },
          );
    this.#log('warn', `Consul health discovery failed: ${error.message}`, { attempt, retryInMillis, status: error.status });
    this.#call('onError', (l) => l.onError(error, { attempt, retryInMillis }));
  }

  /** Calls the listener unless stopped; a throwing listener is logged, never propagated. */
  #call(what: string, fn: (listener: DiscoveryListener) => void): void {
    const listener = this.#listener;
    if (this.#state !== 'running' || listener === undefined) return;
    try {
      fn(listener);
    } catch (err) {
      this.#log('error', `discovery listener ${what} threw: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  #log(level: DiscoveryLogLevel, message: string, fields: Record<string, unknown> = {}): void {
    const logger = this.#options.logger;
    if (logger === undefined) return;
    try {
      logger(level, message, { source: CONSUL_HEALTH_SOURCE, consul: this.#where, service: this.#options.service, ...fields });
    } catch {
      // A broken logger must not break discovery.
    }
  }
}
