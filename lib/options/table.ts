/**
 * The option table: every pg-consul option declared once — its type, default, environment
 * variable, constraint, whether it is secret, and its one-line documentation. From it come
 * the scalar settings' parsing and validation (lib/options/settings.ts), the own-key lists of
 * the unknown-key check (`OPTION_KEYS`), the defaults (`DEFAULTS` and the other
 * `*_DEFAULTS`), the list of secret options, and the reference table of docs/configuration.md,
 * which test/unit/docs-configuration.test.ts checks row by row against this table.
 *
 * Nested options are named `parent.key` (`consul.port`). The order is the order of the
 * unknown-key check's lists (ties of "did you mean" go to the earlier key).
 *
 * @module
 */
/** Largest delay Node timers accept (2^31 − 1 ms); longer ones fire after 1 ms. */
export const MAX_TIMER_MILLIS = 2_147_483_647;

/** What kind of value an option takes. Objects, functions and host lists have resolvers of their own. */
export type OptionType = 'string' | 'integer' | 'number' | 'boolean' | 'enum' | 'tags' | 'hosts' | 'object' | 'function';

/** One row of the option table. */
export interface OptionSpec {
  /** The kind of value. */
  readonly type: OptionType;
  /** The environment variable that sets it when the option is not given, if any. */
  readonly env?: string;
  /** The connection-string parameter that sets it, if any (none of pg-consul's options today). */
  readonly connectionString?: string;
  /** Its default, when it has a fixed one. */
  readonly default?: number | boolean | string | readonly string[];
  /** Smallest allowed value (`integer`). */
  readonly min?: number;
  /** Largest allowed value (`integer`). */
  readonly max?: number;
  /** The allowed values (`enum`). */
  readonly values?: readonly string[];
  /** A secret: its value never appears in an error message or a log. */
  readonly secret?: boolean;
  /** Its line in docs/configuration.md's reference table (the "meaning" cell). */
  readonly doc: string;
}

/** Deep-freezes the table so no caller can change a default. */
function frozen<T extends Record<string, OptionSpec>>(table: T): T {
  for (const spec of Object.values(table)) {
    if (Array.isArray(spec.default)) Object.freeze(spec.default);
    if (spec.values !== undefined) Object.freeze(spec.values);
    Object.freeze(spec);
  }
  return Object.freeze(table);
}

/** The option table; see the module documentation. */
export const OPTIONS = frozen({
  service: {
    type: 'string', env: 'PGCONSUL_SERVICE',
    doc: 'Consul service name = Patroni scope (Patroni lowercases it and turns `._ ` into `-`). `[A-Za-z0-9][A-Za-z0-9._-]*` only.',
  },
  consul: {
    type: 'object',
    doc: 'How to reach Consul: the `consul.*` rows. Environment variables as [Consul\'s own tools read them](#consul-variables).',
  },
  failoverTimeoutMillis: {
    type: 'integer', min: 0, max: MAX_TIMER_MILLIS, default: 30_000, env: 'PGCONSUL_FAILOVER_TIMEOUT_MS',
    doc: 'How long a statement that did not run may keep being retried while no usable node is found, in ms. `0` means no retry. For `transaction()`, one budget covers its checkouts and replays together.',
  },
  primaryTags: {
    type: 'tags', default: ['primary', 'master'], env: 'PGCONSUL_PRIMARY_TAGS',
    doc: 'A passing entry with any of these tags is a primary. Must not overlap `replicaTags`.',
  },
  replicaTags: {
    type: 'tags', default: ['replica'], env: 'PGCONSUL_REPLICA_TAGS',
    doc: 'A passing entry with any of these tags is a replica.',
  },
  readFallback: {
    type: 'enum', values: ['primary', 'fail'], default: 'primary', env: 'PGCONSUL_READ_FALLBACK',
    doc: 'With no usable replica, reads go to the primary (`primary`) or fail with `NoReplicaError` (`fail`).',
  },
  retryInitialDelayMillis: {
    type: 'integer', min: 1, max: MAX_TIMER_MILLIS, default: 50,
    doc: 'First backoff delay, ms (full jitter, cut short by a topology change).',
  },
  retryMaxDelayMillis: {
    type: 'integer', min: 1, max: MAX_TIMER_MILLIS, default: 1000,
    doc: 'Backoff cap, ms; at least `retryInitialDelayMillis`.',
  },
  discoveryMinIntervalMillis: {
    type: 'integer', min: 0, max: MAX_TIMER_MILLIS, default: 100,
    doc: 'Minimum time between two discovery requests, ms (`0` only for tests).',
  },
  logger: {
    type: 'function',
    doc: '`(level, message, fields) => void`. Fields are redacted; a logger that throws never breaks a query.',
  },
  discovery: {
    type: 'enum', values: ['auto', 'consul-health', 'patroni', 'patroni+health', 'prepared-query', 'static'], default: 'auto', env: 'PGCONSUL_DISCOVERY',
    doc: '`auto` (Patroni\'s leader key when readable, else the health endpoint; see [automatic discovery](discovery-auto.md)), `consul-health`, `patroni`, `patroni+health`, `prepared-query`, `static`, or a custom `DiscoverySource` object. See [Discovery modes](discovery.md).',
  },
  patroni: {
    type: 'object',
    doc: '',
  },
  preparedQuery: {
    type: 'object',
    doc: '',
  },
  hosts: {
    type: 'hosts', env: 'PGCONSUL_HOSTS',
    doc: 'A static list of `host[:port]` servers, probed for their role; implies `discovery: \'static\'`. No Consul is used: `consul` is rejected and `CONSUL_*` is ignored.',
  },
  probe: {
    type: 'object',
    doc: '',
  },
  maxReplicaLag: {
    type: 'object',
    doc: 'The most a replica may lag and still serve reads. An explicit object replaces both of its environment variables. See [Read routing](read-routing.md#replica-lag-limit).',
  },
  lagCheckIntervalMillis: {
    type: 'integer', min: 10, max: MAX_TIMER_MILLIS, default: 1000, env: 'PGCONSUL_LAG_CHECK_INTERVAL_MS',
    doc: 'Time between two lag measurements, ms (10 – 2³¹−1).',
  },
  autoReadRouting: {
    type: 'boolean', default: false, env: 'PGCONSUL_AUTO_READ_ROUTING',
    doc: 'Send certainly read-only `pool.query` statements to a replica. See [Read routing](read-routing.md#auto-read-routing).',
  },
  connectTimeoutMillis: {
    type: 'integer', min: 0, max: MAX_TIMER_MILLIS, default: 5000, env: 'PGCONSUL_CONNECT_TIMEOUT_MS',
    doc: 'Bound of one new PostgreSQL connection (TCP, TLS, startup, authentication, role check) when pg\'s `connectionTimeoutMillis` is not set, ms. `0` removes the bound. See [Failure detection](failure-detection.md).',
  },
  deadPeerAfterMillis: {
    type: 'integer', min: 0, max: MAX_TIMER_MILLIS, default: 2000, env: 'PGCONSUL_DEAD_PEER_AFTER_MS',
    doc: 'A checkout older than this makes pg-consul probe its node over a fresh connection; a node that does not answer is fenced and skipped until it answers. `0` turns detection off.',
  },
  deadPeerTimeoutMillis: {
    type: 'integer', min: 1, max: MAX_TIMER_MILLIS, default: 1000, env: 'PGCONSUL_DEAD_PEER_TIMEOUT_MS',
    doc: 'Deadline of one dead-peer probe, ms (two in a row must fail).',
  },
  endTimeoutMillis: {
    type: 'integer', min: 0, max: MAX_TIMER_MILLIS, default: 10_000, env: 'PGCONSUL_END_TIMEOUT_MS',
    doc: 'The longest `end()` waits for checked-out clients before closing their connections, ms. `0` waits like pg.Pool.',
  },
  'consul.host': {
    type: 'string', default: '127.0.0.1',
    doc: 'Instead of `address`.',
  },
  'consul.port': {
    type: 'integer', min: 1, max: 65_535, default: 8500,
    doc: 'Instead of `address`, 1–65535.',
  },
  'consul.address': {
    type: 'string', env: 'CONSUL_HTTP_ADDR',
    doc: '`host:port`, `[::1]:8500`, `http://…`, `https://…` or `unix:///path/consul.sock`. Without a port, the scheme\'s port (80 / 443). Exclusive with `host`/`port`.',
  },
  'consul.secure': {
    type: 'boolean', default: false, env: 'CONSUL_HTTP_SSL',
    doc: 'HTTPS; upgrades `host:port` and `http://` addresses.',
  },
  'consul.token': {
    type: 'string', secret: true, env: 'CONSUL_HTTP_TOKEN',
    doc: 'ACL token, sent as `X-Consul-Token` only. Secret.',
  },
  'consul.tokenFile': {
    type: 'string', env: 'CONSUL_HTTP_TOKEN_FILE',
    doc: 'File holding the token, read once and trimmed.',
  },
  'consul.auth': {
    type: 'string', secret: true, env: 'CONSUL_HTTP_AUTH',
    doc: 'HTTP basic auth, `user` or `user:password`. Secret.',
  },
  'consul.datacenter': {
    type: 'string', env: 'PGCONSUL_CONSUL_DATACENTER',
    doc: '`?dc=`. `CONSUL_DATACENTER` is deliberately not read (Consul\'s CLI has no such variable).',
  },
  'consul.consistency': {
    type: 'enum', values: ['default', 'stale', 'consistent'], default: 'default', env: 'PGCONSUL_CONSUL_CONSISTENCY',
    doc: '`default`, `stale` (any server answers; faster, may lag) or `consistent`.',
  },
  'consul.ca': {
    type: 'string',
    doc: 'PEM CA bundle (contents).',
  },
  'consul.caFile': {
    type: 'string', env: 'CONSUL_CACERT',
    doc: 'File with a PEM CA bundle.',
  },
  'consul.caPath': {
    type: 'string', env: 'CONSUL_CAPATH',
    doc: 'Directory of PEM CA certificates, read recursively.',
  },
  'consul.cert': {
    type: 'string',
    doc: 'PEM client certificate (contents); needs a key.',
  },
  'consul.certFile': {
    type: 'string', env: 'CONSUL_CLIENT_CERT',
    doc: 'File with the client certificate.',
  },
  'consul.key': {
    type: 'string', secret: true,
    doc: 'PEM client key (contents). Secret.',
  },
  'consul.keyFile': {
    type: 'string', env: 'CONSUL_CLIENT_KEY',
    doc: 'File with the client key.',
  },
  'consul.tlsServerName': {
    type: 'string', env: 'CONSUL_TLS_SERVER_NAME',
    doc: 'SNI and verification name; a `:port` suffix is dropped.',
  },
  'consul.verify': {
    type: 'boolean', default: true, env: 'CONSUL_HTTP_SSL_VERIFY',
    doc: 'Verify the server certificate.',
  },
  'consul.namespace': {
    type: 'string', env: 'CONSUL_NAMESPACE',
    doc: 'Consul Enterprise namespace (`?ns=`).',
  },
  'consul.partition': {
    type: 'string', env: 'CONSUL_PARTITION',
    doc: 'Consul Enterprise admin partition.',
  },
  'consul.near': {
    type: 'string', env: 'PGCONSUL_CONSUL_NEAR',
    doc: '`?near=` (`_agent` or a node name): nearest instances first; among equally busy replicas the nearest wins.',
  },
  'consul.waitSeconds': {
    type: 'integer', min: 1, max: 600, default: 300,
    doc: 'Blocking-query wait, 1–600 s.',
  },
  'consul.requestTimeoutMillis': {
    type: 'integer', min: 1, max: MAX_TIMER_MILLIS, default: 10_000,
    doc: 'Timeout of non-blocking requests, and slack on blocking ones, ms.',
  },
  'consul.connectTimeoutMillis': {
    type: 'integer', min: 0, max: MAX_TIMER_MILLIS, default: 2000,
    doc: 'Bound of the TCP connect (plus the TLS handshake) of one Consul request, ms. `0` = no connect bound of its own (the request deadline still applies). See [Consul requests](consul-requests.md).',
  },
  'patroni.namespace': {
    type: 'string', default: 'service', env: 'PGCONSUL_PATRONI_NAMESPACE',
    doc: 'Patroni\'s `namespace` (KV prefix `/service/`).',
  },
  'patroni.scope': {
    type: 'string', env: 'PGCONSUL_PATRONI_SCOPE',
    doc: 'Patroni\'s scope, when it differs from the Consul service name.',
  },
  'patroni.confirmPromotion': {
    type: 'boolean', default: true,
    doc: 'Probe the new leader with the pool\'s credentials and use it as soon as it accepts writes, instead of waiting for Patroni to rewrite its member key.',
  },
  'preparedQuery.name': {
    type: 'string', env: 'PGCONSUL_PREPARED_QUERY',
    doc: 'Name or id of the prepared query.',
  },
  'preparedQuery.intervalMillis': {
    type: 'integer', min: 1, max: MAX_TIMER_MILLIS, default: 1000, env: 'PGCONSUL_PREPARED_QUERY_INTERVAL_MS',
    doc: 'Re-execution interval, ms (a connection error triggers one at once).',
  },
  'probe.intervalMillis': {
    type: 'integer', min: 1, max: MAX_TIMER_MILLIS, default: 2000, env: 'PGCONSUL_PROBE_INTERVAL_MS',
    doc: 'Time between probe rounds of a static host list, ms.',
  },
  'probe.timeoutMillis': {
    type: 'integer', min: 1, max: MAX_TIMER_MILLIS, default: 1000, env: 'PGCONSUL_PROBE_TIMEOUT_MS',
    doc: 'Timeout of one probe, ms (also used by Patroni promotion checks).',
  },
  'maxReplicaLag.bytes': {
    type: 'integer', min: 0, max: Number.MAX_SAFE_INTEGER, env: 'PGCONSUL_MAX_REPLICA_LAG_BYTES',
    doc: 'Bytes of WAL a replica may have left to replay.',
  },
  'maxReplicaLag.seconds': {
    type: 'number', env: 'PGCONSUL_MAX_REPLICA_LAG_SECONDS',
    doc: 'Seconds a replica may be behind (fractions allowed).',
  },
} as const satisfies Record<string, OptionSpec>);

/** The name of an option in {@link OPTIONS} (`parent.key` for nested ones). */
export type OptionName = keyof typeof OPTIONS;
