/**
 * The settings of a Pool's core (the Cluster): a subset of the resolved options.
 * @module
 */
import type pg from 'pg';
import type { ProbeReachable } from './pooling/reachability-probe.js';
import type { NoNodeSetup } from './retry/no-node-hint.js';
import type { MonitorClientFactory } from './routing/lag-monitor.js';
import type { LagLimit, LagMeasurement } from './routing/lag.js';
import type { ReadFallback, ReplicaTieBreak } from './topology/select.js';

/** Settings the cluster core needs (a subset of the resolved options). */
export interface ClusterSettings {
  readonly pg: Readonly<pg.PoolConfig>;
  readonly failoverTimeoutMillis: number;
  readonly readFallback: ReadFallback;
  readonly retryInitialDelayMillis: number;
  readonly retryMaxDelayMillis: number;
  /** How long a node found read-only is skipped before it is checked again. */
  readonly invalidationMillis: number;
  /** `maxReplicaLag`: replicas over it serve no reads, when set. */
  readonly maxReplicaLag?: LagLimit | undefined;
  /**
   * How `maxReplicaLag` is measured (see `chooseLagMeasurement`): the lag monitor (default),
   * or the `walPositions` of the discovery updates (Patroni KV: no monitor, no connection).
   */
  readonly lagMeasurement?: LagMeasurement | undefined;
  /** How replica selection breaks ties among equally busy replicas (default `rotate`). */
  readonly replicaTieBreak?: ReplicaTieBreak | undefined;
  /** `lagCheckIntervalMillis` (default 1000). */
  readonly lagCheckIntervalMillis?: number | undefined;
  /** The lag monitor's client factory (tests); default pg.Client with the pool's options. */
  readonly lagMonitorClients?: MonitorClientFactory | undefined;
  /** Bound of one new connection when pg's `connectionTimeoutMillis` is not set, ms (0 = none). Default 0. */
  readonly connectTimeoutMillis?: number | undefined;
  /** Dead-peer detection (see lib/pooling/dead-peer.ts); undefined = off. */
  readonly deadPeer?: { readonly afterMillis: number; readonly timeoutMillis: number; readonly attempts: number } | undefined;
  /** The longest `end()` waits for checked-out clients before fencing what is left, ms (0 or undefined: no bound). */
  readonly endTimeoutMillis?: number | undefined;
  /** The reachability probe (tests); default `probeReachable`. */
  readonly probe?: ProbeReachable | undefined;
  /** What discovery looks for, to word the error when no node is ever found (see `noNodeHint`). */
  readonly setup?: NoNodeSetup | undefined;
}

