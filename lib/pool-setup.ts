/**
 * From a Pool's options to what its core needs: the resolved options, the discovery source
 * and the {@link ClusterSettings}. Throws the options' TypeErrors; starts nothing.
 * @module
 */
import type pg from 'pg';
import type { ClusterSettings } from './cluster-settings.js';
import { createDiscoverySource } from './discovery/create-source.js';
import type { DiscoverySource } from './discovery/discovery-source.js';
import { patroniKvPrefix } from './discovery/patroni-kv-source.js';
import {
  replicaTieBreakFor,
  resolveDiscoveryOptions,
  resolveFailureDetectionOptions,
  resolveOptions,
  resolveReadRoutingOptions,
} from './options.js';
import type { PoolOptions as BasePoolOptions, DiscoveryMode, ResolvedOptions } from './options.js';
import { chooseLagMeasurement } from './routing/lag.js';

/** What a Pool is built from (see {@link resolvePoolSetup}). @internal */
export interface PoolSetup {
  /** The resolved options (secrets included: never logged). */
  readonly resolved: ResolvedOptions;
  /** Where the topology comes from: the mode's source, or the caller's own. */
  readonly source: DiscoverySource;
  /** The settings of the Pool's Cluster. */
  readonly settings: ClusterSettings;
  /** `autoReadRouting`. */
  readonly autoReadRouting: boolean;
}

function isDiscoverySource(x: unknown): x is DiscoverySource {
  const d = x as Partial<DiscoverySource> | null;
  return typeof d === 'object' && d !== null && typeof d.start === 'function' && typeof d.stop === 'function' && typeof d.refresh === 'function';
}

/**
 * Resolves a Pool's options: validation (a `TypeError` naming the option or variable), the
 * discovery source, and the Cluster's settings.
 *
 * @param options the Pool's options, with `discovery` a mode name or a source object
 * @throws TypeError naming the option when an option or environment variable is invalid
 * @internal
 */
export function resolvePoolSetup(options: BasePoolOptions & { discovery?: DiscoveryMode | DiscoverySource | undefined }): PoolSetup {
  const { discovery, ...rest } = options;
  const custom = discovery !== undefined && typeof discovery !== 'string' ? discovery : undefined;
  if (custom !== undefined && !isDiscoverySource(custom)) {
    throw new TypeError('pg-consul: option "discovery" must be a mode name or implement DiscoverySource (start, refresh, stop, requestCount)');
  }
  const resolved = resolveOptions(custom ? { service: 'custom', ...rest } : rest);
  const readRouting = resolveReadRoutingOptions(rest);
  const failure = resolveFailureDetectionOptions(rest);
  const discoveryOptions = custom ? undefined : resolveDiscoveryOptions({ ...rest, discovery }, resolved.service);
  const settings: ClusterSettings = {
    pg: resolved.pg as Readonly<pg.PoolConfig>,
    failoverTimeoutMillis: resolved.failoverTimeoutMillis,
    readFallback: resolved.readFallback,
    retryInitialDelayMillis: resolved.retryInitialDelayMillis,
    retryMaxDelayMillis: resolved.retryMaxDelayMillis,
    invalidationMillis: Math.max(1000, resolved.retryMaxDelayMillis),
    maxReplicaLag: readRouting.maxReplicaLag,
    lagMeasurement: chooseLagMeasurement(readRouting.maxReplicaLag, discoveryOptions?.mode),
    lagCheckIntervalMillis: readRouting.lagCheckIntervalMillis,
    replicaTieBreak: discoveryOptions === undefined ? 'rotate' : replicaTieBreakFor(discoveryOptions),
    connectTimeoutMillis: failure.connectTimeoutMillis,
    deadPeer:
      failure.deadPeerAfterMillis > 0
        ? { afterMillis: failure.deadPeerAfterMillis, timeoutMillis: failure.deadPeerTimeoutMillis, attempts: 2 }
        : undefined,
    endTimeoutMillis: failure.endTimeoutMillis,
    setup: {
      mode: discoveryOptions?.mode ?? 'custom',
      service: resolved.service,
      primaryTags: resolved.primaryTags,
      replicaTags: resolved.replicaTags,
      patroniPrefix: discoveryOptions && patroniKvPrefix(discoveryOptions.patroni.namespace, discoveryOptions.patroni.scope),
      preparedQuery: discoveryOptions?.preparedQuery?.name,
      tokenConfigured: resolved.consul.token !== undefined,
    },
  };
  return { resolved, source: custom ?? createDiscoverySource(resolved, discoveryOptions!), settings, autoReadRouting: readRouting.autoReadRouting };
}
