/**
 * Read-routing settings (issue 5): the replica lag limit and its monitor, and auto read routing.
 *
 * @module
 */
import { assertKnownKeys } from '../option-keys.js';
import type { LagLimit } from '../routing/lag.js';
import type { PoolOptions } from './types.js';
import { customSetting, defaultOf, keysAt, setting, settingOrDefault } from './settings.js';
import { defined, invalid, isObject, option } from './values.js';
import type { Origin } from './values.js';

// ---------------------------------------------------------------------------------------
// Read routing (issue 5 parts 1–3): the replica lag limit and its monitor, and auto read
// routing. Resolved separately (resolveReadRoutingOptions) so ResolvedOptions keeps its
// shape; resolveOptions only strips these keys from the pg options.

/**
 * The lag limit of `maxReplicaLag`: a replica over either limit (or whose lag is not known)
 * serves no reads until it is back within them. At least one of the two is required.
 *
 * @example
 * ```ts
 * const maxReplicaLag: MaxReplicaLagOptions = { bytes: 16 * 1024 * 1024, seconds: 10 };
 * ```
 */
export interface MaxReplicaLagOptions {
  /**
   * Bytes of WAL the replica may have left to replay (integer ≥ 0). In the Patroni discovery
   * modes without `seconds`: bytes between the leader's latest known `xlog_location` and the
   * replica's (what it received), from Patroni's member keys. Env:
   * `PGCONSUL_MAX_REPLICA_LAG_BYTES`.
   */
  bytes?: number;
  /**
   * Seconds the replica may be behind (≥ 0, fractions allowed): the time since the primary
   * was first seen at a position the replica has not replayed. Env:
   * `PGCONSUL_MAX_REPLICA_LAG_SECONDS`.
   */
  seconds?: number;
}

/** The resolved read-routing settings, frozen. */
export interface ResolvedReadRouting {
  /** The lag limit, or undefined (no limit, no lag monitor). */
  readonly maxReplicaLag: LagLimit | undefined;
  /** Time between two lag measurements, ms. */
  readonly lagCheckIntervalMillis: number;
  /** Whether `pool.query` sends certainly-read-only statements to a replica. */
  readonly autoReadRouting: boolean;
}

/** Defaults of the read-routing settings. */
export const READ_ROUTING_DEFAULTS = Object.freeze({
  lagCheckIntervalMillis: defaultOf('lagCheckIntervalMillis'),
  autoReadRouting: defaultOf('autoReadRouting'),
});

export const MAX_REPLICA_LAG_KEYS: readonly string[] = keysAt('maxReplicaLag');
/** Upper bound of a seconds limit (a year): anything above is surely a unit mistake. */
export const MAX_LAG_SECONDS = 31_536_000;
export const DECIMAL = /^[0-9]{1,12}(?:\.[0-9]{1,9})?$/;

export function lagSeconds(value: unknown, origin: Origin): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || value > MAX_LAG_SECONDS) {
    throw invalid(origin, `must be a number of seconds from 0 to ${MAX_LAG_SECONDS}`, value);
  }
  return value;
}

export function envLagSeconds(text: string, origin: Origin): number {
  if (!DECIMAL.test(text)) throw invalid(origin, `must be a number of seconds from 0 to ${MAX_LAG_SECONDS}`, text);
  return lagSeconds(Number(text), origin);
}

/**
 * Resolves and validates the read-routing settings of `options`: explicit options, then
 * environment variables, then {@link READ_ROUTING_DEFAULTS}. An explicit `maxReplicaLag`
 * object replaces both of its environment variables.
 *
 * Environment variables read: `PGCONSUL_MAX_REPLICA_LAG_BYTES`,
 * `PGCONSUL_MAX_REPLICA_LAG_SECONDS`, `PGCONSUL_LAG_CHECK_INTERVAL_MS`,
 * `PGCONSUL_AUTO_READ_ROUTING`.
 *
 * @param options the pool options
 * @param env environment to read, default `process.env`
 * @returns the frozen settings
 * @throws TypeError naming the offending option or environment variable
 *
 * @example
 * ```ts
 * resolveReadRoutingOptions({ maxReplicaLag: { seconds: 5 } }, { PGCONSUL_AUTO_READ_ROUTING: 'true' });
 * // { maxReplicaLag: { seconds: 5 }, lagCheckIntervalMillis: 1000, autoReadRouting: true }
 * ```
 */
export function resolveReadRoutingOptions(options: PoolOptions | undefined, env: NodeJS.ProcessEnv = process.env): ResolvedReadRouting {
  const o = (options ?? {}) as Record<string, unknown>;
  let maxReplicaLag: LagLimit | undefined;
  const raw = o['maxReplicaLag'];
  if (raw !== undefined) {
    if (!isObject(raw)) throw invalid(option('maxReplicaLag'), 'must be an object like { bytes, seconds }', raw);
    assertKnownKeys(raw, MAX_REPLICA_LAG_KEYS, 'maxReplicaLag');
    const bytes = setting('maxReplicaLag.bytes', raw['bytes'], {});
    const seconds = raw['seconds'] === undefined ? undefined : lagSeconds(raw['seconds'], option('maxReplicaLag.seconds'));
    if (bytes === undefined && seconds === undefined) {
      throw new TypeError('pg-consul: option "maxReplicaLag" must set "bytes", "seconds" or both');
    }
    maxReplicaLag = defined({ bytes, seconds });
  } else {
    const bytes = setting('maxReplicaLag.bytes', undefined, env);
    const seconds = customSetting('maxReplicaLag.seconds', undefined, env, lagSeconds, envLagSeconds);
    if (bytes !== undefined || seconds !== undefined) maxReplicaLag = defined({ bytes, seconds });
  }
  const lagCheckIntervalMillis = settingOrDefault('lagCheckIntervalMillis', o['lagCheckIntervalMillis'], env);
  const autoReadRouting = settingOrDefault('autoReadRouting', o['autoReadRouting'], env);
  return Object.freeze({
    maxReplicaLag: maxReplicaLag === undefined ? undefined : Object.freeze(maxReplicaLag),
    lagCheckIntervalMillis,
    autoReadRouting,
  });
}
