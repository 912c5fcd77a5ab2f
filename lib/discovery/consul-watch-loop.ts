/**
 * The request loop every Consul-backed discovery source shares: one request in flight, the
 * blocking-index rules, the rate limit, jittered backoff after failures, `refresh()` and an
 * abortable `stop()`. A source supplies what to ask (path, query) and how to read the answer.
 *
 * @module
 */
import type { Agent } from 'node:http';
import { DiscoveryError } from '../errors.js';
import { backoffDelay } from '../retry/backoff.js';
import type { TopologyUpdate } from '../topology/node.js';
import type { DiscoveryListener } from './discovery-source.js';
import { nextIndex, parseConsulIndex, shouldWait } from './blocking-index.js';
import { describeConsulConfig } from './consul-config.js';
import type { ConsulConfig } from './consul-config.js';
import { consulGet, createConsulAgent } from './consul-http.js';
import type { ConsulQuery, ConsulResponse } from './consul-http.js';

/** Longest blocking wait Consul accepts (10 minutes). */
export const MAX_WAIT_SECONDS = 600;

/** Log levels used by {@link DiscoveryLogger}. */
export type DiscoveryLogLevel = 'debug' | 'info' | 'warn' | 'error';

/** A logging callback. Messages and fields never contain the token or other secrets. */
export type DiscoveryLogger = (level: DiscoveryLogLevel, message: string, fields?: Record<string, unknown>) => void;

/** The transport a Consul source uses; {@link consulGet} unless a test injects a fake. */
export type ConsulTransport = typeof consulGet;

/** The settings every Consul-backed source shares (validated by {@link ConsulWatchLoop}). */
export interface ConsulWatchSettings {
  /** Where Consul is and how to talk to it. */
  readonly consul: ConsulConfig;
  /** Blocking wait sent as `?wait=<n>s`: a whole number in 1..600 (unused when polling). */
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

/** What a source makes of one answer. */
export interface Interpretation {
  /** The complete topology to report; `undefined` to report nothing for this answer. */
  readonly update: TopologyUpdate | undefined;
  /** One secret-free reason per entry that was skipped as malformed. */
  readonly skipped: readonly string[];
}

/** What a source asks and how it reads the answers. */
export interface ConsulWatchSpec {
  /**
   * `blocking`: every request after the first blocks on the last `X-Consul-Index`
   * (`?index=&wait=`). `polling`: every request is non-blocking and the next one starts
   * `pollIntervalMillis` after an answer (for endpoints that cannot block, e.g. prepared
   * query execution).
   */
  readonly mode: 'blocking' | 'polling';
  /** Delay between an answer and the next request when polling, ms. */
  readonly pollIntervalMillis?: number | undefined;
  /** Absolute, URL-encoded path, e.g. `/v1/health/service/pglab`. */
  readonly path: string;
  /** The request's own parameters (`index`/`wait` are added by the loop). */
  readonly query: ConsulQuery;
  /** Treat a 404 as an answer (with `body: null`), e.g. a KV prefix with no keys. */
  readonly acceptNotFound?: boolean | undefined;
  /** Subject of log messages, e.g. `Consul health discovery`. */
  readonly what: string;
  /** What an entry is called in skip messages, e.g. `Consul health entry`. */
  readonly entryLabel: string;
  /** Start of a wrapped failure message, e.g. `Consul health query for "pglab"`. */
  readonly failureLabel: string;
  /** Fields added to every log line (the loop adds `consul`), e.g. `{ source, service }`. */
  readonly logFields: Readonly<Record<string, unknown>>;
  /**
   * Reads an answer. Throwing makes the round a failed one (reported through `onError`,
   * retried after the backoff); the last good topology stays in force.
   *
   * @param response the answer
   * @param index its `X-Consul-Index` (0 when missing or unusable)
   */
  readonly interpret: (response: ConsulResponse, index: number) => Interpretation;
}

interface Flight {
  readonly controller: AbortController;
  done: Promise<void>;
}

function assertRange(owner: string, name: string, value: number, min: number, max = Number.MAX_SAFE_INTEGER): void {
  if (!Number.isFinite(value) || value < min || value > max) {
    throw new RangeError(`${owner}: ${name} must be a number in ${min}..${max}, got ${value}`);
  }
}

/**
 * Validates the shared settings; throws the error a source's constructor should throw.
 *
 * @param owner class name used in messages, e.g. `ConsulHealthSource`
 * @param settings the settings to check
 * @param blocking whether `waitSeconds` is used
 * @throws RangeError on an out-of-range value
 *
 * @example
 * ```ts
 * validateWatchSettings('PatroniKvSource', settings, true);
 * ```
 */
export function validateWatchSettings(owner: string, settings: ConsulWatchSettings, blocking: boolean): void {
  if (blocking) {
    if (!Number.isInteger(settings.waitSeconds)) {
      throw new RangeError(`${owner}: waitSeconds must be a whole number, got ${settings.waitSeconds}`);
    }
    assertRange(owner, 'waitSeconds', settings.waitSeconds, 1, MAX_WAIT_SECONDS);
  }
  assertRange(owner, 'requestTimeoutMillis', settings.requestTimeoutMillis, 1);
  assertRange(owner, 'minIntervalMillis', settings.minIntervalMillis, 0);
  assertRange(owner, 'backoff.initialMillis', settings.backoff.initialMillis, 0);
  assertRange(owner, 'backoff.maxMillis', settings.backoff.maxMillis, settings.backoff.initialMillis);
}

/**
 * One Consul request loop, as described in the module comment. Not a discovery source by
 * itself: sources own one and delegate `start`/`refresh`/`stop`/`requestCount` to it.
 *
 * - Blocking mode: the first request (and the first after an error, a refresh or an index
 *   reset) uses index 0 and does not block; later ones block on the last `X-Consul-Index`
 *   (`nextIndex`: reset to 0 when it goes backwards). Polling mode: every request is
 *   non-blocking; the next starts `pollIntervalMillis` after an answer.
 * - Every successful answer goes through `spec.interpret`; its update (if any) is reported
 *   through `listener.onUpdate` (changed or not; the consumer dedupes), skipped entries
 *   through `onSkippedEntry` and a debug log.
 * - A failed round (network error, timeout, non-2xx, non-JSON, `interpret` threw) is reported
 *   through `listener.onError` with the attempt number and the delay before the next try
 *   (`backoffDelay`, full jitter); the loop never gives up until `stop()`.
 * - Two requests never start closer than `minIntervalMillis`.
 * - Listener and logger exceptions are caught and logged; nothing escapes as an unhandled
 *   rejection. Timers are `unref()`ed, and so is the socket of a parked blocking request.
 */
export class ConsulWatchLoop {
  readonly #settings: ConsulWatchSettings;
  readonly #spec: ConsulWatchSpec;
  readonly #transport: ConsulTransport;
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
  /** Whether the last request skipped the rate limit (see #schedule). */
  #skipped = false;
  #timer: NodeJS.Timeout | undefined;
  #inFlight: Flight | undefined;
  #refreshRequested = false;
  #stopping: Promise<void> | undefined;

  /**
   * @param settings shared settings (validate them with {@link validateWatchSettings} first)
   * @param spec what to ask and how to read it
   * @param transport the HTTP transport; it must honour `signal`
   */
  constructor(settings: ConsulWatchSettings, spec: ConsulWatchSpec, transport: ConsulTransport = consulGet) {
    if (spec.mode === 'polling') assertRange(spec.what, 'pollIntervalMillis', spec.pollIntervalMillis ?? Number.NaN, 0);
    this.#settings = settings;
    this.#spec = spec;
    this.#transport = transport;
    this.#now = settings.now ?? Date.now;
    this.#random = settings.random ?? Math.random;
    this.#where = describeConsulConfig(settings.consul);
  }

  /** Number of requests started so far. */
  get requestCount(): number {
    return this.#requestCount;
  }

  /** Whether the loop was started and not stopped. */
  get running(): boolean {
    return this.#state === 'running';
  }

  /**
   * Starts the loop; the first request (index 0) is sent at once.
   *
   * @param listener receives every answer and every failed round
   * @param owner class name for the error message
   * @throws Error when called twice or after {@link ConsulWatchLoop.stop}
   */
  start(listener: DiscoveryListener, owner: string): void {
    if (this.#state !== 'new') throw new Error(`${owner}: start() may be called only once`);
    this.#state = 'running';
    this.#listener = listener;
    this.#agent = createConsulAgent(this.#settings.consul);
    this.log('debug', `starting ${this.#spec.what}`);
    this.#fire();
  }

  /**
   * Asks for a fresh answer. When the loop is waiting (rate limit, poll interval or backoff),
   * the next request is sent as soon as `minIntervalMillis` allows, without `index` so Consul
   * answers at once. When a request is in flight, nothing happens: a blocking request returns
   * as soon as anything changes anyway, and a polling one is fresh.
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
      this.log('debug', `stopped ${this.#spec.what}`);
    })();
    return this.#stopping;
  }

  /**
   * Reports an update outside the request cycle (e.g. after a source confirmed something on
   * its own). No-op unless running; a throwing listener is logged.
   *
   * @param update the complete topology
   */
  emit(update: TopologyUpdate): void {
    this.#call('onUpdate', (l) => l.onUpdate(update));
  }

  /**
   * Logs through the settings' logger with the loop's fields; never throws.
   *
   * @param level severity
   * @param message secret-free text
   * @param fields extra fields
   */
  log(level: DiscoveryLogLevel, message: string, fields: Record<string, unknown> = {}): void {
    const logger = this.#settings.logger;
    if (logger === undefined) return;
    try {
      logger(level, message, { ...this.#spec.logFields, consul: this.#where, ...fields });
    } catch {
      // A broken logger must not break discovery.
    }
  }

  /** Delay before the next request: at least `minDelay`, and the rate limit. Arms the timer. */
  #schedule(minDelay: number, advanced = false): number {
    const min = this.#settings.minIntervalMillis;
    let rateDelay = 0;
    // An answer that moved the index forward is a real change: the next request blocks on
    // the new index, so sending it at once cannot hot-loop. Let one such request skip the
    // rate limit (a failover moves the index several times within ~100 ms); the one after
    // it is spaced again, so the sustained rate stays bounded.
    const skip = advanced && !this.#skipped;
    this.#skipped = skip;
    if (!skip && this.#lastRequestAt !== undefined) {
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
    const { waitSeconds, requestTimeoutMillis, consul } = this.#settings;
    const blocking = this.#spec.mode === 'blocking' && !this.#refreshRequested && shouldWait(this.#index);
    this.#refreshRequested = false;
    const waitMillis = waitSeconds * 1000;
    const query: Record<string, string | true | undefined> = { ...this.#spec.query };
    if (this.#spec.mode === 'blocking') {
      query['index'] = blocking ? String(this.#index) : undefined;
      query['wait'] = blocking ? `${waitSeconds}s` : undefined;
    }
    const timeoutMillis = blocking ? waitMillis + Math.ceil(waitMillis / 16) + requestTimeoutMillis : requestTimeoutMillis;
    const controller = new AbortController();
    this.#requestCount += 1;
    this.#lastRequestAt = this.#now();
    let pending: Promise<ConsulResponse>;
    try {
      // Only a parked watch is unref()ed: a short non-blocking request (bounded by
      // requestTimeoutMillis) keeps the process alive, so a script awaiting its first
      // topology does not exit under its own feet.
      const opts = { signal: controller.signal, timeoutMillis, agent: this.#agent, unref: blocking };
      pending = this.#transport(consul, this.#spec.path, query, this.#spec.acceptNotFound === true ? { ...opts, acceptNotFound: true } : opts);
    } catch (err) {
      pending = Promise.reject(err);
    }
    const flight: Flight = { controller, done: Promise.resolve() };
    this.#inFlight = flight;
    flight.done = pending.then(
      (res) => this.#onAnswer(flight, res),
      (err: unknown) => this.#onFailure(flight, err),
    );
  }

  /** Clears `flight` if it is current; false when the loop stopped meanwhile. */
  #land(flight: Flight): boolean {
    if (this.#inFlight === flight) this.#inFlight = undefined;
    return this.#state === 'running';
  }

  #onAnswer(flight: Flight, res: ConsulResponse): void {
    if (!this.#land(flight)) return;
    const header = res.headers['x-consul-index'];
    const reported = parseConsulIndex(header);
    let result: Interpretation;
    try {
      result = this.#spec.interpret(res, reported ?? 0);
    } catch (err) {
      this.#failed(err);
      return;
    }
    const previous = this.#index;
    if (this.#spec.mode === 'blocking') {
      this.#index = nextIndex(previous, header);
      if (reported === undefined) {
        this.log('warn', 'Consul answer has no usable X-Consul-Index; polling without blocking', { index: previous });
      } else if (reported > 0 && reported < previous) {
        this.log('debug', 'X-Consul-Index went backwards; resetting the blocking index', { previous, index: reported });
      }
    }
    const failures = this.#failures;
    this.#failures = 0;
    const advanced = this.#spec.mode === 'blocking' && previous > 0 && reported !== undefined && reported > previous;
    this.#schedule(this.#spec.mode === 'polling' ? (this.#spec.pollIntervalMillis ?? 0) : 0, advanced);
    if (failures > 0) this.log('info', `${this.#spec.what} recovered`, { failedAttempts: failures });
    this.log('debug', `${this.#spec.what}: answer`, {
      index: reported ?? 0,
      status: res.status,
      nodes: result.update?.nodes.length,
      skipped: result.skipped.length,
    });
    for (const reason of result.skipped) {
      this.log('debug', `skipped ${this.#spec.entryLabel}: ${reason}`);
      this.#call('onSkippedEntry', (l) => l.onSkippedEntry?.(reason));
    }
    const update = result.update;
    if (update !== undefined) this.#call('onUpdate', (l) => l.onUpdate(update));
  }

  #onFailure(flight: Flight, err: unknown): void {
    if (!this.#land(flight)) return;
    this.#failed(err);
  }

  #failed(err: unknown): void {
    this.#failures += 1;
    this.#index = 0;
    const attempt = this.#failures;
    const retryInMillis = this.#schedule(backoffDelay(attempt, this.#settings.backoff, this.#random));
    const error =
      err instanceof DiscoveryError
        ? err
        : new DiscoveryError(`${this.#spec.failureLabel} at ${this.#where} failed: ${err instanceof Error ? err.message : String(err)}`, {
            cause: err,
          });
    this.log('warn', `${this.#spec.what} failed: ${error.message}`, { attempt, retryInMillis, status: error.status });
    this.#call('onError', (l) => l.onError(error, { attempt, retryInMillis }));
  }

  /** Calls the listener unless stopped; a throwing listener is logged, never propagated. */
  #call(what: string, fn: (listener: DiscoveryListener) => void): void {
    const listener = this.#listener;
    if (this.#state !== 'running' || listener === undefined) return;
    try {
      fn(listener);
    } catch (err) {
      this.log('error', `discovery listener ${what} threw: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
}
