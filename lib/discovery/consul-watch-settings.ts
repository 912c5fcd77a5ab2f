/**
 * The settings and the request spec every Consul request loop ({@link ConsulWatchLoop} in
 * `consul-watch-loop.ts`) is built from, and their validation.
 *
 * @module
 */
import type { TopologyUpdate } from '../topology/node.js';
import type { ConsulConfig } from './consul-config.js';
import type { consulGet } from './consul-http.js';
import type { ConsulQuery, ConsulResponse } from './consul-http.js';
import type { RequestBudget } from './request-budget.js';

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
  /**
   * No two requests of the loop — or of every loop sharing `budget` — start closer together
   * than this, in ms (even when Consul answers at once). 0 removes the rate limit (tests only).
   */
  readonly minIntervalMillis: number;
  /** Backoff window after failed rounds and index anomalies (full jitter, see `paceNextRequest`). */
  readonly backoff: { readonly initialMillis: number; readonly maxMillis: number };
  /**
   * Connect timeout of every request (TCP, and TLS for https), ms; 0 = none (the request
   * deadline still applies). Default: {@link DEFAULT_CONNECT_TIMEOUT_MILLIS}.
   */
  readonly connectTimeoutMillis?: number | undefined;
  /** Longest `Retry-After` honoured, ms. Default 30 000. */
  readonly retryAfterMaxMillis?: number | undefined;
  /**
   * The start time of the Pool's last request, shared by all loops of one Pool so the rate
   * limit holds per Pool. Default: one of the loop's own.
   */
  readonly budget?: RequestBudget | undefined;
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


/** Default connect timeout of a Consul request (TCP + TLS), ms. */
export const DEFAULT_CONNECT_TIMEOUT_MILLIS = 2_000;

/**
 * Throws a RangeError unless `value` is a finite number in `min..max`.
 *
 * @param owner class name for the message
 * @param name setting name
 * @param value the value
 * @param min smallest allowed
 * @param max largest allowed
 */
export function assertRange(owner: string, name: string, value: number, min: number, max = Number.MAX_SAFE_INTEGER): void {
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
  if (settings.connectTimeoutMillis !== undefined) assertRange(owner, 'connectTimeoutMillis', settings.connectTimeoutMillis, 0);
  if (settings.retryAfterMaxMillis !== undefined) assertRange(owner, 'retryAfterMaxMillis', settings.retryAfterMaxMillis, 0);
}

