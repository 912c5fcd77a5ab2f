/**
 * The public option types: `PoolOptions`, `ConsulOptions`, `ResolvedOptions` and the file readers.
 *
 * @module
 */
import type pg from 'pg';
import type { ConsulConfig } from '../discovery/consul-config.js';
import type { DiscoverySource } from '../discovery/discovery-source.js';
import type { Logger } from '../log.js';
import type { DiscoveryMode, HostProbeOptions, PatroniOptions, PreparedQueryOptions } from './discovery.js';
import type { MaxReplicaLagOptions } from './read-routing.js';

/**
 * How to reach Consul. Every field is optional; an explicit field wins over its environment
 * variable, which wins over the default. The environment variables are those of Consul's Go
 * client and CLI, read the same way (an empty variable counts as unset).
 *
 * @example
 * ```ts
 * const consul: ConsulOptions = {
 *   address: 'https://consul.internal:8501',
 *   tokenFile: '/run/secrets/consul-token',
 *   caFile: '/etc/consul/ca.pem',
 *   datacenter: 'dc1',
 * };
 * ```
 */
export interface ConsulOptions {
  /**
   * Agent host name or IP (IPv6 with or without brackets). Default: from `CONSUL_HTTP_ADDR`,
   * else `127.0.0.1`. Setting `host` or `port` ignores `CONSUL_HTTP_ADDR`; exclusive with
   * {@link ConsulOptions.address}.
   */
  host?: string;
  /** Agent HTTP(S) port, 1–65535. Default 8500 (when `host`/`port` are used). */
  port?: number;
  /**
   * Agent address in `CONSUL_HTTP_ADDR` syntax: `host:port`, `[::1]:8500`, `http://host:port`,
   * `https://host:port`, `unix:///path/to/consul.sock`. Env: `CONSUL_HTTP_ADDR`. Default
   * `127.0.0.1:8500`. As in Consul's Go client, an address without a port uses the scheme's
   * port (80 for http, 443 for https), not 8500. Path prefixes and credentials in the address
   * are rejected. Exclusive with `host`/`port` (TypeError if both are given).
   */
  address?: string;
  /**
   * Use HTTPS. Env: `CONSUL_HTTP_SSL` (Go `strconv.ParseBool` syntax). Default false. As in
   * Consul's Go client it upgrades `host:port` and `http://` addresses to https; an
   * `https://` address is https whatever this says.
   */
  secure?: boolean;
  /** ACL token sent as `X-Consul-Token`. Env: `CONSUL_HTTP_TOKEN`. Secret. */
  token?: string;
  /**
   * File holding the ACL token (read once, whitespace trimmed); wins over `token`, as
   * `CONSUL_HTTP_TOKEN_FILE` wins over `CONSUL_HTTP_TOKEN`. An empty file falls back to the
   * token. Explicit `token`/`tokenFile` ignore both environment variables.
   */
  tokenFile?: string;
  /** HTTP basic auth, `user` or `user:password`. Env: `CONSUL_HTTP_AUTH`. Secret. */
  auth?: string;
  /**
   * Datacenter to query (`?dc=`). Env: `PGCONSUL_CONSUL_DATACENTER` (Consul's CLI has no
   * environment variable for it; `CONSUL_DATACENTER` is deliberately not read). Default: the
   * agent's own datacenter.
   */
  datacenter?: string;
  /**
   * Read consistency mode: `default` (leader answers), `stale` (any server; faster, may lag)
   * or `consistent`. Env: `PGCONSUL_CONSUL_CONSISTENCY`. Default `default`.
   */
  consistency?: 'default' | 'stale' | 'consistent';
  /** PEM CA bundle (contents). Exclusive with `caFile`/`caPath`; explicit CA options ignore the env. */
  ca?: string;
  /** File with a PEM CA bundle. Env: `CONSUL_CACERT` (wins over `CONSUL_CAPATH`). */
  caFile?: string;
  /**
   * Directory of PEM CA certificates; every file in it (recursively, in path order) is read
   * and the contents are concatenated. Env: `CONSUL_CAPATH`.
   */
  caPath?: string;
  /** PEM client certificate (contents). Exclusive with `certFile`. Needs a key. */
  cert?: string;
  /** File with the PEM client certificate. Env: `CONSUL_CLIENT_CERT`. */
  certFile?: string;
  /** PEM client private key (contents). Exclusive with `keyFile`. Secret. */
  key?: string;
  /** File with the PEM client private key. Env: `CONSUL_CLIENT_KEY`. */
  keyFile?: string;
  /** TLS server name (SNI and verification); a `:port` suffix is dropped. Env: `CONSUL_TLS_SERVER_NAME`. */
  tlsServerName?: string;
  /**
   * Verify Consul's TLS certificate. Env: `CONSUL_HTTP_SSL_VERIFY` (Go `strconv.ParseBool`:
   * `1 t T TRUE true True 0 f F FALSE false False`; anything else is a TypeError). Default true.
   */
  verify?: boolean;
  /** Consul Enterprise namespace (`?ns=`). Env: `CONSUL_NAMESPACE`. */
  namespace?: string;
  /** Consul Enterprise admin partition (`?partition=`). Env: `CONSUL_PARTITION`. */
  partition?: string;
  /**
   * Sort health answers by estimated round-trip time from this node (`?near=`): `_agent`
   * (the agent answering) or a node name. `pool.topology.replicas` then lists replicas
   * nearest first, and replica choice, which still goes to the least busy replica, breaks
   * ties by that order (nearest first) instead of rotating. Used by the `consul-health` (and
   * `patroni+health`) and `prepared-query` modes. Env: `PGCONSUL_CONSUL_NEAR`. Default: not sent.
   */
  near?: string;
  /** Blocking-query wait in whole seconds, 1–600 (Consul caps it at 10 minutes). Default 300. */
  waitSeconds?: number;
  /**
   * Timeout of non-blocking Consul requests, and slack added to blocking ones on top of
   * `waitSeconds` plus Consul's jitter (wait/16), in milliseconds. Default 10000.
   */
  requestTimeoutMillis?: number;
  /**
   * Connect timeout of every Consul request (TCP connect, plus the TLS handshake for https),
   * in milliseconds. `0` = no connect timeout of its own (the request timeout still bounds
   * the request). Default 2000.
   */
  connectTimeoutMillis?: number;
}

/**
 * Options of a pg-consul pool: every `pg.Pool` option (passed on to each per-node pool) plus
 * pg-consul's own.
 *
 * `host` and `port` are not accepted (TypeError): nodes come from Consul. A `connectionString`
 * is accepted for its user, password, database and parameters; its host and port are ignored.
 *
 * @example
 * ```ts
 * const options: PoolOptions = {
 *   service: 'pglab',
 *   user: 'app', password: process.env.PGPASSWORD, database: 'app',
 *   max: 20, idleTimeoutMillis: 30_000,
 *   consul: { address: 'consul.internal:8500' },
 *   failoverTimeoutMillis: 20_000,
 * };
 * ```
 */
export interface PoolOptions extends pg.PoolConfig {
  /**
   * Consul service name of the cluster (Patroni: the scope, lowercased). Env:
   * `PGCONSUL_SERVICE`. Required (option or env). Must match `/^[A-Za-z0-9][A-Za-z0-9._-]*$/`.
   */
  service?: string;
  /** How to reach Consul; see {@link ConsulOptions}. */
  consul?: ConsulOptions;
  /**
   * How long an operation may keep retrying while no usable node is found (a failover), in
   * ms. 0 = fail at once, no retry. A `transaction()` has one such budget for its checkouts
   * and replays together. Env: `PGCONSUL_FAILOVER_TIMEOUT_MS`. Default 30000.
   */
  failoverTimeoutMillis?: number;
  /**
   * A passing entry carrying any of these tags is a primary. Env: `PGCONSUL_PRIMARY_TAGS`
   * (comma-separated). Default `['primary', 'master']`. Must not overlap `replicaTags`.
   */
  primaryTags?: readonly string[];
  /** A passing entry carrying any of these tags is a replica. Env: `PGCONSUL_REPLICA_TAGS`. Default `['replica']`. */
  replicaTags?: readonly string[];
  /**
   * What reads do when no replica passes: `primary` (read from the primary) or `fail`
   * (NoReplicaError). Env: `PGCONSUL_READ_FALLBACK`. Default `primary`.
   */
  readFallback?: 'primary' | 'fail';
  /** First retry delay (backoff start), ms, ≥ 1. Default 50 (or `retryMaxDelayMillis` if smaller). */
  retryInitialDelayMillis?: number;
  /** Retry delay cap, ms, ≥ `retryInitialDelayMillis`. Default 1000 (or `retryInitialDelayMillis` if larger). */
  retryMaxDelayMillis?: number;
  /**
   * Minimum time between two Consul requests of the discovery loop, ms (0 disables the rate
   * limit — for tests only). Default 100.
   */
  discoveryMinIntervalMillis?: number;
  /** Where pg-consul's log messages go; see {@link Logger}. Default: `NODE_DEBUG=pg-consul`. */
  logger?: Logger;

  // --- Discovery modes (resolved by resolveDiscoveryOptions) ---------------------------

  /**
   * Where the topology comes from: `auto` (default: `patroni+health` while Patroni's
   * `leader`/`members/` keys for the service are readable in Consul KV, else
   * `consul-health`, switching at run time; see docs/discovery-auto.md), `consul-health`
   * (the passing instances of `service`), `patroni` (Patroni's own leader and member keys in Consul KV),
   * `patroni+health` (leader from Patroni's KV, replicas from the health endpoint),
   * `prepared-query` (a Consul prepared query, polled; see `preparedQuery`), `static` (the
   * `hosts` list, probed; implied by `hosts`) — or a custom {@link DiscoverySource}.
   * Env: `PGCONSUL_DISCOVERY`.
   */
  discovery?: DiscoveryMode | DiscoverySource;
  /** Patroni KV settings for `discovery: 'auto'` / `'patroni'` / `'patroni+health'`; see {@link PatroniOptions}. */
  patroni?: PatroniOptions;
  /** The prepared query for `discovery: 'prepared-query'` (implied when given); see {@link PreparedQueryOptions}. */
  preparedQuery?: PreparedQueryOptions;
  /**
   * A static list of servers, `host[:port]` (IPv6 in brackets, port default 5432): no
   * Consul at all; roles are found by probing each server. Implies `discovery: 'static'`;
   * `service` and `consul` are then not needed (and `consul` is rejected). Env:
   * `PGCONSUL_HOSTS` (comma-separated).
   */
  hosts?: readonly string[];
  /** Server probing (static hosts, Patroni promotion checks); see {@link HostProbeOptions}. */
  probe?: HostProbeOptions;

  // --- Read routing (resolved by resolveReadRoutingOptions) ---------------------------

  /**
   * The most a replica may lag behind the primary and still serve reads; see
   * {@link MaxReplicaLagOptions}. Setting it starts the lag monitor (one tiny query per node
   * per `lagCheckIntervalMillis`, on one extra connection per node) — except with
   * `discovery: 'patroni'` / `'patroni+health'` and only `bytes` set: then the WAL positions
   * in Patroni's member keys decide, with no connection and no query (up to one Patroni
   * `loop_wait` old). Env: `PGCONSUL_MAX_REPLICA_LAG_BYTES`,
   * `PGCONSUL_MAX_REPLICA_LAG_SECONDS` (read only when the option is not given). Default: no
   * limit, no monitor.
   */
  maxReplicaLag?: MaxReplicaLagOptions;
  /** Time between two lag measurements, ms (10 – 2^31−1). Env: `PGCONSUL_LAG_CHECK_INTERVAL_MS`. Default 1000. */
  lagCheckIntervalMillis?: number;
  /**
   * Send `pool.query` statements that are certainly read-only (see `isReadOnlyStatement`) to
   * a replica; everything else, `pool.primary`, `pool.connect()` and transactions stay on the
   * primary. Env: `PGCONSUL_AUTO_READ_ROUTING` (Go boolean syntax). Default false.
   */
  autoReadRouting?: boolean;

  // --- Failure detection (resolved by resolveFailureDetectionOptions) -----------------

  /**
   * Bound of one new PostgreSQL connection — TCP, TLS, startup, authentication and the role
   * check — when pg's own `connectionTimeoutMillis` is not set (pg's default is no bound), ms.
   * 0 removes the bound. Env: `PGCONSUL_CONNECT_TIMEOUT_MS`. Default 5000.
   */
  connectTimeoutMillis?: number;
  /**
   * Dead-peer detection: a checkout (a statement in flight, or a client held from
   * `pool.connect()`) older than this makes pg-consul probe its node over a fresh connection;
   * a node that answers nothing is fenced (every socket destroyed) and skipped until it
   * answers again. 0 turns detection off. Env: `PGCONSUL_DEAD_PEER_AFTER_MS`. Default 2000.
   */
  deadPeerAfterMillis?: number;
  /**
   * Deadline of one dead-peer probe, ms (two probes in a row must fail). Env:
   * `PGCONSUL_DEAD_PEER_TIMEOUT_MS`. Default 1000.
   */
  deadPeerTimeoutMillis?: number;
  /**
   * The longest `end()` waits for checked-out clients to be released before it closes their
   * connections, ms. 0 removes the bound (pg.Pool's behaviour). Env:
   * `PGCONSUL_END_TIMEOUT_MS`. Default 10000.
   */
  endTimeoutMillis?: number;
}

/**
 * Fully resolved, validated options. Frozen: the object, `consul` (deeply), the tag arrays
 * and the top level of `pg`. Values inside `pg` (an `ssl` object, a `Client` class, `types`…)
 * are the caller's own and are not frozen, because pg itself writes to some of them. Contains
 * secrets (`consul.token`, `consul.tls.key`, `pg.password`): never log it without passing it
 * through `redact` (lib/log.ts) first.
 */
export interface ResolvedOptions {
  /** The Consul service name. */
  readonly service: string;
  /** Where and how to reach Consul, with file contents (token, CA, cert, key) already read. */
  readonly consul: ConsulConfig;
  /** Blocking-query wait, seconds (1–600). */
  readonly waitSeconds: number;
  /** Non-blocking request timeout and blocking-request slack, ms. */
  readonly requestTimeoutMillis: number;
  /** Connect timeout of Consul requests, ms (0 = none). */
  readonly consulConnectTimeoutMillis: number;
  /** Retry budget during a failover, ms (0 = no retry). */
  readonly failoverTimeoutMillis: number;
  /** Tags that make an entry a primary. */
  readonly primaryTags: readonly string[];
  /** Tags that make an entry a replica. */
  readonly replicaTags: readonly string[];
  /** What reads do when no replica passes. */
  readonly readFallback: 'primary' | 'fail';
  /** Backoff start, ms. */
  readonly retryInitialDelayMillis: number;
  /** Backoff cap, ms. */
  readonly retryMaxDelayMillis: number;
  /** Minimum interval between discovery requests, ms. */
  readonly discoveryMinIntervalMillis: number;
  /** The logger to use: `createLogger` (lib/log.ts) applied to the `logger` option (redacting, never throwing). */
  readonly logger: Logger;
  /**
   * Options for each per-node `pg.Pool`: the caller's options minus pg-consul's own keys, with
   * no `host`, `port` or `connectionString` — a connection string is expanded here into its
   * fields (user, password, database, ssl…, as pg itself parses it) because pg lets a
   * connection string override `host`, which would point every node pool at one server.
   */
  readonly pg: Readonly<pg.PoolConfig>;
}

/** Reads a text file (UTF-8). Injectable for tests. */
export type ReadFile = (path: string) => string;

/** Lists the regular files under a directory, recursively, as full paths in a stable order. */
export type ListFiles = (dir: string) => readonly string[];
