/**
 * Exponential backoff with "full jitter" (pure).
 *
 * @module
 */

/** Options of {@link backoffDelay}. */
export interface BackoffOptions {
  /** Ceiling of the first retry's delay, in ms (≥ 0). */
  readonly initialMillis: number;
  /** Largest delay ever returned, in ms (≥ 0). Wins over `initialMillis` when smaller. */
  readonly maxMillis: number;
  /** Growth factor per attempt (≥ 1). Defaults to 2. */
  readonly factor?: number;
}

/**
 * How long to wait before retry number `attempt` (1 = the first retry after the first
 * failure): a uniformly random delay in `[0, ceiling)` where
 * `ceiling = min(maxMillis, initialMillis × factor^(attempt − 1))`.
 *
 * This is "full jitter" (AWS Architecture Blog, "Exponential Backoff and Jitter"): it spreads
 * the retries of many clients evenly over the window, which is what matters when every
 * application instance loses Consul (or the primary) at the same moment. Decorrelated
 * jitter was not chosen because it needs the previous delay, which would make the function
 * stateful. Callers that must never retry at once add their own floor (the Consul source
 * has its `minIntervalMillis` rate limit).
 *
 * Pure: the only source of randomness is `random`, whose result is clamped to `[0, 1)`.
 * `attempt` values below 1 (or not finite) are treated as 1; huge attempts simply reach
 * the cap.
 *
 * @param attempt 1-based retry number
 * @param opts the window: `initialMillis`, `maxMillis`, optional `factor`
 * @param random a `Math.random`-like source, injected by tests
 * @returns a whole number of milliseconds in `[0, min(maxMillis, ceiling))`, or 0 when the
 *   ceiling is 0
 * @throws RangeError when an option is negative, not finite, or `factor` < 1
 *
 * @example
 * ```ts
 * backoffDelay(1, { initialMillis: 100, maxMillis: 5_000 }, () => 0.5); // 50
 * backoffDelay(4, { initialMillis: 100, maxMillis: 5_000 }, () => 0.5); // 400 (ceiling 800)
 * backoffDelay(20, { initialMillis: 100, maxMillis: 5_000 }, () => 0.999); // 4995
 * ```
 */
export function backoffDelay(
  attempt: number,
  opts: BackoffOptions,
  random: () => number = Math.random,
): number {
  const { initialMillis, maxMillis } = opts;
  const factor = opts.factor ?? 2;
  if (!Number.isFinite(initialMillis) || initialMillis < 0) {
    throw new RangeError(`backoff initialMillis must be a finite number ≥ 0, got ${initialMillis}`);
  }
  if (!Number.isFinite(maxMillis) || maxMillis < 0) {
    throw new RangeError(`backoff maxMillis must be a finite number ≥ 0, got ${maxMillis}`);
  }
  if (!Number.isFinite(factor) || factor < 1) {
    throw new RangeError(`backoff factor must be a finite number ≥ 1, got ${factor}`);
  }
  const n = Number.isFinite(attempt) && attempt >= 1 ? Math.floor(attempt) : 1;
  // factor ** large → Infinity, which Math.min turns into the cap.
  const ceiling = Math.min(maxMillis, initialMillis * factor ** (n - 1));
  if (!(ceiling > 0)) return 0;
  const r = random();
  const unit = Number.isFinite(r) ? Math.min(Math.max(r, 0), 1 - Number.EPSILON) : 0;
  return Math.floor(unit * ceiling);
}
