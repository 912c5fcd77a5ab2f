/**
 * pg-consul's own option keys per level, derived from the option table.
 *
 * @module
 */
import { keysAt } from './settings.js';

/**
 * pg-consul's own option keys, per level (top level and each nested object), from the option
 * table (lib/options/table.ts): what the
 * unknown-key check accepts besides pg's keys, and what docs/configuration.md must document
 * (a unit test compares the two).
 *
 * @example
 * ```ts
 * OPTION_KEYS.consul.includes('address'); // true
 * ```
 */
export const OPTION_KEYS = Object.freeze({
  top: keysAt(),
  consul: keysAt('consul'),
  patroni: keysAt('patroni'),
  preparedQuery: keysAt('preparedQuery'),
  probe: keysAt('probe'),
  maxReplicaLag: keysAt('maxReplicaLag'),
});
