import { OWN_KEYS } from './core.js';
import { CONSUL_KEYS } from './consul.js';
import { PATRONI_KEYS, PREPARED_QUERY_KEYS, PROBE_KEYS } from './discovery.js';
import { MAX_REPLICA_LAG_KEYS } from './read-routing.js';


/**
 * pg-consul's own option keys, per level (top level and each nested object): what the
 * unknown-key check accepts besides pg's keys, and what docs/configuration.md must document
 * (a unit test compares the two).
 *
 * @example
 * ```ts
 * OPTION_KEYS.consul.includes('address'); // true
 * ```
 */
export const OPTION_KEYS = Object.freeze({
  top: Object.freeze([...OWN_KEYS]),
  consul: Object.freeze([...CONSUL_KEYS]),
  patroni: Object.freeze([...PATRONI_KEYS]),
  preparedQuery: Object.freeze([...PREPARED_QUERY_KEYS]),
  probe: Object.freeze([...PROBE_KEYS]),
  maxReplicaLag: Object.freeze([...MAX_REPLICA_LAG_KEYS]),
});
