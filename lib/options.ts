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
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { isIP, isIPv6 } from 'node:net';
import { join } from 'node:path';
import type pg from 'pg';
import { parse as parseConnectionString } from 'pg-connection-string';
import type { ConsulConfig } from './discovery/consul-config.js';
import type { DiscoverySource } from './discovery/discovery-source.js';
import { parseHostEntry } from './discovery/host-list.js';
import type { StaticHost } from './discovery/host-list.js';
import { createLogger } from './log.js';
import { assertKnownKeys, PG_OPTION_KEYS } from './option-keys.js';
import type { Logger } from './log.js';
import type { LagLimit } from './routing/lag.js';
import type { ReplicaTieBreak } from './topology/select.js';

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
  /** The logger to use: {@link createLogger} applied to the `logger` option (redacting, never throwing). */
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

/** Default values of every setting. */
export const DEFAULTS = Object.freeze({
  consulHost: '127.0.0.1',
  consulPort: 8500,
  consistency: 'default',
  waitSeconds: 300,
  requestTimeoutMillis: 10_000,
  consulConnectTimeoutMillis: 2_000,
  failoverTimeoutMillis: 30_000,
  primaryTags: Object.freeze(['primary', 'master']),
  replicaTags: Object.freeze(['replica']),
  readFallback: 'primary',
  retryInitialDelayMillis: 50,
  retryMaxDelayMillis: 1000,
  discoveryMinIntervalMillis: 100,
} as const);

/** Largest delay Node timers accept (2^31 − 1 ms); longer ones fire after 1 ms. */
const MAX_TIMER_MILLIS = 2_147_483_647;

const SERVICE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
const CONSUL_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
const HOST_NAME = /^[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*\.?$/;
const TOKEN_TEXT = /^[\x21-\x7e]+$/;
// eslint-disable-next-line no-control-regex
const CONTROL_CHAR = /[\x00-\x1f\x7f]/;
const PEM_CERTIFICATE = '-----BEGIN CERTIFICATE-----';
const PEM_PRIVATE_KEY = /-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----/;

/** pg-consul's own top-level keys: removed from the options passed to pg. */
const OWN_KEYS = [
  'service',
  'consul',
  'failoverTimeoutMillis',
  'primaryTags',
  'replicaTags',
  'readFallback',
  'retryInitialDelayMillis',
  'retryMaxDelayMillis',
  'discoveryMinIntervalMillis',
  'logger',
  // Discovery modes (see the "Discovery modes" block at the end).
  'discovery',
  'patroni',
  'preparedQuery',
  'hosts',
  'probe',
  // Read routing (see the "Read routing" block at the end).
  'maxReplicaLag',
  'lagCheckIntervalMillis',
  'autoReadRouting',
  // Failure detection (see the "Failure detection" block at the end).
  'connectTimeoutMillis',
  'deadPeerAfterMillis',
  'deadPeerTimeoutMillis',
  'endTimeoutMillis',
] as const;

const CONSUL_KEYS: ReadonlySet<string> = new Set<keyof ConsulOptions>([
  'host',
  'port',
  'address',
  'secure',
  'token',
  'tokenFile',
  'auth',
  'datacenter',
  'consistency',
  'ca',
  'caFile',
  'caPath',
  'cert',
  'certFile',
  'key',
  'keyFile',
  'tlsServerName',
  'verify',
  'namespace',
  'partition',
  'near',
  'waitSeconds',
  'requestTimeoutMillis',
  'connectTimeoutMillis',
]);

/** Where a value came from, for error messages. */
interface Origin {
  readonly kind: 'option' | 'env';
  readonly name: string;
}

function option(name: string): Origin {
  return { kind: 'option', name };
}

function envVar(name: string): Origin {
  return { kind: 'env', name };
}

function label(origin: Origin): string {
  return origin.kind === 'option' ? `option "${origin.name}"` : `environment variable ${origin.name}`;
}

/** A short, secret-free rendering of a value for an error message. */
function show(value: unknown): string {
  switch (typeof value) {
    case 'string':
      return JSON.stringify(value.length > 80 ? `${value.slice(0, 77)}...` : value);
    case 'number':
    case 'boolean':
      return String(value);
    case 'bigint':
      return `${value}n`;
    case 'undefined':
      return 'undefined';
    case 'function':
      return 'a function';
    case 'symbol':
      return 'a symbol';
    default:
      return value === null ? 'null' : Array.isArray(value) ? 'an array' : 'an object';
  }
}

function invalid(origin: Origin, expectation: string, value: unknown, secret = false): TypeError {
  return new TypeError(`pg-consul: ${label(origin)} ${expectation}, got ${secret ? '(value hidden)' : show(value)}`);
}

function fileError(origin: Origin, path: string, err: unknown): TypeError {
  const code = (err as { code?: unknown } | null)?.code;
  const why = typeof code === 'string' ? code : 'read failed';
  return new TypeError(`pg-consul: ${label(origin)} names a file that cannot be read: ${JSON.stringify(path)} (${why})`);
}

/** An environment variable's value; empty counts as unset, as in Consul's Go client. */
function readEnv(env: NodeJS.ProcessEnv, name: string): string | undefined {
  const value = env[name];
  return typeof value === 'string' && value !== '' ? value : undefined;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function nonEmptyString(value: unknown, origin: Origin, secret = false): string {
  if (typeof value !== 'string' || value === '') throw invalid(origin, 'must be a non-empty string', value, secret);
  return value;
}

function integer(value: unknown, origin: Origin, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw invalid(origin, `must be an integer from ${min} to ${max}`, value);
  }
  return value;
}

function envInteger(text: string, origin: Origin, min: number, max: number): number {
  const value = /^[0-9]{1,16}$/.test(text) ? Number(text) : Number.NaN;
  if (!(value >= min && value <= max)) throw invalid(origin, `must be an integer from ${min} to ${max}`, text);
  return value;
}

function boolean(value: unknown, origin: Origin): boolean {
  if (typeof value !== 'boolean') throw invalid(origin, 'must be a boolean', value);
  return value;
}

const GO_TRUE = new Set(['1', 't', 'T', 'TRUE', 'true', 'True']);
const GO_FALSE = new Set(['0', 'f', 'F', 'FALSE', 'false', 'False']);

/**
 * Parses a boolean exactly as Go's `strconv.ParseBool`: `1 t T TRUE true True` and
 * `0 f F FALSE false False`; anything else is a TypeError naming `origin`.
 */
function parseGoBool(text: string, origin: Origin): boolean {
  if (GO_TRUE.has(text)) return true;
  if (GO_FALSE.has(text)) return false;
  throw invalid(origin, 'must be one of 1, t, T, TRUE, true, True, 0, f, F, FALSE, false, False', text);
}

function oneOf<T extends string>(value: unknown, origin: Origin, allowed: readonly T[]): T {
  if (typeof value !== 'string' || !(allowed as readonly string[]).includes(value)) {
    throw invalid(origin, `must be one of ${allowed.map((a) => `"${a}"`).join(', ')}`, value);
  }
  return value as T;
}

function tagList(value: unknown, origin: Origin): readonly string[] {
  if (!Array.isArray(value)) throw invalid(origin, 'must be a non-empty array of non-empty strings', value);
  const tags: string[] = [];
  for (const tag of value as unknown[]) {
    if (typeof tag !== 'string' || tag === '') throw invalid(origin, 'must contain only non-empty strings', tag);
    if (!tags.includes(tag)) tags.push(tag);
  }
  if (tags.length === 0) throw invalid(origin, 'must be a non-empty array of non-empty strings', value);
  return tags;
}

function envTagList(text: string, origin: Origin): readonly string[] {
  const tags: string[] = [];
  for (const part of text.split(',')) {
    const tag = part.trim();
    if (tag !== '' && !tags.includes(tag)) tags.push(tag);
  }
  if (tags.length === 0) throw invalid(origin, 'must be a comma-separated list of tags', text);
  return tags;
}

/**
 * The value of a setting: the explicit option if defined, else the environment variable if
 * set and non-empty, else `undefined`.
 */
function pick<T>(
  value: unknown,
  name: string,
  env: NodeJS.ProcessEnv,
  envName: string | undefined,
  fromOption: (value: unknown, origin: Origin) => T,
  fromEnv: (text: string, origin: Origin) => T,
): T | undefined {
  if (value !== undefined) return fromOption(value, option(name));
  if (envName === undefined) return undefined;
  const text = readEnv(env, envName);
  return text === undefined ? undefined : fromEnv(text, envVar(envName));
}

/** Where `pick` would take a setting from, or undefined when it falls back to its default. */
function originOf(value: unknown, name: string, env: NodeJS.ProcessEnv, envName: string): Origin | undefined {
  if (value !== undefined) return option(name);
  return readEnv(env, envName) === undefined ? undefined : envVar(envName);
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    for (const key of Object.keys(value)) deepFreeze((value as Record<string, unknown>)[key]);
    Object.freeze(value);
  }
  return value;
}

/** Drops keys whose value is `undefined`, so resolved objects carry only what is set. */
function defined<T extends object>(value: T): T {
  for (const key of Object.keys(value)) {
    if ((value as Record<string, unknown>)[key] === undefined) delete (value as Record<string, unknown>)[key];
  }
  return value;
}

const defaultReadFile: ReadFile = (path) => readFileSync(path, 'utf8');

const defaultListFiles: ListFiles = (dir) => {
  const entries = readdirSync(dir, { recursive: true, encoding: 'utf8' });
  return entries
    .map((entry) => join(dir, entry))
    .filter((path) => statSync(path).isFile())
    .sort();
};

// ---------------------------------------------------------------------------------------
// Consul address

interface ParsedAddress {
  readonly scheme?: 'http' | 'https' | undefined;
  readonly host?: string | undefined;
  readonly port?: number | undefined;
  readonly socketPath?: string | undefined;
}

function parsePort(text: string, fail: (why: string) => TypeError): number {
  const port = /^[0-9]{1,5}$/.test(text) ? Number(text) : Number.NaN;
  if (!(port >= 1 && port <= 65535)) throw fail('has an invalid port (expected 1-65535)');
  return port;
}

/** Splits `host`, `host:port`, `[v6]` or `[v6]:port`; IPv6 hosts are returned without brackets. */
function parseHostPort(text: string, fail: (why: string) => TypeError): { host: string; port?: number } {
  if (text.startsWith('[')) {
    const end = text.indexOf(']');
    const host = end === -1 ? '' : text.slice(1, end);
    if (!isIPv6(host)) throw fail('has an invalid bracketed IPv6 address');
    const after = text.slice(end + 1);
    if (after === '') return { host };
    if (!after.startsWith(':')) throw fail('has unexpected text after the IPv6 address');
    return { host, port: parsePort(after.slice(1), fail) };
  }
  const colons = text.split(':').length - 1;
  if (colons > 1) throw fail('must write an IPv6 address in brackets, e.g. [::1]:8500');
  const [host = '', portText] = text.split(':');
  if (!HOST_NAME.test(host)) throw fail('has an invalid host');
  return portText === undefined ? { host } : { host, port: parsePort(portText, fail) };
}

/**
 * Parses a `CONSUL_HTTP_ADDR`-style address the way Consul's Go client does (`api.NewClient`):
 * `unix://<path>` → socket; `https://` → https; `http://` → http unless TLS is asked for
 * elsewhere; otherwise a bare `host[:port]`. A trailing `/` is allowed; a path prefix (which
 * the Go client supports behind reverse proxies) and credentials are rejected.
 */
function parseConsulAddress(text: string, origin: Origin): ParsedAddress {
  // An address with '@' may carry credentials: never echo it.
  const secret = text.includes('@');
  const fail = (why: string): TypeError => invalid(origin, why, text, secret);
  let rest = text;
  let scheme: 'http' | 'https' | undefined;
  const sep = text.indexOf('://');
  if (sep !== -1) {
    const prefix = text.slice(0, sep);
    rest = text.slice(sep + 3);
    if (prefix === 'unix') {
      if (rest === '') throw fail('needs a socket path after "unix://"');
      return { socketPath: rest };
    }
    if (prefix !== 'http' && prefix !== 'https') throw fail('must use the scheme http://, https:// or unix://');
    scheme = prefix;
    const slash = rest.indexOf('/');
    if (slash !== -1) {
      if (slash !== rest.length - 1) throw fail('must not contain a path (path prefixes are not supported)');
      rest = rest.slice(0, slash);
    }
  }
  if (secret) throw fail('must not contain credentials (use consul.auth or CONSUL_HTTP_AUTH)');
  return { scheme, ...parseHostPort(rest, fail) };
}

function explicitHost(value: unknown, origin: Origin): string {
  const text = nonEmptyString(value, origin);
  const host = text.startsWith('[') && text.endsWith(']') ? text.slice(1, -1) : text;
  if (host.includes(':') ? !isIPv6(host) : !HOST_NAME.test(host)) {
    throw invalid(origin, 'must be a host name or an IP address', value);
  }
  return host;
}

/** `CONSUL_TLS_SERVER_NAME` may carry a port, which Consul's Go client drops. */
function serverName(value: unknown, origin: Origin): string {
  const text = nonEmptyString(value, origin);
  const fail = (why: string): TypeError => invalid(origin, why, text);
  let name = text;
  if (text.startsWith('[')) name = parseHostPort(text, fail).host;
  else if (text.split(':').length === 2) name = text.slice(0, text.indexOf(':'));
  else if (text.includes(':')) throw fail('must write an IPv6 address in brackets');
  if (isIP(name) === 0 && !HOST_NAME.test(name)) throw fail('must be a host name or an IP address');
  return name;
}

// ---------------------------------------------------------------------------------------
// Files (token, CA, client certificate and key)

interface Io {
  readonly readFile: ReadFile;
  readonly listFiles: ListFiles;
}

function readText(path: string, origin: Origin, io: Io): string {
  try {
    const text = io.readFile(path);
    if (typeof text !== 'string') throw new TypeError('readFile returned a non-string');
    return text;
  } catch (err) {
    throw fileError(origin, path, err);
  }
}

function certificateText(text: string, origin: Origin, path?: string): string {
  if (!text.includes(PEM_CERTIFICATE)) {
    const where = path === undefined ? '' : ` (file ${JSON.stringify(path)})`;
    throw new TypeError(`pg-consul: ${label(origin)} must be PEM certificate text${where}, got (value hidden)`);
  }
  return text;
}

function caDirectory(dir: string, origin: Origin, io: Io): string {
  let files: readonly string[];
  try {
    files = io.listFiles(dir);
  } catch (err) {
    throw fileError(origin, dir, err);
  }
  if (files.length === 0) throw new TypeError(`pg-consul: ${label(origin)} names a directory with no files: ${JSON.stringify(dir)}`);
  return files
    .map((file) => certificateText(readText(file, origin, io), origin, file))
    .map((pem) => (pem.endsWith('\n') ? pem : `${pem}\n`))
    .join('');
}

function resolveCa(c: ConsulOptions, env: NodeJS.ProcessEnv, io: Io): string | undefined {
  const given = (['ca', 'caFile', 'caPath'] as const).filter((k) => c[k] !== undefined);
  if (given.length > 1) {
    throw new TypeError(`pg-consul: options "consul.${given[0]}" and "consul.${given[1]}" cannot be combined`);
  }
  if (c.ca !== undefined) {
    const origin = option('consul.ca');
    return certificateText(nonEmptyString(c.ca, origin), origin);
  }
  if (c.caFile !== undefined) {
    const origin = option('consul.caFile');
    const path = nonEmptyString(c.caFile, origin);
    return certificateText(readText(path, origin, io), origin, path);
  }
  if (c.caPath !== undefined) {
    const origin = option('consul.caPath');
    return caDirectory(nonEmptyString(c.caPath, origin), origin, io);
  }
  const caFile = readEnv(env, 'CONSUL_CACERT');
  if (caFile !== undefined) {
    const origin = envVar('CONSUL_CACERT');
    return certificateText(readText(caFile, origin, io), origin, caFile);
  }
  const caPath = readEnv(env, 'CONSUL_CAPATH');
  return caPath === undefined ? undefined : caDirectory(caPath, envVar('CONSUL_CAPATH'), io);
}

/**
 * One PEM item given as text (`inline`), as a file (`file`) or by an environment variable
 * naming a file. Returns the text and where it came from.
 */
function resolvePem(
  c: ConsulOptions,
  inline: 'cert' | 'key',
  file: 'certFile' | 'keyFile',
  envName: string,
  env: NodeJS.ProcessEnv,
  io: Io,
  check: (text: string, origin: Origin, path?: string) => string,
): { text: string; origin: Origin } | undefined {
  const secret = inline === 'key';
  if (c[inline] !== undefined && c[file] !== undefined) {
    throw new TypeError(`pg-consul: options "consul.${inline}" and "consul.${file}" cannot be combined`);
  }
  if (c[inline] !== undefined) {
    const origin = option(`consul.${inline}`);
    return { text: check(nonEmptyString(c[inline], origin, secret), origin), origin };
  }
  let origin: Origin;
  let path: string;
  if (c[file] !== undefined) {
    origin = option(`consul.${file}`);
    path = nonEmptyString(c[file], origin);
  } else {
    const fromEnv = readEnv(env, envName);
    if (fromEnv === undefined) return undefined;
    origin = envVar(envName);
    path = fromEnv;
  }
  return { text: check(readText(path, origin, io), origin, path), origin };
}

function privateKeyText(text: string, origin: Origin, path?: string): string {
  if (!PEM_PRIVATE_KEY.test(text)) {
    const where = path === undefined ? '' : ` (file ${JSON.stringify(path)})`;
    throw new TypeError(`pg-consul: ${label(origin)} must be a PEM private key${where}, got (value hidden)`);
  }
  return text;
}

function tokenText(value: unknown, origin: Origin): string {
  if (typeof value !== 'string' || !TOKEN_TEXT.test(value)) {
    throw invalid(origin, 'must be a non-empty string of printable characters without spaces', value, true);
  }
  return value;
}

/**
 * The ACL token: explicit `tokenFile` > explicit `token`; only when neither is given,
 * `CONSUL_HTTP_TOKEN_FILE` > `CONSUL_HTTP_TOKEN`. A token file is trimmed; an empty one falls
 * back to the token of the same level, as in Consul's Go client.
 */
function resolveToken(c: ConsulOptions, env: NodeJS.ProcessEnv, io: Io): string | undefined {
  const explicit = c.token !== undefined || c.tokenFile !== undefined;
  const fileOrigin = explicit ? option('consul.tokenFile') : envVar('CONSUL_HTTP_TOKEN_FILE');
  const tokenOrigin = explicit ? option('consul.token') : envVar('CONSUL_HTTP_TOKEN');
  const file = explicit ? c.tokenFile : readEnv(env, 'CONSUL_HTTP_TOKEN_FILE');
  const token = explicit ? c.token : readEnv(env, 'CONSUL_HTTP_TOKEN');
  if (file !== undefined) {
    const path = nonEmptyString(file, fileOrigin);
    const content = readText(path, fileOrigin, io).trim();
    if (content !== '') {
      if (!TOKEN_TEXT.test(content)) {
        throw new TypeError(
          `pg-consul: ${label(fileOrigin)} names a file whose content is not a valid token: ${JSON.stringify(path)} (value hidden)`,
        );
      }
      return content;
    }
  }
  return token === undefined ? undefined : tokenText(token, tokenOrigin);
}

function resolveBasicAuth(c: ConsulOptions, env: NodeJS.ProcessEnv): { username: string; password: string } | undefined {
  return pick(
    c.auth,
    'consul.auth',
    env,
    'CONSUL_HTTP_AUTH',
    (value, origin) => splitAuth(nonEmptyString(value, origin, true), origin),
    (text, origin) => splitAuth(text, origin),
  );
}

function splitAuth(text: string, origin: Origin): { username: string; password: string } {
  if (CONTROL_CHAR.test(text)) throw invalid(origin, 'must be "user" or "user:password" without control characters', text, true);
  const colon = text.indexOf(':');
  return colon === -1 ? { username: text, password: '' } : { username: text.slice(0, colon), password: text.slice(colon + 1) };
}

function consulName(value: unknown, origin: Origin): string {
  if (typeof value !== 'string' || !CONSUL_NAME.test(value)) {
    throw invalid(origin, 'must be a name of letters, digits, ".", "_" or "-"', value);
  }
  return value;
}

interface ResolvedConsul {
  readonly config: ConsulConfig;
  readonly waitSeconds: number;
  readonly requestTimeoutMillis: number;
  readonly connectTimeoutMillis: number;
}

function resolveConsul(raw: unknown, env: NodeJS.ProcessEnv, io: Io): ResolvedConsul {
  if (raw !== undefined && !isObject(raw)) throw invalid(option('consul'), 'must be an object', raw);
  const c = (raw ?? {}) as ConsulOptions;
  assertKnownKeys(c, [...CONSUL_KEYS], 'consul');

  // Where: explicit address | explicit host/port | CONSUL_HTTP_ADDR | default.
  if (c.address !== undefined && (c.host !== undefined || c.port !== undefined)) {
    throw new TypeError(`pg-consul: option "consul.address" cannot be combined with "consul.${c.host !== undefined ? 'host' : 'port'}"`);
  }
  let where: ParsedAddress;
  let defaultPort: number | undefined;
  if (c.address !== undefined) {
    where = parseConsulAddress(nonEmptyString(c.address, option('consul.address')), option('consul.address'));
  } else if (c.host !== undefined || c.port !== undefined) {
    where = {
      host: c.host === undefined ? DEFAULTS.consulHost : explicitHost(c.host, option('consul.host')),
      port: c.port === undefined ? undefined : integer(c.port, option('consul.port'), 1, 65535),
    };
    defaultPort = DEFAULTS.consulPort;
  } else {
    const fromEnv = readEnv(env, 'CONSUL_HTTP_ADDR');
    if (fromEnv === undefined) {
      where = { host: DEFAULTS.consulHost };
      defaultPort = DEFAULTS.consulPort;
    } else {
      where = parseConsulAddress(fromEnv, envVar('CONSUL_HTTP_ADDR'));
    }
  }
  const secure = pick(c.secure, 'consul.secure', env, 'CONSUL_HTTP_SSL', boolean, parseGoBool) ?? false;
  const scheme = where.scheme === 'https' || secure ? 'https' : 'http';
  const port = where.port ?? defaultPort ?? (scheme === 'https' ? 443 : 80);

  const verify = pick(c.verify, 'consul.verify', env, 'CONSUL_HTTP_SSL_VERIFY', boolean, parseGoBool) ?? true;
  const servername = pick(c.tlsServerName, 'consul.tlsServerName', env, 'CONSUL_TLS_SERVER_NAME', serverName, serverName);
  const ca = resolveCa(c, env, io);
  const cert = resolvePem(c, 'cert', 'certFile', 'CONSUL_CLIENT_CERT', env, io, certificateText);
  const key = resolvePem(c, 'key', 'keyFile', 'CONSUL_CLIENT_KEY', env, io, privateKeyText);
  if (cert !== undefined && key === undefined) {
    throw new TypeError(`pg-consul: ${label(cert.origin)} is set but no client key is (consul.key, consul.keyFile or CONSUL_CLIENT_KEY)`);
  }
  if (key !== undefined && cert === undefined) {
    throw new TypeError(`pg-consul: ${label(key.origin)} is set but no client certificate is (consul.cert, consul.certFile or CONSUL_CLIENT_CERT)`);
  }

  const config: ConsulConfig = defined({
    scheme,
    host: where.socketPath === undefined ? (where.host ?? DEFAULTS.consulHost) : 'localhost',
    port,
    socketPath: where.socketPath,
    token: resolveToken(c, env, io),
    basicAuth: resolveBasicAuth(c, env),
    datacenter: pick(c.datacenter, 'consul.datacenter', env, 'PGCONSUL_CONSUL_DATACENTER', consulName, consulName),
    consistency:
      pick(
        c.consistency,
        'consul.consistency',
        env,
        'PGCONSUL_CONSUL_CONSISTENCY',
        (v, o) => oneOf(v, o, ['default', 'stale', 'consistent'] as const),
        (v, o) => oneOf(v, o, ['default', 'stale', 'consistent'] as const),
      ) ?? DEFAULTS.consistency,
    namespace: pick(c.namespace, 'consul.namespace', env, 'CONSUL_NAMESPACE', consulName, consulName),
    partition: pick(c.partition, 'consul.partition', env, 'CONSUL_PARTITION', consulName, consulName),
    tls: defined({ ca, cert: cert?.text, key: key?.text, servername, rejectUnauthorized: verify }),
  });

  const waitSeconds =
    c.waitSeconds === undefined ? DEFAULTS.waitSeconds : integer(c.waitSeconds, option('consul.waitSeconds'), 1, 600);
  const requestTimeoutMillis =
    c.requestTimeoutMillis === undefined
      ? DEFAULTS.requestTimeoutMillis
      : integer(c.requestTimeoutMillis, option('consul.requestTimeoutMillis'), 1, MAX_TIMER_MILLIS);
  const connectTimeoutMillis =
    c.connectTimeoutMillis === undefined
      ? DEFAULTS.consulConnectTimeoutMillis
      : integer(c.connectTimeoutMillis, option('consul.connectTimeoutMillis'), 0, MAX_TIMER_MILLIS);
  return { config: deepFreeze(config), waitSeconds, requestTimeoutMillis, connectTimeoutMillis };
}

// ---------------------------------------------------------------------------------------
// pg options

/** A connection-string field that carries a value (pg-connection-string uses '' and null for "none"). */
function isSet(value: unknown): boolean {
  return value !== '' && value !== null && value !== undefined;
}

/**
 * The caller's pg options minus pg-consul's keys, `host`/`port` rejected and a connection
 * string expanded (its host and port dropped). Frozen at the top level only.
 */
function resolvePgOptions(rest: Record<string, unknown>, log: Logger): Readonly<pg.PoolConfig> {
  for (const key of ['host', 'port'] as const) {
    if (rest[key] !== undefined) {
      throw new TypeError(
        `pg-consul: option "${key}" is not supported: pg-consul connects to the nodes Consul lists for the service (remove "${key}")`,
      );
    }
  }
  const out: Record<string, unknown> = { ...rest };
  delete out.host;
  delete out.port;
  delete out.connectionString;
  if (rest.connectionString !== undefined) {
    if (typeof rest.connectionString !== 'string' || rest.connectionString === '') {
      throw invalid(option('connectionString'), 'must be a non-empty string', rest.connectionString, true);
    }
    let parsed: Record<string, unknown>;
    try {
      parsed = parseConnectionString(rest.connectionString);
    } catch (err) {
      // No `cause`: URL errors carry the input, and the input carries the password.
      const code = (err as { code?: unknown } | null)?.code;
      throw new TypeError(`pg-consul: option "connectionString" could not be parsed${typeof code === 'string' ? ` (${code})` : ''}, got (value hidden)`);
    }
    if (isSet(parsed.host) || isSet(parsed.port)) {
      log('debug', 'the host and port of option "connectionString" are ignored: pg-consul connects to the nodes Consul lists');
    }
    for (const [key, value] of Object.entries(parsed)) {
      if (key === 'host' || key === 'port' || !isSet(value)) continue;
      out[key] = value;
    }
  }
  return Object.freeze(out) as Readonly<pg.PoolConfig>;
}

// ---------------------------------------------------------------------------------------

/**
 * Resolves and validates pool options: explicit options win over environment variables,
 * which win over defaults. Reads the files named by the options or the environment (token,
 * CA bundle or directory, client certificate and key) through `readFile`/`listFiles`.
 *
 * Throws a `TypeError` naming the offending option (`option "consul.port" …`) or environment
 * variable (`environment variable CONSUL_HTTP_SSL_VERIFY …`) for any missing or invalid value;
 * secret values are never included (`(value hidden)`). An unknown key — one that neither pg
 * (`pg.PoolConfig` / `pg.ClientConfig`) nor pg-consul reads — is a TypeError naming it and the
 * closest valid key; with a custom `Client` class, unknown top-level keys are passed on to it.
 *
 * Environment variables read: `PGCONSUL_SERVICE`, `PGCONSUL_FAILOVER_TIMEOUT_MS`,
 * `PGCONSUL_PRIMARY_TAGS`, `PGCONSUL_REPLICA_TAGS`, `PGCONSUL_READ_FALLBACK`,
 * `PGCONSUL_CONSUL_DATACENTER`, `PGCONSUL_CONSUL_CONSISTENCY`, `CONSUL_HTTP_ADDR`,
 * `CONSUL_HTTP_TOKEN`, `CONSUL_HTTP_TOKEN_FILE`, `CONSUL_HTTP_AUTH`, `CONSUL_HTTP_SSL`,
 * `CONSUL_HTTP_SSL_VERIFY`, `CONSUL_CACERT`, `CONSUL_CAPATH`, `CONSUL_CLIENT_CERT`,
 * `CONSUL_CLIENT_KEY`, `CONSUL_TLS_SERVER_NAME`, `CONSUL_NAMESPACE`, `CONSUL_PARTITION`.
 *
 * @param options the pool options (may be undefined when everything comes from the environment)
 * @param env environment to read, default `process.env`
 * @param readFile reads a UTF-8 text file, default `fs.readFileSync(path, 'utf8')`
 * @param listFiles lists the files under a CA directory, default a recursive `fs.readdirSync`
 * @returns the frozen, validated options
 *
 * @example
 * ```ts
 * const resolved = resolveOptions(
 *   { service: 'pglab', user: 'app', consul: { address: 'unix:///run/consul/http.sock' } },
 *   { CONSUL_HTTP_TOKEN: 'b1gs3cr3t', PGCONSUL_FAILOVER_TIMEOUT_MS: '10000' },
 * );
 * resolved.consul.socketPath;        // '/run/consul/http.sock'
 * resolved.consul.token;             // 'b1gs3cr3t'
 * resolved.failoverTimeoutMillis;    // 10000
 * resolved.pg;                       // { user: 'app' }
 * ```
 */
export function resolveOptions(
  options: PoolOptions | undefined,
  env: NodeJS.ProcessEnv = process.env,
  readFile: ReadFile = defaultReadFile,
  listFiles: ListFiles = defaultListFiles,
): ResolvedOptions {
  if (options !== undefined && !isObject(options)) {
    throw new TypeError(`pg-consul: options must be an object, got ${show(options)}`);
  }
  // Unknown keys are typos: rejected, naming the closest valid key. A custom `Client` class
  // may read keys of its own, so with one only pg-consul's nested options are checked.
  if (options !== undefined && options.Client === undefined) assertKnownKeys(options, [...OWN_KEYS, ...PG_OPTION_KEYS]);
  const all: Record<string, unknown> = { ...(options ?? {}) };
  const own: Partial<Record<(typeof OWN_KEYS)[number], unknown>> = {};
  for (const key of OWN_KEYS) {
    own[key] = all[key];
    delete all[key];
  }

  if (own.logger !== undefined && typeof own.logger !== 'function') {
    throw invalid(option('logger'), 'must be a function', own.logger);
  }
  const logger = createLogger(own.logger as Logger | undefined);

  // A static host list needs no Consul: no service, and Consul's environment is not read.
  const staticHosts = own.hosts !== undefined || readEnv(env, 'PGCONSUL_HOSTS') !== undefined;
  const service = pick(own.service, 'service', env, 'PGCONSUL_SERVICE', serviceName, serviceName) ?? (staticHosts ? STATIC_SERVICE : undefined);
  if (service === undefined) {
    throw new TypeError('pg-consul: option "service" is required (or set the environment variable PGCONSUL_SERVICE)');
  }

  const consul = resolveConsul(own.consul, staticHosts ? {} : env, { readFile, listFiles });

  const failoverTimeoutMillis =
    pick(
      own.failoverTimeoutMillis,
      'failoverTimeoutMillis',
      env,
      'PGCONSUL_FAILOVER_TIMEOUT_MS',
      (v, o) => integer(v, o, 0, MAX_TIMER_MILLIS),
      (v, o) => envInteger(v, o, 0, MAX_TIMER_MILLIS),
    ) ?? DEFAULTS.failoverTimeoutMillis;

  const primaryTags = pick(own.primaryTags, 'primaryTags', env, 'PGCONSUL_PRIMARY_TAGS', tagList, envTagList) ?? DEFAULTS.primaryTags;
  const replicaTags = pick(own.replicaTags, 'replicaTags', env, 'PGCONSUL_REPLICA_TAGS', tagList, envTagList) ?? DEFAULTS.replicaTags;
  const shared = replicaTags.find((tag) => primaryTags.includes(tag));
  if (shared !== undefined) {
    // Name the setting the caller gave; when both were given, the replica tags.
    const replicaOrigin = originOf(own.replicaTags, 'replicaTags', env, 'PGCONSUL_REPLICA_TAGS');
    const origin = replicaOrigin ?? originOf(own.primaryTags, 'primaryTags', env, 'PGCONSUL_PRIMARY_TAGS') ?? option('replicaTags');
    throw new TypeError(`pg-consul: ${label(origin)} must not share tags with the other role, got ${show(shared)} in both`);
  }

  const readFallback =
    pick(
      own.readFallback,
      'readFallback',
      env,
      'PGCONSUL_READ_FALLBACK',
      (v, o) => oneOf(v, o, ['primary', 'fail'] as const),
      (v, o) => oneOf(v, o, ['primary', 'fail'] as const),
    ) ?? DEFAULTS.readFallback;

  const explicitInitial =
    own.retryInitialDelayMillis === undefined
      ? undefined
      : integer(own.retryInitialDelayMillis, option('retryInitialDelayMillis'), 1, MAX_TIMER_MILLIS);
  const explicitMax =
    own.retryMaxDelayMillis === undefined
      ? undefined
      : integer(own.retryMaxDelayMillis, option('retryMaxDelayMillis'), 1, MAX_TIMER_MILLIS);
  const retryInitialDelayMillis = explicitInitial ?? Math.min(DEFAULTS.retryInitialDelayMillis, explicitMax ?? Infinity);
  const retryMaxDelayMillis = explicitMax ?? Math.max(DEFAULTS.retryMaxDelayMillis, retryInitialDelayMillis);
  if (retryMaxDelayMillis < retryInitialDelayMillis) {
    throw invalid(option('retryMaxDelayMillis'), `must be at least retryInitialDelayMillis (${retryInitialDelayMillis})`, retryMaxDelayMillis);
  }

  const discoveryMinIntervalMillis =
    own.discoveryMinIntervalMillis === undefined
      ? DEFAULTS.discoveryMinIntervalMillis
      : integer(own.discoveryMinIntervalMillis, option('discoveryMinIntervalMillis'), 0, MAX_TIMER_MILLIS);

  const pgOptions = resolvePgOptions(all, logger);

  return Object.freeze({
    service,
    consul: consul.config,
    waitSeconds: consul.waitSeconds,
    requestTimeoutMillis: consul.requestTimeoutMillis,
    consulConnectTimeoutMillis: consul.connectTimeoutMillis,
    failoverTimeoutMillis,
    primaryTags: Object.freeze([...primaryTags]),
    replicaTags: Object.freeze([...replicaTags]),
    readFallback,
    retryInitialDelayMillis,
    retryMaxDelayMillis,
    discoveryMinIntervalMillis,
    logger,
    pg: pgOptions,
  });
}

function serviceName(value: unknown, origin: Origin): string {
  if (typeof value !== 'string' || !SERVICE_NAME.test(value)) {
    throw invalid(origin, 'must be a Consul service name matching /^[A-Za-z0-9][A-Za-z0-9._-]*$/', value);
  }
  return value;
}

// ---------------------------------------------------------------------------------------
// Discovery modes (issues 5 and 7): which source follows the cluster, and its settings.
// Resolved separately from the core options (resolveDiscoveryOptions) so ResolvedOptions
// keeps its shape; resolveOptions only strips these keys from the pg options, and skips the
// `service` requirement and Consul's environment when a static host list is given.

/** The discovery modes selectable by name; see {@link PoolOptions.discovery}. */
export type DiscoveryMode = 'auto' | 'consul-health' | 'patroni' | 'patroni+health' | 'prepared-query' | 'static';

/** All {@link DiscoveryMode}s. */
export const DISCOVERY_MODES: readonly DiscoveryMode[] = Object.freeze(['auto', 'consul-health', 'patroni', 'patroni+health', 'prepared-query', 'static']);

/**
 * Where Patroni keeps its state in Consul KV: `<namespace>/<scope>/`.
 *
 * @example
 * ```ts
 * const patroni: PatroniOptions = { namespace: '/service/', scope: 'pg_main' };
 * ```
 */
export interface PatroniOptions {
  /** Patroni's `namespace` (slashes around it ignored). Env: `PGCONSUL_PATRONI_NAMESPACE`. Default `service`. */
  namespace?: string;
  /**
   * Patroni's `scope`, exactly as in patroni.yml (the Consul service name is the scope
   * lowercased with `._ ` turned into `-`, so they can differ). Env: `PGCONSUL_PATRONI_SCOPE`.
   * Default: the `service` option.
   */
  scope?: string;
  /**
   * When the leader key names a member that Patroni still reports as `replica` (it promotes
   * after taking the key, and rewrites its member key a `loop_wait` later), probe it with the
   * pool's credentials and make it the primary as soon as it accepts writes. false: wait for
   * Patroni to report role `promoted`/`master`. Default true.
   */
  confirmPromotion?: boolean;
}

/**
 * A Consul prepared query to follow.
 *
 * @example
 * ```ts
 * const preparedQuery: PreparedQueryOptions = { name: 'pglab-geo', intervalMillis: 500 };
 * ```
 */
export interface PreparedQueryOptions {
  /** Name or ID of the query. Env: `PGCONSUL_PREPARED_QUERY`. Required in this mode. */
  name: string;
  /** Time between two executions, ms (≥ 1). Env: `PGCONSUL_PREPARED_QUERY_INTERVAL_MS`. Default 1000. */
  intervalMillis?: number;
}

/**
 * How servers are probed for their role (static hosts; Patroni promotion checks).
 *
 * @example
 * ```ts
 * const probe: HostProbeOptions = { intervalMillis: 1_000, timeoutMillis: 500 };
 * ```
 */
export interface HostProbeOptions {
  /** Time between two probe rounds of a static host list, ms (≥ 1). Env: `PGCONSUL_PROBE_INTERVAL_MS`. Default 2000. */
  intervalMillis?: number;
  /** Connect + query deadline of one probe, ms (≥ 1). Env: `PGCONSUL_PROBE_TIMEOUT_MS`. Default 1000. */
  timeoutMillis?: number;
}

/** The resolved discovery settings, frozen. */
export interface ResolvedDiscovery {
  /** The mode. */
  readonly mode: DiscoveryMode;
  /** `?near=` for health and prepared-query reads, if set. */
  readonly near: string | undefined;
  /** Patroni KV location and promotion check (used by the patroni modes). */
  readonly patroni: { readonly namespace: string; readonly scope: string; readonly confirmPromotion: boolean };
  /** The prepared query (mode `prepared-query` only). */
  readonly preparedQuery: { readonly name: string; readonly intervalMillis: number } | undefined;
  /** The static hosts (mode `static` only). */
  readonly hosts: readonly StaticHost[] | undefined;
  /** Probe interval and timeout. */
  readonly probe: { readonly intervalMillis: number; readonly timeoutMillis: number };
}

/** Defaults of the discovery settings. */
export const DISCOVERY_DEFAULTS = Object.freeze({
  mode: 'auto',
  patroniNamespace: 'service',
  confirmPromotion: true,
  preparedQueryIntervalMillis: 1000,
  probeIntervalMillis: 2000,
  probeTimeoutMillis: 1000,
} as const);

/** The `service` label of a pool on a static host list that was given none. */
export const STATIC_SERVICE = 'static';

const PATRONI_NAMESPACE = /^\/*(?:[A-Za-z0-9._-]+(?:\/+[A-Za-z0-9._-]+)*)?\/*$/;
const NEAR_NODE = /^(?:_agent|[A-Za-z0-9][A-Za-z0-9._-]*)$/;
const PATRONI_KEYS: ReadonlySet<string> = new Set(['namespace', 'scope', 'confirmPromotion']);
const PREPARED_QUERY_KEYS: ReadonlySet<string> = new Set(['name', 'intervalMillis']);
const PROBE_KEYS: ReadonlySet<string> = new Set(['intervalMillis', 'timeoutMillis']);

function knownKeys(value: unknown, name: string, keys: ReadonlySet<string>): Record<string, unknown> | undefined {
  if (value === undefined) return undefined;
  if (!isObject(value)) throw invalid(option(name), 'must be an object', value);
  assertKnownKeys(value, [...keys], name);
  return value;
}

function hostList(value: unknown, origin: Origin): readonly StaticHost[] {
  const entries = typeof value === 'string' ? value.split(',').map((e) => e.trim()).filter((e) => e !== '') : value;
  if (!Array.isArray(entries) || entries.length === 0) throw invalid(origin, 'must be a non-empty list of "host:port" entries', value);
  const hosts: StaticHost[] = [];
  const seen = new Set<string>();
  for (const entry of entries as unknown[]) {
    if (typeof entry !== 'string') throw invalid(origin, 'must contain only "host:port" strings', entry);
    // An entry with `@` may carry credentials (a connection URL pasted by mistake): never echo it.
    if (entry.includes('@')) throw invalid(origin, 'must contain "host:port" entries, not URLs or credentials', entry, true);
    const parsed = parseHostEntry(entry);
    if (typeof parsed === 'string') throw invalid(origin, `has an unusable entry (${parsed})`, entry);
    const key = `${parsed.host.includes(':') ? `[${parsed.host}]` : parsed.host}:${parsed.port}`;
    if (seen.has(key)) throw invalid(origin, 'must not list a server twice', entry);
    seen.add(key);
    hosts.push(Object.freeze(parsed));
  }
  return Object.freeze(hosts);
}

function millis(own: Record<string, unknown> | undefined, key: string, name: string, env: NodeJS.ProcessEnv, envName: string, fallback: number): number {
  return (
    pick(
      own?.[key],
      name,
      env,
      envName,
      (v, o) => integer(v, o, 1, MAX_TIMER_MILLIS),
      (v, o) => envInteger(v, o, 1, MAX_TIMER_MILLIS),
    ) ?? fallback
  );
}

/**
 * Resolves and validates the discovery settings of `options` (explicit options, then
 * environment variables, then {@link DISCOVERY_DEFAULTS}). Call it after
 * {@link resolveOptions}, with the service it resolved (the default Patroni scope).
 *
 * Rules: `hosts` implies `static` and `preparedQuery` implies `prepared-query` when
 * `discovery` is not set; a mode that contradicts them, `static` without hosts,
 * `prepared-query` without a query name, `patroni` settings with a non-Patroni mode, and
 * `consul` with a host list are TypeErrors naming the option. A custom `DiscoverySource`
 * object in `discovery` is the Pool's business: pass `discovery: undefined` here.
 *
 * Environment variables read: `PGCONSUL_DISCOVERY`, `PGCONSUL_HOSTS`,
 * `PGCONSUL_PATRONI_NAMESPACE`, `PGCONSUL_PATRONI_SCOPE`, `PGCONSUL_PREPARED_QUERY`,
 * `PGCONSUL_PREPARED_QUERY_INTERVAL_MS`, `PGCONSUL_PROBE_INTERVAL_MS`,
 * `PGCONSUL_PROBE_TIMEOUT_MS`, `PGCONSUL_CONSUL_NEAR`.
 *
 * @param options the pool options
 * @param service the resolved service name (`ResolvedOptions.service`)
 * @param env environment to read, default `process.env`
 * @returns the frozen discovery settings
 * @throws TypeError naming the offending option or environment variable
 *
 * @example
 * ```ts
 * const resolved = resolveOptions({ service: 'pglab', discovery: 'patroni' });
 * resolveDiscoveryOptions({ discovery: 'patroni', patroni: { scope: 'pg_lab' } }, resolved.service);
 * // { mode: 'patroni', patroni: { namespace: 'service', scope: 'pg_lab', confirmPromotion: true }, … }
 * ```
 */
export function resolveDiscoveryOptions(options: PoolOptions | undefined, service: string, env: NodeJS.ProcessEnv = process.env): ResolvedDiscovery {
  const o = (options ?? {}) as Record<string, unknown>;
  const explicitMode = pick(
    isObject(o['discovery']) ? undefined : o['discovery'],
    'discovery',
    env,
    'PGCONSUL_DISCOVERY',
    (v, origin) => oneOf(v, origin, DISCOVERY_MODES),
    (v, origin) => oneOf(v, origin, DISCOVERY_MODES),
  );
  const modeOrigin = originOf(isObject(o['discovery']) ? undefined : o['discovery'], 'discovery', env, 'PGCONSUL_DISCOVERY') ?? option('discovery');

  const hosts = pick(o['hosts'], 'hosts', env, 'PGCONSUL_HOSTS', hostList, hostList);
  const pq = knownKeys(o['preparedQuery'], 'preparedQuery', PREPARED_QUERY_KEYS);
  const pqName = pick(pq?.['name'], 'preparedQuery.name', env, 'PGCONSUL_PREPARED_QUERY', consulName, consulName);

  const mode: DiscoveryMode = explicitMode ?? (hosts !== undefined ? 'static' : pq !== undefined ? 'prepared-query' : DISCOVERY_DEFAULTS.mode);
  if (hosts !== undefined && mode !== 'static') {
    throw new TypeError(`pg-consul: ${label(modeOrigin)} is ${JSON.stringify(mode)}, but "hosts" (a static host list) needs "static"`);
  }
  if (mode === 'static' && hosts === undefined) {
    throw new TypeError(`pg-consul: ${label(modeOrigin)} "static" needs option "hosts" (or PGCONSUL_HOSTS)`);
  }
  if (mode === 'static' && o['consul'] !== undefined) {
    throw new TypeError('pg-consul: option "consul" cannot be combined with "hosts": a static host list uses no Consul');
  }
  if (pq !== undefined && mode !== 'prepared-query') {
    throw new TypeError(`pg-consul: option "preparedQuery" is only used with discovery "prepared-query", got ${JSON.stringify(mode)}`);
  }
  if (mode === 'prepared-query' && pqName === undefined) {
    throw new TypeError('pg-consul: discovery "prepared-query" needs option "preparedQuery.name" (or PGCONSUL_PREPARED_QUERY)');
  }
  const patroniRaw = knownKeys(o['patroni'], 'patroni', PATRONI_KEYS);
  if (patroniRaw !== undefined && mode !== 'auto' && mode !== 'patroni' && mode !== 'patroni+health') {
    throw new TypeError(`pg-consul: option "patroni" is only used with discovery "auto", "patroni" or "patroni+health", got ${JSON.stringify(mode)}`);
  }

  const namespace =
    pick(
      patroniRaw?.['namespace'],
      'patroni.namespace',
      env,
      'PGCONSUL_PATRONI_NAMESPACE',
      (v, origin) => patroniNamespace(v, origin),
      (v, origin) => patroniNamespace(v, origin),
    ) ?? DISCOVERY_DEFAULTS.patroniNamespace;
  const scope = pick(patroniRaw?.['scope'], 'patroni.scope', env, 'PGCONSUL_PATRONI_SCOPE', consulName, consulName) ?? service;
  const confirmPromotion =
    patroniRaw?.['confirmPromotion'] === undefined ? DISCOVERY_DEFAULTS.confirmPromotion : boolean(patroniRaw['confirmPromotion'], option('patroni.confirmPromotion'));

  const consulRaw = isObject(o['consul']) ? o['consul'] : undefined;
  const near = pick(consulRaw?.['near'], 'consul.near', env, 'PGCONSUL_CONSUL_NEAR', nearNode, nearNode);

  const probeRaw = knownKeys(o['probe'], 'probe', PROBE_KEYS);
  const probe = Object.freeze({
    intervalMillis: millis(probeRaw, 'intervalMillis', 'probe.intervalMillis', env, 'PGCONSUL_PROBE_INTERVAL_MS', DISCOVERY_DEFAULTS.probeIntervalMillis),
    timeoutMillis: millis(probeRaw, 'timeoutMillis', 'probe.timeoutMillis', env, 'PGCONSUL_PROBE_TIMEOUT_MS', DISCOVERY_DEFAULTS.probeTimeoutMillis),
  });
  const preparedQuery =
    mode === 'prepared-query' && pqName !== undefined
      ? Object.freeze({
          name: pqName,
          intervalMillis: millis(pq, 'intervalMillis', 'preparedQuery.intervalMillis', env, 'PGCONSUL_PREPARED_QUERY_INTERVAL_MS', DISCOVERY_DEFAULTS.preparedQueryIntervalMillis),
        })
      : undefined;

  return Object.freeze({
    mode,
    near,
    patroni: Object.freeze({ namespace, scope, confirmPromotion }),
    preparedQuery,
    hosts: mode === 'static' ? hosts : undefined,
    probe,
  });
}

/** Modes whose replica list comes in Consul's `?near=` order when `consul.near` is set. */
const NEAR_SORTED_MODES: ReadonlySet<DiscoveryMode> = new Set(['auto', 'consul-health', 'patroni+health', 'prepared-query']);

/**
 * How replica selection breaks ties among equally busy replicas (pure decision): `listed`
 * (Consul's order, nearest first) when `consul.near` is set and the mode's replicas come
 * from a Consul answer sorted by it (`auto`, `consul-health`, `patroni+health`, `prepared-query`);
 * otherwise `rotate` — in `patroni` mode the replicas are in member-name order, so
 * preferring the first would only favour a name.
 *
 * @param discovery the resolved discovery settings
 * @returns the tie-break policy for `selectReplica`
 *
 * @example
 * ```ts
 * replicaTieBreakFor({ mode: 'consul-health', near: '_agent' }); // 'listed'
 * replicaTieBreakFor({ mode: 'patroni', near: '_agent' });       // 'rotate'
 * ```
 */
export function replicaTieBreakFor(discovery: Pick<ResolvedDiscovery, 'mode' | 'near'>): ReplicaTieBreak {
  return discovery.near !== undefined && NEAR_SORTED_MODES.has(discovery.mode) ? 'listed' : 'rotate';
}

function patroniNamespace(value: unknown, origin: Origin): string {
  if (typeof value !== 'string' || !PATRONI_NAMESPACE.test(value)) {
    throw invalid(origin, 'must be a KV path of letters, digits, ".", "_" or "-" segments, e.g. "service" or "/service/"', value);
  }
  return value.replace(/^\/+|\/+$/g, '');
}

function nearNode(value: unknown, origin: Origin): string {
  if (typeof value !== 'string' || !NEAR_NODE.test(value)) throw invalid(origin, 'must be "_agent" or a Consul node name', value);
  return value;
}

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
  lagCheckIntervalMillis: 1000,
  autoReadRouting: false,
} as const);

const MAX_REPLICA_LAG_KEYS: ReadonlySet<string> = new Set(['bytes', 'seconds']);
/** Upper bound of a seconds limit (a year): anything above is surely a unit mistake. */
const MAX_LAG_SECONDS = 31_536_000;
const DECIMAL = /^[0-9]{1,12}(?:\.[0-9]{1,9})?$/;

function lagBytes(value: unknown, origin: Origin): number {
  return integer(value, origin, 0, Number.MAX_SAFE_INTEGER);
}

function lagSeconds(value: unknown, origin: Origin): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || value > MAX_LAG_SECONDS) {
    throw invalid(origin, `must be a number of seconds from 0 to ${MAX_LAG_SECONDS}`, value);
  }
  return value;
}

function envLagSeconds(text: string, origin: Origin): number {
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
    assertKnownKeys(raw, [...MAX_REPLICA_LAG_KEYS], 'maxReplicaLag');
    const bytes = raw['bytes'] === undefined ? undefined : lagBytes(raw['bytes'], option('maxReplicaLag.bytes'));
    const seconds = raw['seconds'] === undefined ? undefined : lagSeconds(raw['seconds'], option('maxReplicaLag.seconds'));
    if (bytes === undefined && seconds === undefined) {
      throw new TypeError('pg-consul: option "maxReplicaLag" must set "bytes", "seconds" or both');
    }
    maxReplicaLag = defined({ bytes, seconds });
  } else {
    const bytes = pick(undefined, 'maxReplicaLag.bytes', env, 'PGCONSUL_MAX_REPLICA_LAG_BYTES', lagBytes, (v, origin) =>
      envInteger(v, origin, 0, Number.MAX_SAFE_INTEGER),
    );
    const seconds = pick(undefined, 'maxReplicaLag.seconds', env, 'PGCONSUL_MAX_REPLICA_LAG_SECONDS', lagSeconds, envLagSeconds);
    if (bytes !== undefined || seconds !== undefined) maxReplicaLag = defined({ bytes, seconds });
  }
  const lagCheckIntervalMillis =
    pick(
      o['lagCheckIntervalMillis'],
      'lagCheckIntervalMillis',
      env,
      'PGCONSUL_LAG_CHECK_INTERVAL_MS',
      (v, origin) => integer(v, origin, 10, MAX_TIMER_MILLIS),
      (v, origin) => envInteger(v, origin, 10, MAX_TIMER_MILLIS),
    ) ?? READ_ROUTING_DEFAULTS.lagCheckIntervalMillis;
  const autoReadRouting =
    pick(o['autoReadRouting'], 'autoReadRouting', env, 'PGCONSUL_AUTO_READ_ROUTING', boolean, parseGoBool) ??
    READ_ROUTING_DEFAULTS.autoReadRouting;
  return Object.freeze({
    maxReplicaLag: maxReplicaLag === undefined ? undefined : Object.freeze(maxReplicaLag),
    lagCheckIntervalMillis,
    autoReadRouting,
  });
}

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
  connectTimeoutMillis: 5000,
  deadPeerAfterMillis: 2000,
  deadPeerTimeoutMillis: 1000,
  endTimeoutMillis: 10_000,
} as const);

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
  const millis = (name: keyof typeof FAILURE_DETECTION_DEFAULTS, envName: string, min: number): number =>
    pick(
      o[name],
      name,
      env,
      envName,
      (v, origin) => integer(v, origin, min, MAX_TIMER_MILLIS),
      (v, origin) => envInteger(v, origin, min, MAX_TIMER_MILLIS),
    ) ?? FAILURE_DETECTION_DEFAULTS[name];
  return Object.freeze({
    connectTimeoutMillis: millis('connectTimeoutMillis', 'PGCONSUL_CONNECT_TIMEOUT_MS', 0),
    deadPeerAfterMillis: millis('deadPeerAfterMillis', 'PGCONSUL_DEAD_PEER_AFTER_MS', 0),
    deadPeerTimeoutMillis: millis('deadPeerTimeoutMillis', 'PGCONSUL_DEAD_PEER_TIMEOUT_MS', 1),
    endTimeoutMillis: millis('endTimeoutMillis', 'PGCONSUL_END_TIMEOUT_MS', 0),
  });
}

// ---------------------------------------------------------------------------------------

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
