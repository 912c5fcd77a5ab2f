/**
 * The request loop every Consul-backed discovery source shares: one request in flight, the
 * blocking-index rules, the rate limit, jittered backoff after failures, `refresh()` and an
 * abortable `stop()`. A source supplies what to ask (path, query) and how to read the answer.
 *
 * @module
 */
import type { Agent } from 'node:http';
import { DiscoveryError } from '../errors.js';
import type { TopologyUpdate } from '../topology/node.js';
import { callListener } from './discovery-source.js';
import type { DiscoveryListener } from './discovery-source.js';
import { nextIndex, parseConsulIndex, shouldWait } from './blocking-index.js';
import { describeConsulConfig } from './consul-config.js';
import { ConsulThrottleError, consulGet, createConsulAgent, destroyConsulAgent } from './consul-http.js';
import type { ConsulGetOptions, ConsulResponse } from './consul-http.js';
import { RequestBudget, publishDiscoveryRequest } from './request-budget.js';
import { classifyIndex, paceNextRequest, parseRetryAfter, rateLimitRemaining } from './request-pacing.js';
import type { IndexProgress, PacingDecision, RequestOutcome } from './request-pacing.js';
import { DEFAULT_CONNECT_TIMEOUT_MILLIS, assertRange } from './consul-watch-settings.js';
import type { ConsulTransport, ConsulWatchSettings, ConsulWatchSpec, DiscoveryLogLevel, Interpretation } from './consul-watch-settings.js';

export { DEFAULT_CONNECT_TIMEOUT_MILLIS, MAX_WAIT_SECONDS, validateWatchSettings } from './consul-watch-settings.js';
export type {
  ConsulTransport,
  ConsulWatchSettings,
  ConsulWatchSpec,
  DiscoveryLogger,
  DiscoveryLogLevel,
  Interpretation,
} from './consul-watch-settings.js';

interface Flight {
  readonly controller: AbortController;
  done: Promise<void>;
  /** When it started (loop clock). */
  readonly startedAt: number;
  /** Whether it carried `?index=&wait=`. */
  readonly blocking: boolean;
  /** The index it sent (0 for a non-blocking one). */
  readonly sent: number;
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
 *   through `listener.onError` with the attempt number and the delay before the next try.
 *   The loop never gives up until `stop()`.
 * - The delay before every request is {@link paceNextRequest}'s decision: the rate limit
 *   (`minIntervalMillis`, per `budget`, i.e. per Pool), full-jitter backoff after errors and
 *   index anomalies, `Retry-After` on 429/503. Every request is published on the
 *   `pg-consul:discovery:request` diagnostics channel with the delay chosen.
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
  readonly #budget: RequestBudget;
  readonly #token = Symbol('ConsulWatchLoop');
  #state: 'new' | 'running' | 'stopped' = 'new';
  #listener: DiscoveryListener | undefined;
  #agent: Agent | undefined;
  #index = 0;
  #failures = 0;
  #anomalies = 0;
  #requestCount = 0;
  /** Whether the pending timer is a backoff (errors or anomalies) that refresh() must not cut. */
  #backingOff = false;
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
    this.#budget = settings.budget ?? new RequestBudget();
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
   * Starts the loop; the first request (index 0) is sent as soon as the Pool's rate limit
   * allows (at once for the Pool's first loop).
   *
   * @param listener receives every answer and every failed round
   * @param owner class name for the error message
   * @throws Error when called twice or after {@link ConsulWatchLoop.stop}
   */
  start(listener: DiscoveryListener, owner: string): void {
    if (this.#state !== 'new') throw new Error(`${owner}: start() may be called only once`);
    this.#state = 'running';
    this.#listener = listener;
    this.#budget.join(this.#token);
    this.#agent = createConsulAgent(this.#settings.consul);
    this.log('debug', `starting ${this.#spec.what}`);
    this.#fire();
  }

  /**
   * Asks for a fresh answer. When the loop is waiting on the rate limit or the poll interval,
   * the next request is sent as soon as `minIntervalMillis` allows, without `index` so Consul
   * answers at once. During a backoff (after errors or index anomalies, or a `Retry-After`)
   * the wait is kept — refreshing must not multiply the requests against a Consul in trouble —
   * and only the next request is made non-blocking. When a request is in flight, nothing
   * happens: a blocking request returns as soon as anything changes anyway, and a polling one
   * is fresh.
   */
  refresh(): void {
    if (this.#state !== 'running' || this.#inFlight !== undefined || this.#timer === undefined) return;
    this.#refreshRequested = true;
    if (this.#backingOff) return;
    clearTimeout(this.#timer);
    this.#arm(rateLimitRemaining(this.#settings.minIntervalMillis, this.#budget.sinceLastStart(this.#now())));
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
    this.#budget.leave(this.#token);
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    const flight = this.#inFlight;
    flight?.controller.abort(new DiscoveryError('discovery source stopped'));
    this.#stopping = (async () => {
      if (flight !== undefined) await flight.done;
      const agent = this.#agent;
      this.#agent = undefined;
      if (agent !== undefined) await destroyConsulAgent(agent);
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

  /** Arms the timer for the next request. */
  #arm(delay: number): void {
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#fire();
    }, delay);
    this.#timer.unref();
  }

  /**
   * Decides the delay after `flight` ended with `outcome`, arms the timer and publishes the
   * request on the diagnostics channel.
   */
  #pace(flight: Flight, outcome: RequestOutcome, status: number | undefined): PacingDecision {
    const now = this.#now();
    const decision = paceNextRequest(
      {
        outcome,
        failures: this.#failures,
        anomalies: this.#anomalies,
        sinceLastStartMillis: this.#budget.sinceLastStart(now),
        random: this.#random(),
      },
      {
        minIntervalMillis: this.#settings.minIntervalMillis,
        // k loops of one Pool back off k times longer: the Pool's rate under errors stays that of one loop.
        backoff: { initialMillis: this.#settings.backoff.initialMillis, maxMillis: this.#settings.backoff.maxMillis * Math.max(1, this.#budget.members) },
        retryAfterMaxMillis: this.#settings.retryAfterMaxMillis,
        pollIntervalMillis: this.#spec.pollIntervalMillis,
      },
    );
    this.#failures = decision.failures;
    this.#anomalies = decision.anomalies;
    this.#backingOff = decision.reason === 'backoff' || decision.reason === 'retry-after';
    this.#arm(decision.delayMillis);
    publishDiscoveryRequest({
      budgetId: this.#budget.id,
      endpoint: this.#spec.path,
      blocking: flight.blocking,
      status,
      outcome: outcome.kind,
      index: outcome.kind === 'answer' ? outcome.index : undefined,
      startedAt: flight.startedAt,
      durationMillis: Math.max(0, now - flight.startedAt),
      delayMillis: decision.delayMillis,
      reason: decision.reason,
      failures: decision.failures,
      anomalies: decision.anomalies,
    });
    return decision;
  }

  #fire(): void {
    if (this.#state !== 'running') return;
    // Another loop of the same Pool may have sent a request meanwhile.
    const now = this.#now();
    const wait = this.#budget.admit(this.#token, now, this.#settings.minIntervalMillis);
    if (wait > 0) {
      this.#arm(wait);
      return;
    }
    const { waitSeconds, requestTimeoutMillis, consul } = this.#settings;
    const blocking = this.#spec.mode === 'blocking' && !this.#refreshRequested && shouldWait(this.#index);
    this.#refreshRequested = false;
    this.#backingOff = false;
    const waitMillis = waitSeconds * 1000;
    const query: Record<string, string | true | undefined> = { ...this.#spec.query };
    if (this.#spec.mode === 'blocking') {
      query['index'] = blocking ? String(this.#index) : undefined;
      query['wait'] = blocking ? `${waitSeconds}s` : undefined;
    }
    // Consul holds a blocking read for `wait` plus up to wait/16 of jitter; the request
    // timeout comes on top as the margin for the answer itself.
    const timeoutMillis = blocking ? waitMillis + Math.ceil(waitMillis / 16) + requestTimeoutMillis : requestTimeoutMillis;
    const controller = new AbortController();
    this.#requestCount += 1;
    let pending: Promise<ConsulResponse>;
    try {
      // Only a parked watch is unref()ed: a short non-blocking request (bounded by
      // requestTimeoutMillis) keeps the process alive, so a script awaiting its first
      // topology does not exit under its own feet.
      const opts: ConsulGetOptions = {
        signal: controller.signal,
        timeoutMillis,
        connectTimeoutMillis: this.#settings.connectTimeoutMillis ?? DEFAULT_CONNECT_TIMEOUT_MILLIS,
        agent: this.#agent,
        unref: blocking,
        ...(this.#spec.acceptNotFound === true ? { acceptNotFound: true } : {}),
      };
      pending = this.#transport(consul, this.#spec.path, query, opts);
    } catch (err) {
      pending = Promise.reject(err);
    }
    const flight: Flight = { controller, done: Promise.resolve(), startedAt: now, blocking, sent: blocking ? this.#index : 0 };
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
      this.#failed(flight, err);
      return;
    }
    if (result.update !== undefined && result.update.nodes.length === 0 && result.skipped.length > 0) {
      // Nothing usable and something malformed: an invalid answer, not "the cluster is empty".
      // Reporting it would wipe the topology; back off like any other failed round instead.
      this.#failed(
        flight,
        new DiscoveryError(`${this.#spec.failureLabel} at ${this.#where}: every ${this.#spec.entryLabel} in the answer was malformed (${result.skipped[0] ?? ''})`, {
          status: res.status,
        }),
      );
      return;
    }
    const previous = this.#index;
    let progress: IndexProgress = 'polled';
    if (this.#spec.mode === 'blocking') {
      this.#index = nextIndex(previous, header);
      progress = classifyIndex(flight.blocking, flight.sent, reported, this.#now() - flight.startedAt, this.#settings.waitSeconds * 1000);
      if (progress === 'missing') {
        this.log('warn', 'Consul answer has no usable X-Consul-Index; polling without blocking', { index: previous });
      } else if (progress === 'backwards') {
        this.log('debug', 'X-Consul-Index went backwards; resetting the blocking index', { previous, index: reported });
      } else if (progress === 'early-unchanged') {
        this.log('debug', 'Consul returned a blocking read early with the same index; backing off', { index: reported });
      }
    }
    const failures = this.#failures;
    const decision = this.#pace(flight, { kind: 'answer', index: progress }, res.status);
    if (failures > 0) this.log('info', `${this.#spec.what} recovered`, { failedAttempts: failures });
    this.log('debug', `${this.#spec.what}: answer`, {
      index: reported ?? 0,
      status: res.status,
      nodes: result.update?.nodes.length,
      skipped: result.skipped.length,
      nextInMillis: decision.delayMillis,
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
    this.#failed(flight, err);
  }

  #failed(flight: Flight, err: unknown): void {
    this.#index = 0;
    const error =
      err instanceof DiscoveryError
        ? err
        : new DiscoveryError(`${this.#spec.failureLabel} at ${this.#where} failed: ${err instanceof Error ? err.message : String(err)}`, {
            cause: err,
          });
    const outcome: RequestOutcome =
      err instanceof ConsulThrottleError
        ? { kind: 'throttled', retryAfterMillis: parseRetryAfter(err.retryAfter, Date.now()) }
        : { kind: 'error' };
    const decision = this.#pace(flight, outcome, error.status);
    const attempt = decision.failures;
    const retryInMillis = decision.delayMillis;
    this.log('warn', `${this.#spec.what} failed: ${error.message}`, { attempt, retryInMillis, status: error.status });
    this.#call('onError', (l) => l.onError(error, { attempt, retryInMillis }));
  }

  /** Calls the listener unless stopped; a throwing listener is logged, never propagated. */
  #call(what: string, fn: (listener: DiscoveryListener) => void): void {
    callListener(this.#listener, this.#state === 'running', what, fn, (message) => this.log('error', message));
  }
}
