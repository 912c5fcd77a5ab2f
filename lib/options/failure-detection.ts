/**
 * Failure-detection settings (issue 12): connect bound, dead-peer probe, `end()` bound — all rows of the option table.
 *
 * @module
 */
import type { PoolOptions } from './types.js';
import { defaultOf, settingOrDefault } from './settings.js';

// -----------------------------------------------------------------------------------------
// Failure detection (issue 12): connect bound, dead-peer probe, end() bound.
// -----------------------------------------------------------------------------------------

/** The resolved failure-detection settings, frozen. */
export interface ResolvedFailureDetection {
  /** Bound of one new connection when pg's `connectionTimeoutMillis` is unset, ms (0 = none). */
  readonly connectTimeoutMillis: number;
  /** Checkout age that triggers a dead-peer probe, ms (0 = detection off). */
  readonly deadPeerAfterMillis: number;
  /** Deadline of one dead-peer probe, ms. */
  readonly deadPeerTimeoutMillis: number;
  /** How long `end()` waits for checked-out clients, ms (0 = no bound). */
  readonly endTimeoutMillis: number;
}

/** Defaults of the failure-detection settings. */
export const FAILURE_DETECTION_DEFAULTS = Object.freeze({
  connectTimeoutMillis: defaultOf('connectTimeoutMillis'),
  deadPeerAfterMillis: defaultOf('deadPeerAfterMillis'),
  deadPeerTimeoutMillis: defaultOf('deadPeerTimeoutMillis'),
  endTimeoutMillis: defaultOf('endTimeoutMillis'),
});

/**
 * Resolves `connectTimeoutMillis`, `deadPeerAfterMillis`, `deadPeerTimeoutMillis` and
 * `endTimeoutMillis` from the options, else the environment (`PGCONSUL_CONNECT_TIMEOUT_MS`,
 * `PGCONSUL_DEAD_PEER_AFTER_MS`, `PGCONSUL_DEAD_PEER_TIMEOUT_MS`, `PGCONSUL_END_TIMEOUT_MS`),
 * else the defaults. Pure.
 *
 * @param options the Pool's options
 * @param env the environment
 * @throws TypeError naming the option or variable when a value is invalid
 *
 * @example
 * ```ts
 * resolveFailureDetectionOptions({ deadPeerAfterMillis: 5000 }, {}).deadPeerTimeoutMillis; // 1000
 * ```
 */
export function resolveFailureDetectionOptions(options: PoolOptions | undefined, env: NodeJS.ProcessEnv = process.env): ResolvedFailureDetection {
  const o = (options ?? {}) as Record<string, unknown>;
  const millis = (name: keyof typeof FAILURE_DETECTION_DEFAULTS): number => settingOrDefault(name, o[name], env);
  return Object.freeze({
    connectTimeoutMillis: millis('connectTimeoutMillis'),
    deadPeerAfterMillis: millis('deadPeerAfterMillis'),
    deadPeerTimeoutMillis: millis('deadPeerTimeoutMillis'),
    endTimeoutMillis: millis('endTimeoutMillis'),
  });
}
