/**
 * Discovery modes (issues 5 and 7): which source follows the cluster, and its settings
 * (`discovery`, `hosts`, `patroni.*`, `preparedQuery.*`, `probe.*`, `consul.near`).
 *
 * @module
 */
import { parseHostEntry } from '../discovery/host-list.js';
import type { StaticHost } from '../discovery/host-list.js';
import { assertKnownKeys } from '../option-keys.js';
import type { ReplicaTieBreak } from '../topology/select.js';
import { customSetting, defaultOf, keysAt, setting, settingOrDefault } from './settings.js';
import { OPTIONS } from './table.js';
import { consulName } from './consul-credentials.js';
import type { PoolOptions } from './types.js';
import { invalid, isObject, label, option, originOf } from './values.js';
import type { Origin } from './values.js';

// ---------------------------------------------------------------------------------------
// Discovery modes (issues 5 and 7): which source follows the cluster, and its settings.
// Resolved separately from the core options (resolveDiscoveryOptions) so ResolvedOptions
// keeps its shape; resolveOptions only strips these keys from the pg options, and skips the
// `service` requirement and Consul's environment when a static host list is given.

/** The discovery modes selectable by name; see {@link PoolOptions.discovery}. */
export type DiscoveryMode = 'auto' | 'consul-health' | 'patroni' | 'patroni+health' | 'prepared-query' | 'static';

/** All {@link DiscoveryMode}s. */
export const DISCOVERY_MODES: readonly DiscoveryMode[] = OPTIONS.discovery.values;

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
  mode: defaultOf('discovery'),
  patroniNamespace: defaultOf('patroni.namespace'),
  confirmPromotion: defaultOf('patroni.confirmPromotion'),
  preparedQueryIntervalMillis: defaultOf('preparedQuery.intervalMillis'),
  probeIntervalMillis: defaultOf('probe.intervalMillis'),
  probeTimeoutMillis: defaultOf('probe.timeoutMillis'),
});

/** The `service` label of a pool on a static host list that was given none. */
export const STATIC_SERVICE = 'static';

export const PATRONI_NAMESPACE = /^\/*(?:[A-Za-z0-9._-]+(?:\/+[A-Za-z0-9._-]+)*)?\/*$/;
export const NEAR_NODE = /^(?:_agent|[A-Za-z0-9][A-Za-z0-9._-]*)$/;
export const PATRONI_KEYS: readonly string[] = keysAt('patroni');
export const PREPARED_QUERY_KEYS: readonly string[] = keysAt('preparedQuery');
export const PROBE_KEYS: readonly string[] = keysAt('probe');

export function knownKeys(value: unknown, name: string, keys: readonly string[]): Record<string, unknown> | undefined {
  if (value === undefined) return undefined;
  if (!isObject(value)) throw invalid(option(name), 'must be an object', value);
  assertKnownKeys(value, keys, name);
  return value;
}

export function hostList(value: unknown, origin: Origin): readonly StaticHost[] {
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

/**
 * Resolves and validates the discovery settings of `options` (explicit options, then
 * environment variables, then {@link DISCOVERY_DEFAULTS}). Call it after
 * `resolveOptions`, with the service it resolved (the default Patroni scope).
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
  const named = isObject(o['discovery']) ? undefined : o['discovery'];
  const explicitMode = setting('discovery', named, env);
  const modeOrigin = originOf(named, 'discovery', env, OPTIONS.discovery.env) ?? option('discovery');
  const hosts = customSetting('hosts', o['hosts'], env, hostList);
  const pq = knownKeys(o['preparedQuery'], 'preparedQuery', PREPARED_QUERY_KEYS);
  const pqName = customSetting('preparedQuery.name', pq?.['name'], env, consulName);
  const mode: DiscoveryMode = explicitMode ?? (hosts !== undefined ? 'static' : pq !== undefined ? 'prepared-query' : DISCOVERY_DEFAULTS.mode);
  checkModeCombination(mode, modeOrigin, { hosts, consul: o['consul'], pq, pqName });
  const patroniRaw = knownKeys(o['patroni'], 'patroni', PATRONI_KEYS);
  if (patroniRaw !== undefined && mode !== 'auto' && mode !== 'patroni' && mode !== 'patroni+health') {
    throw new TypeError(`pg-consul: option "patroni" is only used with discovery "auto", "patroni" or "patroni+health", got ${JSON.stringify(mode)}`);
  }
  const patroni = resolvePatroni(patroniRaw, service, env);
  const consulRaw = isObject(o['consul']) ? o['consul'] : undefined;
  const near = customSetting('consul.near', consulRaw?.['near'], env, nearNode);
  const probeRaw = knownKeys(o['probe'], 'probe', PROBE_KEYS);
  const probe = Object.freeze({
    intervalMillis: settingOrDefault('probe.intervalMillis', probeRaw?.['intervalMillis'], env),
    timeoutMillis: settingOrDefault('probe.timeoutMillis', probeRaw?.['timeoutMillis'], env),
  });
  const preparedQuery =
    mode === 'prepared-query' && pqName !== undefined
      ? Object.freeze({ name: pqName, intervalMillis: settingOrDefault('preparedQuery.intervalMillis', pq?.['intervalMillis'], env) })
      : undefined;
  return Object.freeze({ mode, near, patroni, preparedQuery, hosts: mode === 'static' ? hosts : undefined, probe });
}

/** The rules between the mode and the options that imply or need one. */
function checkModeCombination(
  mode: DiscoveryMode,
  modeOrigin: Origin,
  given: { hosts: unknown; consul: unknown; pq: unknown; pqName: string | undefined },
): void {
  if (given.hosts !== undefined && mode !== 'static') {
    throw new TypeError(`pg-consul: ${label(modeOrigin)} is ${JSON.stringify(mode)}, but "hosts" (a static host list) needs "static"`);
  }
  if (mode === 'static' && given.hosts === undefined) {
    throw new TypeError(`pg-consul: ${label(modeOrigin)} "static" needs option "hosts" (or PGCONSUL_HOSTS)`);
  }
  if (mode === 'static' && given.consul !== undefined) {
    throw new TypeError('pg-consul: option "consul" cannot be combined with "hosts": a static host list uses no Consul');
  }
  if (given.pq !== undefined && mode !== 'prepared-query') {
    throw new TypeError(`pg-consul: option "preparedQuery" is only used with discovery "prepared-query", got ${JSON.stringify(mode)}`);
  }
  if (mode === 'prepared-query' && given.pqName === undefined) {
    throw new TypeError('pg-consul: discovery "prepared-query" needs option "preparedQuery.name" (or PGCONSUL_PREPARED_QUERY)');
  }
}

/** Patroni's KV location (namespace, scope — default the service) and the promotion check. */
function resolvePatroni(raw: Record<string, unknown> | undefined, service: string, env: NodeJS.ProcessEnv): ResolvedDiscovery['patroni'] {
  const namespace =
    customSetting('patroni.namespace', raw?.['namespace'], env, patroniNamespace) ??
    DISCOVERY_DEFAULTS.patroniNamespace;
  const scope = customSetting('patroni.scope', raw?.['scope'], env, consulName) ?? service;
  const confirmPromotion = settingOrDefault('patroni.confirmPromotion', raw?.['confirmPromotion'], env);
  return Object.freeze({ namespace, scope, confirmPromotion });
}

/** Modes whose replica list comes in Consul's `?near=` order when `consul.near` is set. */
export const NEAR_SORTED_MODES: ReadonlySet<DiscoveryMode> = new Set(['auto', 'consul-health', 'patroni+health', 'prepared-query']);

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

export function patroniNamespace(value: unknown, origin: Origin): string {
  if (typeof value !== 'string' || !PATRONI_NAMESPACE.test(value)) {
    throw invalid(origin, 'must be a KV path of letters, digits, ".", "_" or "-" segments, e.g. "service" or "/service/"', value);
  }
  return value.replace(/^\/+|\/+$/g, '');
}

export function nearNode(value: unknown, origin: Origin): string {
  if (typeof value !== 'string' || !NEAR_NODE.test(value)) throw invalid(origin, 'must be "_agent" or a Consul node name', value);
  return value;
}
