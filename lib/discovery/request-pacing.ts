/**
 * How long a Consul request loop waits before its next request (pure). The loop reports what
 * its last request came to (an {@link RequestOutcome}); {@link paceNextRequest} answers with
 * the delay and the new failure counters. Nothing here reads a clock or `Math.random`: the
 * caller passes the time since the Pool's last request and a random number.
 *
 * The rules (docs/consul-requests.md has the reasoning and the defaults):
 * - Two requests of one Pool never start closer than `minIntervalMillis` (default 100 ms,
 *   i.e. at most 10 per second), whatever the outcome — Consul's blocking-query guidance asks
 *   clients to rate-limit their loop, because an index that changes quickly would otherwise
 *   turn the loop into a hot loop.
 * - An error (network, timeout, non-2xx, a body that is not what was asked) backs off
 *   exponentially with full jitter: uniform in `[0, min(maxMillis, initialMillis × 2^(n−1)))`
 *   for the n-th consecutive error, never under the rate limit. The first valid answer
 *   resets the count.
 * - A 429 (or 503) with `Retry-After` waits at least that long (capped at
 *   `retryAfterMaxMillis`), and at least the backoff.
 * - A valid answer whose index moved forward, or a blocking request that ran its full wait
 *   (index unchanged: nothing happened), is followed at once — subject to the rate limit.
 * - Index anomalies — no usable `X-Consul-Index`, the index went backwards, or a blocking
 *   request that came back early with the same index (real Consul only returns an unchanged
 *   index once the wait is over) — follow Consul's rules (reset to 0 / do not block) but
 *   count as anomalies, which back off like errors. The count is reset by a clean blocking
 *   answer (index moved forward, or a full wait); an answer to a non-blocking request keeps
 *   it, so a server that alternates resets with fresh reads cannot hold the loop at 10/s.
 *
 * @module
 */
import { backoffDelay } from '../retry/backoff.js';

/** Default minimum interval between two request starts of one Pool: 100 ms (≤ 10 requests/s). */
export const DEFAULT_MIN_INTERVAL_MILLIS = 100;

/** Default discovery backoff: first retry within 100 ms, doubling, capped at 5 s. */
export const DEFAULT_DISCOVERY_BACKOFF = Object.freeze({ initialMillis: 100, maxMillis: 5_000 });

/** Longest `Retry-After` honoured, in ms (30 s); a longer one is cut to this. */
export const DEFAULT_RETRY_AFTER_MAX_MILLIS = 30_000;

/**
 * What the index of a valid answer did, relative to the request:
 * - `fresh`: answer to a non-blocking request (index 0 was sent), usable index;
 * - `advanced`: a blocking request came back with a higher index;
 * - `unchanged`: a blocking request came back with the same index after its wait (timeout);
 * - `early-unchanged`: a blocking request came back with the same index well before its wait;
 * - `backwards`: a blocking request came back with a lower index (reset to 0);
 * - `missing`: no usable `X-Consul-Index` (absent, malformed, 0 or negative);
 * - `polled`: answer of a polling loop (index not used).
 */
export type IndexProgress = 'fresh' | 'advanced' | 'unchanged' | 'early-unchanged' | 'backwards' | 'missing' | 'polled';

/** What the last request came to. */
export type RequestOutcome =
  | { readonly kind: 'error' }
  | { readonly kind: 'throttled'; readonly retryAfterMillis: number | undefined }
  | { readonly kind: 'answer'; readonly index: IndexProgress };

/** Settings of {@link paceNextRequest}. */
export interface PacingSettings {
  /** Minimum interval between two request starts of the Pool, ms (≥ 0). */
  readonly minIntervalMillis: number;
  /** Backoff window for errors and anomalies (full jitter). */
  readonly backoff: { readonly initialMillis: number; readonly maxMillis: number };
  /** Cap on an honoured `Retry-After`, ms. Default {@link DEFAULT_RETRY_AFTER_MAX_MILLIS}. */
  readonly retryAfterMaxMillis?: number | undefined;
  /** Delay between a polling loop's answer and its next request, ms. */
  readonly pollIntervalMillis?: number | undefined;
}

/** The history {@link paceNextRequest} decides from. */
export interface PacingInput {
  /** What the request that just ended came to. */
  readonly outcome: RequestOutcome;
  /** Consecutive errors before this outcome. */
  readonly failures: number;
  /** Consecutive index anomalies before this outcome. */
  readonly anomalies: number;
  /**
   * Milliseconds since the Pool's last request started (any loop of the Pool), `undefined`
   * when none did. Negative (the clock went backwards) counts as "just now".
   */
  readonly sinceLastStartMillis: number | undefined;
  /** A uniform random number in `[0, 1)` for the jitter. */
  readonly random: number;
}

/** Why the delay is what it is (for events and logs). */
export type PacingReason = 'at-once' | 'rate-limit' | 'poll-interval' | 'backoff' | 'retry-after';

/** The decision: how long to wait, and the counters to carry to the next decision. */
export interface PacingDecision {
  /** Delay before the next request, whole ms, ≥ 0. */
  readonly delayMillis: number;
  /** Consecutive errors, this outcome included. */
  readonly failures: number;
  /** Consecutive index anomalies, this outcome included. */
  readonly anomalies: number;
  /** What set the delay. */
  readonly reason: PacingReason;
}

/**
 * What remains of the rate limit: the wait until `minIntervalMillis` have passed since the
 * Pool's last request started (0 when none did; the full interval when the clock went back).
 *
 * @param minIntervalMillis the minimum interval
 * @param sinceLastStartMillis time since the last start, or `undefined`
 * @returns ms still to wait, ≥ 0
 *
 * @example
 * ```ts
 * rateLimitRemaining(100, 30); // 70
 * rateLimitRemaining(100, undefined); // 0
 * ```
 */
export function rateLimitRemaining(minIntervalMillis: number, sinceLastStartMillis: number | undefined): number {
  if (sinceLastStartMillis === undefined || !Number.isFinite(sinceLastStartMillis)) return 0;
  if (sinceLastStartMillis < 0) return minIntervalMillis;
  return Math.max(0, Math.ceil(minIntervalMillis - sinceLastStartMillis));
}

/**
 * Classifies the index of a valid answer (see {@link IndexProgress}).
 *
 * @param blocking whether the request carried `?index=&wait=`
 * @param sent the index sent (0 for a non-blocking request)
 * @param reported the answer's parsed `X-Consul-Index` (`undefined` when unusable)
 * @param elapsedMillis how long the request took
 * @param waitMillis the blocking wait asked for
 * @returns the progress
 *
 * @example
 * ```ts
 * classifyIndex(true, 17, 17, 200, 300_000); // 'early-unchanged'
 * classifyIndex(true, 17, 18, 200, 300_000); // 'advanced'
 * ```
 */
export function classifyIndex(
  blocking: boolean,
  sent: number,
  reported: number | undefined,
  elapsedMillis: number,
  waitMillis: number,
): IndexProgress {
  if (reported === undefined || !(reported >= 1)) return 'missing';
  if (!blocking) return 'fresh';
  if (reported > sent) return 'advanced';
  if (reported < sent) return 'backwards';
  // Consul holds a blocking read for its whole wait (plus jitter) unless the index moves;
  // half the wait leaves room for clock granularity and proxies that cut it a little short.
  return elapsedMillis >= waitMillis / 2 ? 'unchanged' : 'early-unchanged';
}

/**
 * The delay before the next request (see the module comment for the rules).
 *
 * @param input the outcome and the history
 * @param settings rate limit, backoff window, `Retry-After` cap, poll interval
 * @returns delay, new counters and the reason
 *
 * @example
 * ```ts
 * const s = { minIntervalMillis: 100, backoff: { initialMillis: 100, maxMillis: 5_000 } };
 * paceNextRequest({ outcome: { kind: 'error' }, failures: 6, anomalies: 0, sinceLastStartMillis: 10, random: 0.5 }, s);
 * // { delayMillis: 2_500, failures: 7, anomalies: 0, reason: 'backoff' }
 * ```
 */
export function paceNextRequest(input: PacingInput, settings: PacingSettings): PacingDecision {
  const floor = rateLimitRemaining(settings.minIntervalMillis, input.sinceLastStartMillis);
  const random = (): number => input.random;
  const pick = (wanted: number, reason: PacingReason, failures: number, anomalies: number): PacingDecision =>
    wanted > floor
      ? { delayMillis: Math.ceil(wanted), failures, anomalies, reason }
      : { delayMillis: floor, failures, anomalies, reason: floor > 0 ? 'rate-limit' : 'at-once' };
  const { outcome } = input;
  switch (outcome.kind) {
    case 'error': {
      const failures = input.failures + 1;
      return pick(backoffDelay(failures, settings.backoff, random), 'backoff', failures, input.anomalies);
    }
    case 'throttled': {
      const failures = input.failures + 1;
      const backoff = backoffDelay(failures, settings.backoff, random);
      const cap = settings.retryAfterMaxMillis ?? DEFAULT_RETRY_AFTER_MAX_MILLIS;
      const told = outcome.retryAfterMillis === undefined ? 0 : Math.min(Math.max(0, outcome.retryAfterMillis), cap);
      return told > backoff ? pick(told, 'retry-after', failures, input.anomalies) : pick(backoff, 'backoff', failures, input.anomalies);
    }
    case 'answer':
      switch (outcome.index) {
        case 'advanced':
        case 'unchanged':
          return pick(0, 'at-once', 0, 0);
        case 'fresh':
          return pick(0, 'at-once', 0, input.anomalies);
        case 'polled':
          return pick(settings.pollIntervalMillis ?? 0, 'poll-interval', 0, 0);
        case 'early-unchanged':
        case 'backwards':
        case 'missing': {
          const anomalies = input.anomalies + 1;
          return pick(backoffDelay(anomalies, settings.backoff, random), 'backoff', 0, anomalies);
        }
      }
  }
}

/**
 * Parses an HTTP `Retry-After` value: delay-seconds (a non-negative integer) or an HTTP-date
 * (RFC 9110 §10.2.3), relative to `nowMillis`.
 *
 * @param value the header value
 * @param nowMillis the current time (epoch ms) for an HTTP-date
 * @returns the delay in ms (≥ 0), or `undefined` when missing or unparsable
 *
 * @example
 * ```ts
 * parseRetryAfter('3', 0); // 3000
 * parseRetryAfter('Wed, 21 Oct 2015 07:28:00 GMT', Date.parse('Wed, 21 Oct 2015 07:27:58 GMT')); // 2000
 * ```
 */
export function parseRetryAfter(value: string | undefined, nowMillis: number): number | undefined {
  if (value === undefined) return undefined;
  const text = value.trim();
  if (/^\d{1,9}$/.test(text)) return Number(text) * 1000;
  // An HTTP-date always names the weekday and GMT; Date.parse alone accepts far too much.
  if (!/^[A-Za-z]{3}, \d{2} [A-Za-z]{3} \d{4} \d{2}:\d{2}:\d{2} GMT$/.test(text)) return undefined;
  const at = Date.parse(text);
  if (!Number.isFinite(at)) return undefined;
  return Math.max(0, at - nowMillis);
}
