/**
 * Options of a pg-consul pool, and their resolution: explicit options, then environment
 * variables (`CONSUL_*` as Consul's own Go client and CLI read them, `PGCONSUL_*` for
 * pg-consul's settings), then defaults — validated and returned as one frozen
 * {@link ResolvedOptions}. Invalid values throw a `TypeError` that names the option or the
 * environment variable; secret values (tokens, passwords, keys) never appear in a message.
 *
 * @example
 * ```ts
 * // CONSUL_HTTP_ADDR=https://consul.internal:8501  CONSUL_HTTP_TOKEN_FILE=/run/secrets/consul
 * const resolved = resolveOptions({ service: 'pglab', user: 'app', database: 'app', max: 20 });
 * resolved.consul.scheme;   // 'https'
 * resolved.pg;              // { user: 'app', database: 'app', max: 20 }
 * ```
 * @module
 */
export type { ConsulOptions, ListFiles, PoolOptions, ReadFile, ResolvedOptions } from './options/types.js';
export { DEFAULTS, resolveOptions } from './options/core.js';
export {
  DISCOVERY_DEFAULTS,
  DISCOVERY_MODES,
  STATIC_SERVICE,
  replicaTieBreakFor,
  resolveDiscoveryOptions,
} from './options/discovery.js';
export type { DiscoveryMode, HostProbeOptions, PatroniOptions, PreparedQueryOptions, ResolvedDiscovery } from './options/discovery.js';
export { READ_ROUTING_DEFAULTS, resolveReadRoutingOptions } from './options/read-routing.js';
export type { MaxReplicaLagOptions, ResolvedReadRouting } from './options/read-routing.js';
export { FAILURE_DETECTION_DEFAULTS, resolveFailureDetectionOptions } from './options/failure-detection.js';
export type { ResolvedFailureDetection } from './options/failure-detection.js';
export { OPTION_KEYS } from './options/keys.js';
