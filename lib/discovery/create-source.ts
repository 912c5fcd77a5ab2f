/**
 * Builds the discovery source a Pool's resolved options ask for.
 *
 * @module
 */
import type { ResolvedDiscovery, ResolvedOptions } from '../options.js';
import { AutoSource } from './auto-source.js';
import { CombinedSource } from './combined-source.js';
import { ConsulHealthSource } from './consul-health-source.js';
import type { ConsulWatchSettings } from './consul-watch-loop.js';
import type { DiscoverySource } from './discovery-source.js';
import { PatroniKvSource } from './patroni-kv-source.js';
import type { ConfirmPrimary } from './patroni-kv-source.js';
import { createPgProbe, roleFromProbe } from './pg-probe.js';
import type { ProbeServer } from './pg-probe.js';
import { PreparedQuerySource } from './prepared-query-source.js';
import { RequestBudget } from './request-budget.js';
import { DEFAULT_DISCOVERY_BACKOFF } from './request-pacing.js';
import { StaticHostSource } from './static-host-source.js';

/** Injectable pieces of {@link createDiscoverySource} (tests). */
export interface CreateSourceDeps {
  /** Server probe; default `createPgProbe(resolved.pg, discovery.probe.timeoutMillis)`. */
  readonly probe?: ProbeServer | undefined;
}

/**
 * The settings every Consul-backed source shares, from the resolved options: Consul
 * connection, blocking wait, request and connect timeouts, rate limit, the discovery backoff
 * ({@link DEFAULT_DISCOVERY_BACKOFF}: 100 ms doubling to 5 s, full jitter), the logger, and
 * ONE {@link RequestBudget} — every source built from these settings (both loops of
 * `patroni+health`) shares it, so the rate limit holds per Pool.
 *
 * @param resolved the pool's resolved options
 * @returns the shared loop settings
 *
 * @example
 * ```ts
 * new ConsulHealthSource({ ...consulWatchSettings(resolved), service: 'pglab', primaryTags, replicaTags });
 * ```
 */
export function consulWatchSettings(resolved: ResolvedOptions): ConsulWatchSettings {
  return {
    consul: resolved.consul,
    waitSeconds: resolved.waitSeconds,
    requestTimeoutMillis: resolved.requestTimeoutMillis,
    connectTimeoutMillis: resolved.consulConnectTimeoutMillis,
    minIntervalMillis: resolved.discoveryMinIntervalMillis,
    backoff: DEFAULT_DISCOVERY_BACKOFF,
    budget: new RequestBudget(),
    logger: resolved.logger,
  };
}

/**
 * A {@link ConfirmPrimary} that probes the node: confirmed when the server is neither in
 * recovery nor read-only ({@link roleFromProbe} says `primary`).
 *
 * @param probe the server probe
 * @returns the promotion check
 *
 * @example
 * ```ts
 * const confirm = confirmPrimaryWith(createPgProbe(pgOptions, 1_000));
 * await confirm(node, signal); // true once node accepts writes
 * ```
 */
export function confirmPrimaryWith(probe: ProbeServer): ConfirmPrimary {
  return async (node, signal) => roleFromProbe(await probe(node.host, node.port, signal)) === 'primary';
}

/**
 * Creates the source for `discovery.mode`:
 * - `auto` (default) → {@link AutoSource}: `patroni+health` while Patroni's keys are in KV
 *   under `<namespace>/<scope>/`, `consul-health` otherwise (see `decideAutoPath`);
 * - `consul-health` → {@link ConsulHealthSource} on `service` (with `near`);
 * - `patroni` → {@link PatroniKvSource} on `<namespace>/<scope>/`, confirming promotions
 *   with a probe unless `confirmPromotion` is false;
 * - `patroni+health` → {@link CombinedSource} of both (leader from KV, replicas from health);
 * - `prepared-query` → {@link PreparedQuerySource};
 * - `static` → {@link StaticHostSource} probing `hosts` with the pool's pg credentials.
 *
 * @param resolved the pool's resolved options
 * @param discovery the resolved discovery settings
 * @param deps injectable probe
 * @returns a source, not started
 *
 * @example
 * ```ts
 * const resolved = resolveOptions(options);
 * const source = createDiscoverySource(resolved, resolveDiscoveryOptions(options, resolved.service));
 * ```
 */
export function createDiscoverySource(resolved: ResolvedOptions, discovery: ResolvedDiscovery, deps: CreateSourceDeps = {}): DiscoverySource {
  const settings = consulWatchSettings(resolved);
  const probe = deps.probe ?? createPgProbe(resolved.pg, discovery.probe.timeoutMillis);
  const healthOptions = { ...settings, service: resolved.service, primaryTags: resolved.primaryTags, replicaTags: resolved.replicaTags, near: discovery.near };
  const kvOptions = {
    ...settings,
    namespace: discovery.patroni.namespace,
    scope: discovery.patroni.scope,
    confirmPrimary: discovery.patroni.confirmPromotion ? confirmPrimaryWith(probe) : undefined,
  };
  const health = (): ConsulHealthSource => new ConsulHealthSource(healthOptions);
  const patroni = (): PatroniKvSource => new PatroniKvSource(kvOptions);
  switch (discovery.mode) {
    case 'auto':
      return new AutoSource({ kv: kvOptions, health: healthOptions });
    case 'consul-health':
      return health();
    case 'patroni':
      return patroni();
    case 'patroni+health':
      return new CombinedSource(patroni(), health());
    case 'prepared-query': {
      const query = discovery.preparedQuery;
      if (query === undefined) throw new TypeError('pg-consul: discovery "prepared-query" needs option "preparedQuery.name"');
      return new PreparedQuerySource({
        ...settings,
        name: query.name,
        intervalMillis: query.intervalMillis,
        primaryTags: resolved.primaryTags,
        replicaTags: resolved.replicaTags,
        near: discovery.near,
      });
    }
    case 'static': {
      const hosts = discovery.hosts;
      if (hosts === undefined) throw new TypeError('pg-consul: discovery "static" needs option "hosts"');
      return new StaticHostSource({
        hosts,
        intervalMillis: discovery.probe.intervalMillis,
        minIntervalMillis: resolved.discoveryMinIntervalMillis,
        probe,
        logger: resolved.logger,
      });
    }
  }
}
