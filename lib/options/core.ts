/**
 * `resolveOptions`: the core settings (service, Consul, failover budget, tags, read fallback,
 * retry delays, logger, pg options) from explicit options, env variables and the option table's defaults.
 *
 * @module
 */
import { OPTIONS } from './table.js';
import { createLogger } from '../log.js';
import type { Logger } from '../log.js';
import { assertKnownKeys, PG_OPTION_KEYS } from '../option-keys.js';
import { resolvePgOptions } from './connection-string.js';
import { resolveConsul } from './consul.js';
import { STATIC_SERVICE } from './discovery.js';
import type { ListFiles, PoolOptions, ReadFile, ResolvedOptions } from './types.js';
import { customSetting, defaultOf, keysAt, setting, settingOrDefault } from './settings.js';
import { SERVICE_NAME, defaultListFiles, defaultReadFile, invalid, isObject, label, option, originOf, readEnv, show } from './values.js';
import type { Origin } from './values.js';

/** Default values of every setting (from the option table, lib/options/table.ts). */
export const DEFAULTS = Object.freeze({
  consulHost: defaultOf('consul.host'),
  consulPort: defaultOf('consul.port'),
  consistency: defaultOf('consul.consistency'),
  waitSeconds: defaultOf('consul.waitSeconds'),
  requestTimeoutMillis: defaultOf('consul.requestTimeoutMillis'),
  consulConnectTimeoutMillis: defaultOf('consul.connectTimeoutMillis'),
  failoverTimeoutMillis: defaultOf('failoverTimeoutMillis'),
  primaryTags: defaultOf('primaryTags'),
  replicaTags: defaultOf('replicaTags'),
  readFallback: defaultOf('readFallback'),
  retryInitialDelayMillis: defaultOf('retryInitialDelayMillis'),
  retryMaxDelayMillis: defaultOf('retryMaxDelayMillis'),
  discoveryMinIntervalMillis: defaultOf('discoveryMinIntervalMillis'),
});

/** pg-consul's own top-level keys (the option table's top-level rows): removed from the options passed to pg. */
export const OWN_KEYS: readonly string[] = keysAt();

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
  const own: Record<string, unknown> = {};
  for (const key of OWN_KEYS) {
    own[key] = all[key];
    delete all[key];
  }

  if (own['logger'] !== undefined && typeof own['logger'] !== 'function') {
    throw invalid(option('logger'), 'must be a function', own['logger']);
  }
  const logger = createLogger(own['logger'] as Logger | undefined);

  // A static host list needs no Consul: no service, and Consul's environment is not read.
  const staticHosts = own['hosts'] !== undefined || readEnv(env, OPTIONS.hosts.env) !== undefined;
  const service = customSetting('service', own['service'], env, serviceName) ?? (staticHosts ? STATIC_SERVICE : undefined);
  if (service === undefined) {
    throw new TypeError('pg-consul: option "service" is required (or set the environment variable PGCONSUL_SERVICE)');
  }
  const consul = resolveConsul(own['consul'], staticHosts ? {} : env, { readFile, listFiles });
  const tags = resolveTags(own, env);
  return Object.freeze({
    service,
    consul: consul.config,
    waitSeconds: consul.waitSeconds,
    requestTimeoutMillis: consul.requestTimeoutMillis,
    consulConnectTimeoutMillis: consul.connectTimeoutMillis,
    failoverTimeoutMillis: settingOrDefault('failoverTimeoutMillis', own['failoverTimeoutMillis'], env),
    primaryTags: tags.primaryTags,
    replicaTags: tags.replicaTags,
    readFallback: settingOrDefault('readFallback', own['readFallback'], env),
    ...resolveRetryDelays(own, env),
    discoveryMinIntervalMillis: settingOrDefault('discoveryMinIntervalMillis', own['discoveryMinIntervalMillis'], env),
    logger,
    pg: resolvePgOptions(all, logger),
  });
}

/** The primary and replica tags, which must not overlap. */
function resolveTags(own: Record<string, unknown>, env: NodeJS.ProcessEnv): { primaryTags: readonly string[]; replicaTags: readonly string[] } {
  const primaryTags = settingOrDefault('primaryTags', own['primaryTags'], env);
  const replicaTags = settingOrDefault('replicaTags', own['replicaTags'], env);
  const shared = replicaTags.find((tag) => primaryTags.includes(tag));
  if (shared !== undefined) {
    // Name the setting the caller gave; when both were given, the replica tags.
    const replicaOrigin = originOf(own['replicaTags'], 'replicaTags', env, OPTIONS.replicaTags.env);
    const origin = replicaOrigin ?? originOf(own['primaryTags'], 'primaryTags', env, OPTIONS.primaryTags.env) ?? option('replicaTags');
    throw new TypeError(`pg-consul: ${label(origin)} must not share tags with the other role, got ${show(shared)} in both`);
  }
  return { primaryTags: Object.freeze([...primaryTags]), replicaTags: Object.freeze([...replicaTags]) };
}

/** The backoff start and cap: an unset one follows the other, and the cap is never below the start. */
function resolveRetryDelays(own: Record<string, unknown>, env: NodeJS.ProcessEnv): { retryInitialDelayMillis: number; retryMaxDelayMillis: number } {
  const explicitInitial = setting('retryInitialDelayMillis', own['retryInitialDelayMillis'], env);
  const explicitMax = setting('retryMaxDelayMillis', own['retryMaxDelayMillis'], env);
  const retryInitialDelayMillis = explicitInitial ?? Math.min(DEFAULTS.retryInitialDelayMillis, explicitMax ?? Infinity);
  const retryMaxDelayMillis = explicitMax ?? Math.max(DEFAULTS.retryMaxDelayMillis, retryInitialDelayMillis);
  if (retryMaxDelayMillis < retryInitialDelayMillis) {
    throw invalid(option('retryMaxDelayMillis'), `must be at least retryInitialDelayMillis (${retryInitialDelayMillis})`, retryMaxDelayMillis);
  }
  return { retryInitialDelayMillis, retryMaxDelayMillis };
}

function serviceName(value: unknown, origin: Origin): string {
  if (typeof value !== 'string' || !SERVICE_NAME.test(value)) {
    throw invalid(origin, 'must be a Consul service name matching /^[A-Za-z0-9][A-Za-z0-9._-]*$/', value);
  }
  return value;
}
